"""Training building blocks with real TensorFlow on tiny inputs."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from components.common.errors import ConfigError
from components.train import model as model_lib
from components.train.clipping import clipping_optimizer
from components.train.config import TrainConfig

SIZE = 32


def fit_two_steps(policy, unfreeze=0):
    keras.utils.set_random_seed(0)
    model = model_lib.build_model(3, SIZE, "none", 0.0)
    model_lib.apply_bn_policy(model, policy, unfreeze)
    model.compile(optimizer=clipping_optimizer(keras.optimizers.SGD, "global_norm", 10.0,
                                               learning_rate=0.1), loss="categorical_crossentropy")
    before = {v.path: v.numpy().copy() for v in model.weights}
    x = np.random.default_rng(0).uniform(0, 255, (8, SIZE, SIZE, 3)).astype("float32")
    y = keras.utils.to_categorical(np.arange(8) % 3, 3)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    return {p: not np.array_equal(before[p], v.numpy()) for p, v in
            ((v.path, v) for v in model.weights)}


def changed(result, *fragments):
    return {p: c for p, c in result.items() if all(f in p for f in fragments)}


def test_frozen_policy_trains_only_the_head_and_keeps_bn_statistics():
    result = fit_two_steps("frozen")
    assert all(changed(result, "classifier").values())
    assert not any(changed(result, "resnet50").values())


def test_frozen_with_unfrozen_top_block_keeps_its_bn_in_inference_mode():
    result = fit_two_steps("frozen", unfreeze=1)
    assert all(changed(result, "conv5_block3_3_conv", "kernel").values())
    assert not any(changed(result, "conv5_block3_3_bn").values())
    assert not any(changed(result, "conv5_block2_3_conv").values())


def test_bn_only_trains_bn_and_its_statistics_not_convolutions():
    result = fit_two_steps("bn_only")
    assert all(changed(result, "conv1_bn", "gamma").values())
    assert all(changed(result, "conv1_bn", "moving_mean").values())
    assert not any(changed(result, "_conv", "kernel").values())


def test_the_batch_statistics_head_warm_up_trains_only_the_head_on_batch_statistics():
    """The warm-up of bn_only and full: the head learns on the features those policies
    produce (batch statistics), while nothing in the backbone is fitted."""
    result = fit_two_steps("batch_stats_head")
    assert all(changed(result, "classifier").values())
    assert all(changed(result, "conv1_bn", "moving_mean").values())
    assert not any(changed(result, "gamma").values()) and not any(changed(result, "beta").values())
    assert not any(changed(result, "_conv", "kernel").values())


def test_full_trains_everything():
    result = fit_two_steps("full")
    assert all(changed(result, "conv1_conv", "kernel").values())
    assert all(changed(result, "conv5_block3_3_bn", "moving_variance").values())


def test_bn_reestimation_sets_statistics_to_the_batch_average():
    model = model_lib.build_model(3, SIZE, "none", 0.0)
    model_lib.apply_bn_policy(model, "full")
    batches = [(np.full((4, SIZE, SIZE, 3), v, "float32"), None) for v in (10.0, 50.0)]
    assert model_lib.reestimate_bn_statistics(model, batches) == 2
    bn = model.get_layer("resnet50").get_layer("conv1_bn")
    assert bn.momentum == 0.99
    assert np.isfinite(bn.moving_mean.numpy()).all()


def test_small_batch_warning():
    assert "per-replica batch 8" in model_lib.warn_small_batch("full", 8)
    assert model_lib.warn_small_batch("frozen", 8) == ""


@pytest.mark.parametrize("change,message", [
    (dict(bn_policy="bn_only", fine_tune_blocks=2), "second phase"),
    (dict(clip_threshold=0.0), "--clip-threshold 0.0"),
    (dict(image_size=16), "--image-size 16"),
    (dict(bn_policy="sideways"), "--bn-policy 'sideways'"),
    (dict(bn_policy="full", epochs=2, head_epochs=2), "leaves no epoch"),
    (dict(head_epochs=-1), "--head-epochs -1"),
    (dict(fine_tune_learning_rate_factor=0), "factor"),
    (dict(bn_reestimate_batches=4), "never change"),
])
def test_conflicting_settings_fail_first(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.of(examples="x", output="y", **change).validate()


def test_a_weights_file_that_does_not_fit_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tmp_path / "other.weights.h5")
    other.save_weights(path)
    with pytest.raises(ConfigError, match="does not fit ResNet50"):
        model_lib.build_model(3, SIZE, path, 0.0)
    with pytest.raises(ConfigError, match="no such file"):
        model_lib.build_model(3, SIZE, str(tmp_path / "missing.weights.h5"), 0.0)


def test_a_weights_file_that_fits_is_loaded(tmp_path):
    base = keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(SIZE, SIZE, 3))
    path = str(tmp_path / "base.weights.h5")
    base.save_weights(path)
    model = model_lib.build_model(3, SIZE, path, 0.0)
    np.testing.assert_array_equal(model.get_layer("resnet50").get_layer("conv1_conv").kernel,
                                  base.get_layer("conv1_conv").kernel)


FLOAT16_SCRIPT = """
import json, keras, numpy as np
from components.train.clipping import clipping_optimizer, global_norm
keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8),
                          keras.layers.Dense(2, dtype="float32")])
