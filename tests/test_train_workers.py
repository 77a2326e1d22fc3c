"""Training across processes: TF_CONFIG, the workers' data shards, and `finetune train
--workers 2` as two real TensorFlow processes on 127.0.0.1 (CPU)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from components.common.errors import ConfigError
from components.train.config import TrainConfig
from components.train.workers import Cluster, local_tf_config

NO_AUGMENTATION = {"horizontal_flip": False, "zoom_fraction": 0.0, "shear_degrees": 0.0,
                   "rotation_degrees": 0.0, "contrast_fraction": 0.0}
TRAIN_ARGS = ["--image-size", "32", "--weights", "none", "--epochs", "2", "--head-epochs", "1",
              "--steps-per-epoch", "3", "--batch-size", "8", "--dropout", "0"]


def test_tf_config_gives_each_process_its_rank_and_one_chief():
    assert Cluster.from_env({}) is None
    assert Cluster.from_env({"TF_CONFIG": local_tf_config([1, 2, 3], 2)}) == Cluster(3, 2)
    vertex = {"cluster": {"chief": ["a:2222"], "worker": ["b:2222", "c:2222"]},
              "task": {"type": "worker", "index": 0}}
    cluster = Cluster.from_env({"TF_CONFIG": json.dumps(vertex)})
    assert cluster == Cluster(3, 1) and not cluster.is_chief
    vertex["task"] = {"type": "chief", "index": 0}
    assert Cluster.from_env({"TF_CONFIG": json.dumps(vertex)}).is_chief


def test_a_bad_tf_config_or_one_unlike_the_workers_setting_is_refused():
    with pytest.raises(ConfigError, match="TF_CONFIG '{\"cluster\": {}}': expected"):
        Cluster.from_env({"TF_CONFIG": '{"cluster": {}}'})
    with pytest.raises(ConfigError, match="names 3 training processes but --workers is 2"):
        Cluster(3, 0).expecting(2)


@pytest.mark.parametrize("values, message", [
    ({"workers": 0}, "--workers 0: use 1"),
    ({"workers": 3, "batch_size": 8}, "--batch-size 8 with --workers 3: the global batch is "
                                      "split evenly"),
])
def test_the_workers_setting_is_checked_before_any_work(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.of(examples=".", output=".", **values).validate()


def test_a_workers_refusal_is_one_line(examples_dir, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"examples": str(examples_dir),
                                  "output": str(tmp_path / "out"), "workers": 2}))
    done = subprocess.run([sys.executable, "-m", "components.train.workers", str(config),
                           str(tmp_path / "chief.json")], capture_output=True, text=True,
                          env={**os.environ, "TF_CONFIG": local_tf_config([1, 2, 3], 1)},
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: TF_CONFIG names 3 training processes but --workers is 2: give every process "
        "--workers 3")
    assert "Traceback" not in done.stderr


def test_the_workers_shards_make_up_the_global_batches_of_one_process(examples_dir):
    import tensorflow as tf

    from components.common.examples import read_stats
    from components.train.data import make_dataset

    tf.config.experimental.enable_op_determinism()  # as training's runtime does
    stream = dict(examples_dir=str(examples_dir), split="train", image_size=32, num_classes=3,
                  shuffle=True, seed=3)
    one = list(make_dataset(batch_size=8, **stream).take(4))
    shards = [list(make_dataset(batch_size=4, shard=(2, i), **stream).take(4)) for i in (0, 1)]
    for step, (images, labels) in enumerate(one):
        together = [np.concatenate([s[step][k].numpy() for s in shards]) for k in (0, 1)]
        np.testing.assert_array_equal(together[0], images.numpy())
        np.testing.assert_array_equal(together[1], labels.numpy())
    split = dict(examples_dir=str(examples_dir), split="val", image_size=32, num_classes=3,
                 batch_size=4, examples=read_stats(str(examples_dir))["split_totals"]["val"])
    whole = np.concatenate([y.numpy() for _, y in make_dataset(**split)])
    for index in (0, 1):  # validation: every other example, the last batch maybe short
        part = np.concatenate([y.numpy() for _, y in make_dataset(shard=(2, index), **split)])
        np.testing.assert_array_equal(part, whole[index::2])


def test_each_worker_augments_with_draws_of_its_own(examples_dir):
    """Flips only: each image comes out as it is or mirrored. With the draws of one
    process, both workers would flip the same positions of every batch."""
    import tensorflow as tf

    from components.common.augment_policy import AugmentPolicy
    from components.train.data import make_dataset

    tf.config.experimental.enable_op_determinism()
    policy = AugmentPolicy(horizontal_flip=True, zoom_fraction=0.0, shear_degrees=0.0)

    def flips(index):
        stream = dict(examples_dir=str(examples_dir), split="train", image_size=32,
                      batch_size=4, num_classes=3, shuffle=True, seed=3, shard=(2, index))
        plain, augmented = (make_dataset(**stream, augment=a).take(4) for a in (None, policy))
        for (images, _), (outs, _) in zip(plain, augmented, strict=True):
            for image, out in zip(images.numpy(), outs.numpy(), strict=True):
                mirrored = np.allclose(out, image[:, ::-1], atol=1e-3)
                assert mirrored or np.allclose(out, image, atol=1e-3)
                yield mirrored

    first, second = list(flips(0)), list(flips(1))
    assert len(first) == len(second) == 16 and 0 < sum(first) < 16
    assert first != second


def test_local_workers_get_gpus_of_their_own():
    from components.train.workers import gpu_shares

    assert gpu_shares([], 2) == [{}, {}]
    assert gpu_shares(["0", "1", "2", "3"], 2) == [{"CUDA_VISIBLE_DEVICES": "0,1"},
                                                   {"CUDA_VISIBLE_DEVICES": "2,3"}]
    assert gpu_shares(["4", "6", "7"], 2) == [{"CUDA_VISIBLE_DEVICES": "4"},
                                              {"CUDA_VISIBLE_DEVICES": "6"}]
    with pytest.raises(ConfigError, match="--workers 3 on a machine with 2 GPU.*use --workers 2"):
        gpu_shares(["0", "1"], 3)


def test_a_backups_resume_point_counts_finished_phases_then_epochs(tmp_path):
    from components.train.workers import resume_point

    assert resume_point(str(tmp_path), 2) == 0
    (tmp_path / "phase1").mkdir()
    (tmp_path / "phase1" / "training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert resume_point(str(tmp_path), 2) == 3
    (tmp_path / "phase1.weights.h5").write_bytes(b"weights")
    assert resume_point(str(tmp_path), 2) == 10_000


def test_worker_scores_are_keras_evaluate_with_several_replicas():
    """Two replicas in one process (logical CPUs, so TensorFlow must start afresh): the
    all-reduced sums give what Keras' evaluate gives, a short last batch included."""
    code = """if True:
        import json
        import numpy as np, keras, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        two = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, two)
        from components.train.callbacks import WorkerScores
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        x = rng.normal(size=(10, 4)).astype("float32")
        y = keras.utils.to_categorical(rng.integers(0, 3, 10), 3)
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)),
                                      keras.layers.Dense(3, activation="softmax")])
            model.compile(loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                          metrics=["accuracy"])
        batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        ours = WorkerScores(model, batches, strategy, 0.1)()
        print(json.dumps([ours, model.evaluate(batches, verbose=0, return_dict=True)]))
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ours, keras_evaluate = json.loads(done.stdout.splitlines()[-1])
    assert ours["loss"] == pytest.approx(keras_evaluate["loss"], rel=1e-5)
    assert ours["accuracy"] == pytest.approx(keras_evaluate["accuracy"])


@pytest.fixture(scope="module")
def plain_examples(examples_dir, tmp_path_factory):
    """The demo examples without augmentation: with no random draws, two workers and one
    process train on the same pixels."""
    out = tmp_path_factory.mktemp("plain") / "examples"
    shutil.copytree(examples_dir, out)
    (out / "augmentation.json").write_text(json.dumps(NO_AUGMENTATION))
    return out


def _train(examples, output, *extra, env=None, wait=True):
    command = [sys.executable, "-m", "pipeline", "train", "--examples", str(examples),
               "--output", str(output), *TRAIN_ARGS, *extra]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not wait:
        return process
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    lines = out.splitlines()  # progress lines, then the summary
    return json.loads("\n".join(lines[lines.index("{"):])), err


def _weights(folder):
    from components.train.model import load_trained_model

    return load_trained_model(str(folder / "model.keras")).get_weights()


@pytest.mark.slow
def test_two_workers_train_the_weights_one_process_would(plain_examples, tmp_path):
    one, _ = _train(plain_examples, tmp_path / "one", "--run-id", "one")
    two, log = _train(plain_examples, tmp_path / "two", "--run-id", "two", "--workers", "2")
    assert "[worker 1]" in log and "'workers': 2" in log
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm_mean"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key
    histories = [json.loads((tmp_path / run / "history.json").read_text()) for run in
                 ("one", "two")]
    assert [h["phase"] for h in histories[1]] == [1, 2]
    for a, b in zip(*histories, strict=True):
        assert b["accuracy"] == a["accuracy"] and b["loss"] == pytest.approx(a["loss"], rel=1e-4)
    for a, b in zip(_weights(tmp_path / "one"), _weights(tmp_path / "two"), strict=True):
        assert np.abs(a - b).max() <= 1e-3 * max(np.abs(a).max(), 1e-6)
    events = [sorted(p.relative_to(tmp_path / run).parent for p in
                     (tmp_path / run / "tensorboard").rglob("*.v2")) for run in ("one", "two")]
    assert events[1] == events[0], "only the chief writes the artifact (one TensorBoard log)"


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@pytest.mark.slow
def test_a_killed_worker_stops_the_job_and_the_same_command_resumes_it(examples_dir,
                                                                         tmp_path):
    out = tmp_path / "model"
    args = (examples_dir, out, "--run-id", "night-1", "--workers", "2", "--epochs", "3")
    first = _train(*args, wait=False)
    history = out / "backup" / "history.jsonl"
    deadline = time.monotonic() + 240
    while not (history.exists() and len(history.read_text().splitlines()) == 2):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1]
        time.sleep(0.2)
    workers = _children(first.pid)
    assert len(workers) == 2
    os.kill(workers[1], 9)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 1
    assert "error: training worker 1 of 2 exited with code -9" in err
    assert "with the same --output and --backup-dir and --run-id night-1 to resume" in err
    assert not (out / "_SUCCESS").exists()

    summary, log = _train(*args)
    assert summary["epochs_run"] == 3
    assert "phase 1 finished in an earlier attempt" in log
    assert "progress: epoch 2/3" not in log, "the finished epoch was trained again"
    assert "progress: epoch 3/3" in log
    epochs = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in epochs] == [0, 1, 2]
    assert not (out / "backup").exists(), "a finished run leaves no backup"
