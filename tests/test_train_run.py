"""The training step end to end on demo data (real TensorFlow, 32-64 px, few steps)."""

import json

import keras
import numpy as np
import pytest

from components.common.settings import flatten
from components.train.config import TrainConfig
from components.train.data import make_dataset
from components.train.run import run

TINY = dict(image_size=32, batch_size=8, weights="none", steps_per_epoch=2, precision="float32",
            head_epochs=1)


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


def test_several_steps_per_execution_train_every_step_and_log_each_epoch(examples_dir,
                                                                           tmp_path):
    """What a GPU runs by default (8 steps per compiled call), here 2 with 3 steps an
    epoch: Keras runs whole executions, so the epoch (and the schedule) has 4 steps."""
    out = tmp_path / "out"
    run(TrainConfig.of(examples=str(examples_dir), output=str(out), epochs=2,
                       **{**TINY, "steps_per_epoch": 3}, steps_per_execution=2))
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1]
    assert [r["optimizer_steps"] for r in history] == [4, 4]  # one epoch per phase
    assert all(np.isfinite(r["grad_norm_mean"]) for r in history)
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["runtime"]["steps_per_execution"] == 2


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
    training batches, not a 0.99-momentum blend with ImageNet's, once validation shows
    them not worse (test_train_units: worse ones are discarded)."""
    from components.train import model as model_lib

    out = tmp_path / "out"
    cfg = TrainConfig.of(examples=str(examples_dir), output=str(out), bn_policy="bn_only",
                         epochs=2, **TINY)
    run(cfg)
    reestimation = json.loads((out / "config.json").read_text())["bn_reestimation"]
    assert reestimation["batches"] > 0 and {"before", "after"} <= set(reestimation)
    model = keras.models.load_model(out / "model.keras", compile=False)
    bn = next(la for la in model.get_layer("resnet50").layers
              if isinstance(la, keras.layers.BatchNormalization))
    shipped = [np.array(bn.moving_mean), np.array(bn.moving_variance)]
    batches = cfg.batch_norm.reestimate_batches(2)
    clean = make_dataset(str(examples_dir), "train", 32, 8, 3).take(batches)
    model_lib.reestimate_bn_statistics(model, clean)
    same = [np.allclose(np.array(bn.moving_mean), shipped[0], rtol=1e-4, atol=1e-4),
            np.allclose(np.array(bn.moving_variance), shipped[1], rtol=1e-4, atol=1e-4)]
    before, after = reestimation["before"], reestimation["after"]
    if reestimation["kept"]:
        assert all(same)
    else:  # validation got worse: the statistics training left ship instead
        assert not any(same)
        assert (after["accuracy"], -after["loss"]) < (before["accuracy"], -before["loss"])


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A ResNet50 (include_top=False) weights file at 32 px, as a user would pass one."""
    path = tmp_path_factory.mktemp("backbone") / "backbone.weights.h5"
    keras.utils.set_random_seed(1)
    keras.applications.ResNet50(include_top=False, weights=None,
                                input_shape=(32, 32, 3)).save_weights(path)
    return path


def test_the_default_recipe_fine_tunes_the_top_blocks_and_repeats_itself(examples_dir, backbone,
                                                                         tmp_path):
    """`finetune train` given only sizes and weights: the head warm-up, then the conv5
    stage with BN frozen, autoclip and decoupled weight decay; run twice, it writes
    byte-identical weights (op determinism is on by default)."""
    from click.testing import CliRunner

    from pipeline.cli import main

    models = []
    for name in ("first", "second"):
        out = tmp_path / name
        result = CliRunner().invoke(main, [
            "train", "--examples", str(examples_dir), "--output", str(out), "--image-size", "32",
            "--epochs", "3", "--batch-size", "8", "--steps-per-epoch", "2",
            "--weights", str(backbone)])
        assert result.exit_code == 0, result.output
        models.append(keras.models.load_model(out / "model.keras", compile=False))
    first, second = models
    for a, b in zip(first.weights, second.weights, strict=True):
        assert np.array(a).tobytes() == np.array(b).tobytes(), a.path
    start = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    start.load_weights(backbone)
    trained = first.get_layer("resnet50")
    for layer in (la for la in start.layers if la.weights):
        moved = [not np.array_equal(np.array(v), np.array(w)) for v, w in
                 zip(layer.weights, trained.get_layer(layer.name).weights, strict=True)]
        fine_tuned = layer.name.startswith("conv5_") and not layer.name.endswith("_bn")
        assert all(moved) if fine_tuned else not any(moved), layer.name
    out = tmp_path / "first"
    history = json.loads((out / "history.json").read_text())
    assert [r["phase"] for r in history] == [1, 1, 2]
    assert history[2]["learning_rate"] < history[0]["learning_rate"] * 0.5
    config = json.loads((out / "config.json").read_text())
    assert (config["clip"], config["clip_threshold"], config["fine_tune_blocks"]) == \
        ("autoclip", 95.0, 3)
    assert (config["optimizer"], config["weight_decay"], config["class_weights"]) == \
        ("adamw", 0.01, False)
    assert config["runtime"]["deterministic"] and config["runtime"]["precision"] == "float32"
    curves = (out / "training_curves.html").read_text()
    assert "<svg" in curves and ">epoch</text>" in curves and ">cross-entropy loss</text>" in curves
    assert "fine-tuning (phase 2)" in curves, "the phase boundary is marked"
    assert "autoclip at the 95th percentile" in curves and ">clip_threshold</text>" in curves
    assert list((out / "tensorboard").rglob("*tfevents*"))


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