inner = clipping_optimizer(keras.optimizers.SGD, "global_norm", 0.5, learning_rate=0.0)
model.compile(optimizer=inner, loss="mse", jit_compile=True)
x = np.random.default_rng(1).normal(size=(16, 6)).astype("float32")
y = np.random.default_rng(2).normal(size=(16, 2)).astype("float32") * 10
with keras.src.backend.tensorflow.core.tf.GradientTape() as tape:
    loss = keras.losses.MeanSquaredError()(y, model(x, training=True))
reference = float(global_norm(tape.gradient(loss, model.trainable_weights)))
model.fit(x, y, batch_size=16, epochs=20, verbose=0)
print(json.dumps({"type": type(model.optimizer).__name__, "stats": inner.read_clip_stats(),
                  "reference": reference}))
"""


def test_gradient_norm_logging_under_float16_loss_scaling():
    out = subprocess.run([sys.executable, "-c", FLOAT16_SCRIPT], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["type"] == "LossScaleOptimizer"
    stats, reference = result["stats"], result["reference"]
    # learning rate 0: every applied step sees the same gradient. The first steps overflow
    # at the initial loss scale; they are skipped and must not reach the statistics.
    assert 1 <= stats["optimizer_steps"] < 20
    assert abs(stats["grad_norm_mean"] - reference) < 0.02 * reference
    assert abs(stats["grad_norm_max"] - reference) < 0.02 * reference
    assert stats["clip_rate"] == 1.0


MIRRORED_SCRIPT = textwrap.dedent("""
import json, keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from components.train.clipping import clipping_optimizer
x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
y = np.random.default_rng(2).normal(size=(8, 3)).astype("float32") * 5

