"""The training step end to end on demo data (real TensorFlow, 32-64 px, few steps)."""

import json

import keras
import numpy as np
import pytest

from components.common.settings import flatten
from components.train.config import TrainConfig
from components.train.data import make_dataset
from components.train.run import run

TINY = dict(image_size=32, batch_size=8, weights="none", steps_per_epoch=2, precision="float32")


class Epochs(keras.callbacks.Callback):
    """Records which epochs this fit actually ran."""

    def __init__(self):
        super().__init__()
        self.ran = []

    def on_epoch_begin(self, epoch, logs=None):
        self.ran.append(epoch)


class Crash(keras.callbacks.Callback):
    """Stands in for a killed pod: fails after the given epoch has been backed up."""

    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.after_epoch:
            raise RuntimeError("pod killed")


def test_interrupted_training_resumes_at_the_right_epoch(examples_dir, tmp_path):
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "out"), epochs=3, **TINY)
    with pytest.raises(RuntimeError, match="pod killed"):
        run(cfg, extra_callbacks=(Crash(after_epoch=1),))
    summary = run(cfg)
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert summary["epochs_run"] == 3
    for row in history:
        assert {"grad_norm_mean", "grad_norm_max", "clip_rate", "learning_rate"} <= set(row)


def test_examples_output_and_backup_on_s3_resume_after_a_crash(examples_dir, s3_bucket):
    """TensorFlow has no s3:// file system: the step works on local copies and mirrors."""
    from components.common import outputs, storage

    storage.copy_tree(str(examples_dir), f"{s3_bucket}/examples")
    cfg = TrainConfig.of(examples=f"{s3_bucket}/examples", output=f"{s3_bucket}/model",
                         backup_dir=f"{s3_bucket}/backup", run_id="run-1", epochs=2, **TINY)
    with pytest.raises(RuntimeError, match="pod killed"):
        run(cfg, extra_callbacks=(Crash(after_epoch=0),))
    assert not outputs.is_complete(cfg.output)
    assert storage.exists(f"{s3_bucket}/backup/run-1/history.jsonl")
    resumed = Epochs()
    run(cfg, extra_callbacks=(resumed,))
    assert resumed.ran == [1], "the second attempt resumes after the backed-up epoch"
    history = json.loads(storage.read_text(f"{s3_bucket}/model/history.json"))
    assert [r["epoch"] for r in history] == [0, 1]
    assert outputs.is_complete(cfg.output)
    assert storage.exists(f"{s3_bucket}/model/model.keras")
    assert not storage.is_dir(f"{s3_bucket}/backup/run-1"), "a finished run's backup is removed"


def test_runs_sharing_a_backup_dir_never_share_state(examples_dir, tmp_path):
    """A crashed run's backup is its own: another run id trains every epoch from scratch."""
    backup = tmp_path / "backup"
    crashed = TrainConfig.of(examples=str(examples_dir), output=str(tmp_path / "a"),
                             backup_dir=str(backup), run_id="night-1", epochs=2, **TINY)
    with pytest.raises(RuntimeError, match="pod killed"):
        run(crashed, extra_callbacks=(Crash(after_epoch=0),))
    assert (backup / "night-1" / "history.jsonl").exists()
    other = Epochs()
    run(TrainConfig.of(**{**flatten(crashed), "output": str(tmp_path / "b"), "run_id": "night-2"}),
        extra_callbacks=(other,))
    assert other.ran == [0, 1]
    assert (backup / "night-1" / "history.jsonl").exists(), "night-1 may still be retried"
    assert not (backup / "night-2").exists()


def test_shipped_bn_statistics_match_a_clean_reestimate(examples_dir, tmp_path):
    """bn_only with the defaults: the moving statistics that ship are those of clean
    training batches, not a 0.99-momentum blend with ImageNet's."""
    from components.train import model as model_lib

    out = tmp_path / "out"
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(out), bn_policy="bn_only",
                         epochs=2, head_epochs=1, **TINY)
    run(cfg)
    config = json.loads((out / "config.json").read_text())
    assert config["bn_reestimated_batches"] > 0
    model = keras.models.load_model(out / "model.keras", compile=False)
    bn = next(la for la in model.get_layer("resnet50").layers
              if isinstance(la, keras.layers.BatchNormalization))
    shipped = [np.array(bn.moving_mean), np.array(bn.moving_variance)]
    batches = cfg.batch_norm.reestimate_batches(2)
    clean = make_dataset(str(examples_dir), "train", 32, 8, 3).take(batches)
    model_lib.reestimate_bn_statistics(model, clean)
    np.testing.assert_allclose(np.array(bn.moving_mean), shipped[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(bn.moving_variance), shipped[1], rtol=1e-4, atol=1e-4)


def test_two_phase_frozen_fine_tuning_writes_every_output(examples_dir, tmp_path):
    out = tmp_path / "out"
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(out), epochs=2, fine_tune_blocks=2,
                         head_epochs=1, **TINY)
    run(cfg)
    history = json.loads((out / "history.json").read_text())
    assert [r["phase"] for r in history] == [1, 2]
    assert history[1]["learning_rate"] < history[0]["learning_rate"] * 0.5
    config = json.loads((out / "config.json").read_text())
    assert config["runtime"]["precision"] == "float32" and config["labels"]
    curves = (out / "training_curves.html").read_text()
    assert "<svg" in curves and ">epoch</text>" in curves and ">cross-entropy loss</text>" in curves
    assert "fine-tuning (phase 2)" in curves, "the phase boundary is marked"
    assert "clip threshold 1" in curves, "global_norm clipping draws its threshold"
    assert list((out / "tensorboard").rglob("*tfevents*"))
    keras.models.load_model(out / "model.keras", compile=False)


@pytest.mark.slow
def test_the_model_learns_the_demo_data(tmp_path_factory):
    """3 classes, chance = 1/3. >= 0.6 on the 24 val+test images has a binomial tail
    probability under chance of about 0.1%, so passing means it learned."""
    from components.common.demo_data import write_demo_data
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run as prepare

    root = tmp_path_factory.mktemp("learn")
    write_demo_data(str(root / "src"), classes=3, per_class=40, size=64, seed=3)
    prepare(PrepareConfig(source=str(root / "src"), output=str(root / "ex")))
    cfg = TrainConfig.of(examples=str(root / "ex"), output=str(root / "model"), image_size=64,
                         epochs=5, batch_size=16, weights="none", bn_policy="full", head_epochs=0,
                         bn_momentum=0.9, bn_reestimate_batches=6, learning_rate=1e-3, seed=0)
    run(cfg)
    model = keras.models.load_model(root / "model" / "model.keras", compile=False)
    hits = []
    for split in ("val", "test"):
        for x, y in make_dataset(str(root / "ex"), split, 64, 16, 3):
            hits += list(model(x).numpy().argmax(1) == y.numpy().argmax(1))
    assert len(hits) == 24
    assert np.mean(hits) >= 0.6
