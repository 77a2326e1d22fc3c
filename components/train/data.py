"""tf.data input: interleaved shards, parallel decode, batch-then-augment, prefetch."""

from __future__ import annotations

import tensorflow as tf

from components.common.augment import augment_batch
from components.common.augment_policy import AugmentPolicy
from components.common.examples import ENCODED, LABEL, parse, shard_files
from components.common.preprocess import decode_resize

AUTOTUNE = tf.data.AUTOTUNE


def make_dataset(examples_dir: str, split: str, image_size: int, batch_size: int,
                 num_classes: int, augment: AugmentPolicy | None = None,
                 shuffle: bool = False, seed: int = 0,
                 examples: int | None = None) -> tf.data.Dataset:
    """Batches of ``(pixels float32 [B,S,S,3] in 0-255, one-hot labels [B,C])``.

    Augmentation (``augment``) is for the training split only. ``examples`` (the split's
    size) gives the dataset a known length: TFRecord datasets have none, and Keras then
    finds the end of every validation pass by running out ("Your input ran out of data").
    """
    files = shard_files(examples_dir, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    if shuffle:
        ds = ds.shuffle(2048, seed=seed, reshuffle_each_iteration=True)

    def decode(serialized):
        example = parse(serialized)
        return (decode_resize(example[ENCODED], image_size),
                tf.one_hot(example[LABEL], num_classes))

    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE)
    if examples is not None:
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-examples // batch_size)))
    if augment is not None:
        ds = ds.map(lambda x, y: (augment_batch(x, augment), y), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)