def one_step(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
        opt = clipping_optimizer(keras.optimizers.SGD, "global_norm", 0.1, learning_rate=1.0)
        model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    return [w.tolist() for w in model.get_weights()], opt.read_clip_stats()

single = one_step(tf.distribute.get_strategy())
mirrored = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
print(json.dumps({"single": single, "mirrored": mirrored}))
""")


def test_mirrored_update_equals_single_device_update():
    out = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    (w1, s1), (w2, s2) = result["single"], result["mirrored"]
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert s1["clip_rate"] == s2["clip_rate"] == 1.0
    np.testing.assert_allclose(s1["grad_norm_mean"], s2["grad_norm_mean"], rtol=1e-5)


OVERFLOW_SCRIPT = textwrap.dedent("""
import json, sys, keras, numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
keras.mixed_precision.set_global_policy("mixed_float16")
from components.train.clipping import clipping_optimizer
from components.train.loss_scale import AgreedLossScaleOptimizer
x = np.ones((8, 5), "float32")
x[2:4] = 1e5  # first batch of 4: replica 1's half overflows float16; second batch is clean
y = np.ones((8, 3), "float32")
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    inner = clipping_optimizer(keras.optimizers.SGD, "global_norm", 1.0, learning_rate=0.1)
    outer = AgreedLossScaleOptimizer(inner) if sys.argv[1] == "agreed" else inner
    model.compile(optimizer=outer, loss="mse")
before = [w.copy() for w in model.get_weights()]
model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
opt = model.optimizer
print(json.dumps({
    "finite": bool(all(np.isfinite(w).all() for w in model.get_weights())),
    "changed": bool(any((a != b).any() for a, b in zip(before, model.get_weights()))),
    "scale": float(opt.dynamic_scale.numpy()), "initial_scale": opt.initial_scale,
    "skipped": float(opt.skipped_steps.numpy()) if hasattr(opt, "skipped_steps") else None,
    "applied": inner.read_clip_stats()["optimizer_steps"]}))
""")


def _overflow_run(kind: str) -> dict:
    out = subprocess.run([sys.executable, "-c", OVERFLOW_SCRIPT, kind], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_float16_overflow_on_one_replica_skips_the_step_on_every_replica():
    """Two logical CPU devices stand in for two GPUs."""
    assert not _overflow_run("keras")["finite"]  # Keras keeps replica 0's "finite": NaN
    agreed = _overflow_run("agreed")
    assert agreed["finite"] and agreed["changed"]
    assert agreed["skipped"] == 1 and agreed["applied"] == 1
    assert agreed["scale"] == agreed["initial_scale"] / 2


def test_float16_training_compiles_with_the_agreed_loss_scaling(tmp_path):
    """... and saves the optimizer state once (Keras' wrapper wrote the inner optimizer's
    variables a second time), and loads it back."""
    import zipfile

    import h5py

    from components.train.loss_scale import AgreedLossScaleOptimizer
    from components.train.run import _compile
    from components.train.runtime import Runtime

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    cfg = TrainConfig.of(examples="e", output="o", clip="global_norm")
    runtime = Runtime(None, 1, [], "mixed_float16", False, False, 1)
    inner = _compile(model, cfg, runtime, 0.1)
    assert isinstance(model.optimizer, AgreedLossScaleOptimizer)
    assert model.optimizer.inner_optimizer is inner
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(model.optimizer))
    assert isinstance(restored, AgreedLossScaleOptimizer)
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive, \
            h5py.File(archive.open("model.weights.h5")) as weights:
        arrays = []
        weights["optimizer"].visititems(
            lambda name, item: arrays.append(name) if isinstance(item, h5py.Dataset) else None)
    assert len(arrays) == len(model.optimizer.variables), arrays
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.optimizer.dynamic_scale) == float(model.optimizer.dynamic_scale)
    assert int(loaded.optimizer.inner_optimizer.iterations) == int(inner.iterations) == 1


@pytest.mark.parametrize("optimizer,given,used", [("adamw", -1.0, 0.01), ("sgd", -1.0, 1e-4),
                                                ("sgd", 0.05, 0.05), ("adamw", 0.0, 0.0)])
def test_weight_decay_is_decoupled_and_spares_bn_scale_shift_and_biases(optimizer, given, used):
    """A step with zero gradients moves nothing but the decay: kernels shrink by
    lr * decay (Keras' decoupled form), BN gamma/beta and biases stay as they were."""
    from components.train.run import _optimizer

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="body"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(2, name="classifier")])
    cfg = TrainConfig.of(examples="e", output="o", optimizer=optimizer,
                         weight_decay=given).validate().resolved()
    assert cfg.optimizer.weight_decay == used
    opt = _optimizer(cfg, 0.5)
    variables = model.trainable_variables
    before = [np.array(v) for v in variables]
    opt.apply([np.zeros(v.shape, "float32") for v in variables], variables)
    for variable, old in zip(variables, before, strict=True):
        shrunk = old * (1 - 0.5 * used) if variable.name == "kernel" else old
        np.testing.assert_allclose(np.array(variable), shrunk, rtol=1e-6, err_msg=variable.path)


@pytest.mark.parametrize("settings,message", [
    (dict(optimizer="adam"), "--optimizer 'adam': use one of adamw, sgd"),
    (dict(weight_decay=1.5), "--weight-decay 1.5"),
    (dict(clip="autoclip", clip_threshold=150.0), "percentile"),
    (dict(clip="global_norm", clip_threshold=0.0), "--clip-threshold 0.0"),
])
def test_an_optimizer_or_clipping_setting_that_cannot_apply_is_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.of(examples="e", output="o", **settings).validate()


