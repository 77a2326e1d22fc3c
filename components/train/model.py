"""ResNet50 with preprocessing inside, a small head, and the BatchNormalization policy."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator

import keras
from keras import layers, ops

from components.common import storage
from components.common.errors import ConfigError

log = logging.getLogger(__name__)
BASE_NAME = "resnet50"
HEAD_NAME = "classifier"
# Caffe-style ImageNet preprocessing of keras.applications.resnet50: BGR, mean-subtracted.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)
MIN_BATCH_FOR_BATCH_STATS = 16


@keras.saving.register_keras_serializable(package="finetune")
class ResNetPreprocess(layers.Layer):
    """Raw 0-255 RGB pixels -> what ImageNet ResNet50 weights expect (not ``x / 255``)."""

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        bgr = ops.flip(x, axis=-1)
        return bgr - ops.cast(ops.convert_to_tensor(IMAGENET_BGR_MEAN), self.compute_dtype)


@contextlib.contextmanager
def _weights_file(weights: str) -> Iterator[str]:
    """A local copy of ``weights`` while it is read (Keras reads local files only)."""
    if storage.is_local(weights):
        yield weights
        return
    with tempfile.TemporaryDirectory(prefix="weights-") as scratch:
        local = f"{scratch}/backbone.weights.h5"
        storage.download_file(weights, local)
        yield local


def build_model(num_classes: int, image_size: int, weights: str, dropout: float) -> keras.Model:
    """Inputs: raw RGB pixels ``[B, size, size, 3]`` in 0-255; output: class probabilities."""
    named = weights if weights in ("imagenet", "none") else None
    base = keras.applications.ResNet50(
        include_top=False, weights="imagenet" if named == "imagenet" else None,
        input_shape=(image_size, image_size, 3),
    )
    if named is None:
        if not storage.exists(weights):
            raise ConfigError(f"--weights {weights}: no such file; use imagenet, none, or a "
                              "path to a ResNet50 (include_top=False) .weights.h5 file")
        try:
            with _weights_file(weights) as path:
                base.load_weights(path)
        except (ValueError, OSError, KeyError) as err:
            raise ConfigError(f"--weights {weights}: does not fit ResNet50 "
                              f"(include_top=False): {err}") from err
    inputs = keras.Input((image_size, image_size, 3), name="pixels")
    # float32 even under mixed precision: bf16 would round the mean subtraction (up to 1.2).
    x = ResNetPreprocess(name="preprocess", dtype="float32")(inputs)
    x = base(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name=HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name="resnet50_classifier")


def _block_of(layer_name: str) -> str:
    """'conv4_block2_1_conv' -> 'conv4_block2'; stem layers -> 'stem'."""
    parts = layer_name.split("_")
    return "_".join(parts[:2]) if len(parts) > 1 and parts[1].startswith("block") else "stem"


def top_blocks(base: keras.Model, n: int) -> set[str]:
    blocks = []
    for layer in base.layers:
        block = _block_of(layer.name)
        if block != "stem" and block not in blocks:
            blocks.append(block)
    return set(blocks[len(blocks) - n :]) if n else set()


def apply_bn_policy(model: keras.Model, policy: str, unfreeze_blocks: int = 0,
                    bn_momentum: float = 0.0, sync_bn: bool = False) -> None:
    """Set what trains. BN is frozen with ``trainable = False`` (inference mode in fit).

    - frozen: every BN layer frozen; convolutions frozen except the top ``unfreeze_blocks``
      residual blocks (phase 2 of the Keras fine-tuning guide).
    - bn_only: BN scale/shift train on batch statistics; convolutions frozen.
    - full: everything trains.
    - batch_stats_head: nothing in the backbone trains, but BN normalizes with batch
      statistics (and updates its moving ones): the head warm-up of bn_only and full,
      so that the head learns on the features those policies will produce.
    """
    base = model.get_layer(BASE_NAME)
    base.trainable = True
    unfrozen = top_blocks(base, unfreeze_blocks)
    for layer in base.layers:
        is_bn = isinstance(layer, layers.BatchNormalization)
        if policy == "full":
            layer.trainable = True
        elif policy in ("bn_only", "batch_stats_head"):
            layer.trainable = is_bn
        else:
            layer.trainable = not is_bn and _block_of(layer.name) in unfrozen
        for variable in layer.weights if is_bn else ():
            if variable.path.endswith(("gamma", "beta")):
                variable.trainable = layer.trainable and policy != "batch_stats_head"
        if is_bn and bn_momentum:
            layer.momentum = bn_momentum
        if is_bn and sync_bn:
            layer.synchronized = True


def warn_small_batch(policy: str, per_replica_batch: int) -> str:
    if policy in ("bn_only", "full") and per_replica_batch < MIN_BATCH_FOR_BATCH_STATS:
        message = (f"per-replica batch {per_replica_batch} < {MIN_BATCH_FOR_BATCH_STATS}: batch "
                   f"statistics are noisy for --bn-policy {policy}; use a larger batch, "
                   "--sync-bn across replicas, or --bn-policy frozen")
        log.warning(message)
        return message
    return ""


def _trained_bn_layers(model: keras.Model) -> list:
    return [la for la in model.get_layer(BASE_NAME).layers
            if isinstance(la, layers.BatchNormalization) and la.trainable]


def bn_moving_statistics(model: keras.Model) -> list:
    """The moving mean and variance of the trained BN layers: (variable, copy) pairs."""
    return [(v, ops.convert_to_numpy(v)) for la in _trained_bn_layers(model)
            for v in (la.moving_mean, la.moving_variance)]


def restore_bn_moving_statistics(saved: list) -> None:
    for variable, value in saved:
        variable.assign(value)


def reestimate_bn_statistics(model: keras.Model, batches) -> int:
    """Recompute BN moving statistics as the plain average over clean training batches."""
    bn_layers = _trained_bn_layers(model)
    saved = [la.momentum for la in bn_layers]
    count = 0
    for count, (images, _labels) in enumerate(batches, start=1):
        for layer in bn_layers:
            layer.momentum = 0.0 if count == 1 else (count - 1) / count
        model(images, training=True)
    for layer, momentum in zip(bn_layers, saved, strict=True):
        layer.momentum = momentum
    return count


def load_trained_model(path: str) -> keras.Model:
    """Load ``model.keras`` (this module registers its custom preprocessing layer) in
    Keras' safe mode: a layer that would run arbitrary Python is refused in one line."""
    try:
        return keras.models.load_model(path, compile=False)
    except ValueError as err:
        if "safe_mode" not in str(err):
            raise
        raise ConfigError(f"{path}: Keras refuses to load it safely (it holds a Lambda layer "
                          "or other arbitrary Python code); export a model `finetune train` "
                          "wrote, or rebuild yours without Lambda layers") from err