def test_the_defaults_resolve_to_what_each_choice_means():
    """-1 stands for the choice's own value; the lineage's hash sees the value, not -1."""
    from components.train.run import config_hash

    default = TrainConfig.of(examples="e", output="o").validate().resolved()
    assert (default.clipping.clip, default.clipping.clip_threshold) == ("autoclip", 95.0)
    assert default.batch_norm.fine_tune_blocks == 3 and default.loss.class_weights is False
    assert TrainConfig.of(examples="e", output="o", clip="agc").resolved() \
        .clipping.clip_threshold == 0.01
    assert TrainConfig.of(examples="e", output="o", bn_policy="full").resolved() \
        .batch_norm.fine_tune_blocks == 0
    spelled = TrainConfig.of(examples="e", output="o", clip_threshold=95.0, weight_decay=0.01,
                             fine_tune_blocks=3)
    assert config_hash(spelled) == config_hash(TrainConfig.of(examples="e", output="o"))


def test_bn_reestimation_that_hurts_validation_is_discarded():
    """Statistics re-estimated on batches unlike the validation data (a shifted input)
    make validation worse: the trained statistics are put back, and both are reported."""
    from components.train.run import _reestimate_if_better

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    base = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()],
                            name=model_lib.BASE_NAME)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(base(inputs)))
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] > 0).astype(int), 2)
    model.layers[-1].set_weights([np.array([[-5, 5], [0, 0], [0, 0], [0, 0]], "float32"),
                                  np.zeros(2, "float32")])
    import tensorflow as tf

    val = tf.data.Dataset.from_tensors((x, y))

    def val_scores():
        return model.evaluate(val, verbose=0, return_dict=True)

    trained = [np.array(v) for v in base.layers[0].non_trainable_variables]
    report = _reestimate_if_better(model, [(x + 3.0, y)], val_scores)
    assert report["batches"] == 1 and not report["kept"]
    assert report["after"]["accuracy"] < report["before"]["accuracy"] == 1.0
    for variable, old in zip(base.layers[0].non_trainable_variables, trained, strict=True):
        np.testing.assert_array_equal(np.array(variable), old)
    report = _reestimate_if_better(model, [(x, y)], val_scores)
    assert report["kept"] and report["after"]["accuracy"] == 1.0


def test_class_weights_only_for_imbalanced_training_data():
    from components.train.run import class_weights

    balanced = {"counts": {"train": {"a": 50, "b": 45}}}
    assert class_weights(balanced, ["a", "b"]) is None
    skewed = {"counts": {"train": {"a": 90, "b": 10}}}
    weights = class_weights(skewed, ["a", "b"])
    assert weights[1] > weights[0]
    assert sum(w * n for w, n in zip(weights.values(), (90, 10), strict=True)) == \
        pytest.approx(100)


@pytest.mark.parametrize("run_id", [".", "..", "a/b", "-x"])
def test_a_run_id_that_is_a_path_is_refused(run_id):
    """Backups of run R live in backup_dir/R and are deleted: R must never be a path."""
    from components.train.config import TrainConfig

    with pytest.raises(ConfigError, match="--run-id"):
        TrainConfig.of(examples="e", output="o", backup_dir="b", run_id=run_id).validate()


@pytest.mark.parametrize("xla,gpus,expected", [("auto", 0, False), ("auto", 1, True),
                                               ("auto", 2, False), ("off", 1, False),
                                               ("on", 1, True), ("on", 0, True)])
def test_xla_is_off_with_several_gpus(xla, gpus, expected):
    from components.train.runtime import use_xla

    assert use_xla(xla, gpus) is expected


def test_xla_on_with_several_gpus_is_a_config_error():
    from components.train.runtime import use_xla

    with pytest.raises(ConfigError, match="--xla on with 2 GPUs"):
        use_xla("on", 2)


def test_preprocessing_runs_in_float32_under_mixed_bfloat16():
    """bf16 rounded the caffe mean subtraction by up to 1.17 (values up to 255)."""
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    reference = pixels[..., ::-1] - np.array(model_lib.IMAGENET_BGR_MEAN, "float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = model_lib.build_model(3, 32, "none", 0.0)
        out = model.get_layer("preprocess")(pixels)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert "float32" in str(out.dtype)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), reference, atol=1e-4)


def test_the_clipping_optimizer_serializes_with_its_settings():
    optimizer = clipping_optimizer(keras.optimizers.AdamW, "agc", 0.02, agc_eps=1e-4,
                                   agc_exclude_names=("classifier",), learning_rate=3e-4)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(again).__name__ == "ClippedAdamW"
    assert (again.clip_mode, again.clip_threshold, again.agc_eps, again.agc_exclude_names) == \
        ("agc", 0.02, 1e-4, ("classifier",))


def test_a_trained_model_loads_compiled_and_resumes_training(trained_dir, examples_dir):
    """load_model's default compile=True used to fail on the unregistered optimizer."""
    from components.train.data import make_dataset

    model = keras.models.load_model(trained_dir / "model.keras")
    assert type(model.optimizer).__name__.startswith("Clipped")
    assert model.optimizer.clip_mode == "autoclip"
    batches = make_dataset(str(examples_dir), "train", 32, 8, 3).take(1)
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_the_training_stream_has_only_full_batches_and_a_buffer_sized_in_bytes(examples_dir):
    """A ragged last batch gives BN's batch statistics a handful of images and XLA another
    shape: the training stream repeats before batching and drops nothing but remainders."""
    from components.common.examples import shard_files
    from components.train.data import make_dataset, shuffle_examples

    stream = make_dataset(str(examples_dir), "train", 32, 7, 3, shuffle=True, examples=30)
    assert {int(x.shape[0]) for x, _ in stream.take(12)} == {7}
    files = shard_files(str(examples_dir), "train")
    size = sum(__import__("os").path.getsize(f) for f in files)
    assert shuffle_examples(files, 30, 256) == 256 * 2**20 // (size // 30)
    assert shuffle_examples(files, 30, 1) >= 64, "never so small that it stops mixing"


@pytest.mark.parametrize("policy,setting,steps,expected", [
    ("frozen", -1, 160, 0), ("bn_only", -1, 160, 50), ("full", -1, 3, 3),
    ("full", 0, 160, 0), ("bn_only", 7, 160, 7)])
def test_batch_statistics_policies_reestimate_by_default(policy, setting, steps, expected):
    from components.train.config import TrainConfig

    cfg = TrainConfig.of(examples="x", output="y", bn_policy=policy,
                         bn_reestimate_batches=setting).validate()
    assert cfg.batch_norm.reestimate_batches(steps) == expected


def test_an_unknown_reestimate_setting_is_refused():
    from components.train.config import TrainConfig

    with pytest.raises(ConfigError, match="-1 \\(automatic\\)"):
        TrainConfig.of(examples="x", output="y", bn_reestimate_batches=-2).validate()


def test_clipping_refuses_a_keras_it_was_not_verified_against():
    from components.train.clipping import require_tested_keras

    require_tested_keras(keras.__version__)
    with pytest.raises(ImportError, match="found Keras 3.16.0"):
        require_tested_keras("3.16.0")


@pytest.mark.parametrize("change,expected", [
    (dict(bn_policy="full", epochs=5),
     [("batch_stats_head", 0, 2, 1e-3), ("full", 0, 3, 1e-4)]),
    (dict(bn_policy="bn_only", head_epochs=1, fine_tune_learning_rate_factor=0.5),
     [("batch_stats_head", 0, 1, 1e-3), ("bn_only", 0, 9, 5e-4)]),
    (dict(bn_policy="bn_only"), [("batch_stats_head", 0, 2, 1e-3), ("bn_only", 0, 8, 1e-3)]),
    (dict(), [("frozen", 0, 2, 1e-3), ("frozen", 3, 8, 1e-4)]),  # the default recipe
    (dict(fine_tune_blocks=16), [("frozen", 0, 2, 1e-3), ("frozen", 16, 8, 1e-4)]),
    (dict(fine_tune_blocks=0), [("frozen", 0, 10, 1e-3)]),  # only the head: one phase
    (dict(bn_policy="full", head_epochs=0), [("full", 0, 10, 1e-3)]),
])
def test_every_policy_that_trains_the_backbone_warms_the_head_up_first(change, expected):
    phases = TrainConfig.of(examples="e", output="o", **change).validate().phases()
    assert [(p.bn_policy, p.unfrozen_blocks, p.epochs) for p in phases] == \
        [e[:3] for e in expected]
    assert [p.learning_rate for p in phases] == pytest.approx([e[3] for e in expected])
