"""tf.data input: interleaved shards, a shuffle buffer bounded in bytes, parallel decode,
batch-then-augment, and a prefetch of whole executions."""

from __future__ import annotations

import tensorflow as tf

from components.common import storage
from components.common.augment import augment_batch
from components.common.augment_policy import AugmentPolicy
from components.common.examples import ENCODED, LABEL, parse, read_stats, shard_files
from components.common.preprocess import decode_resize

AUTOTUNE = tf.data.AUTOTUNE
MIN_SHUFFLE_EXAMPLES = 64  # below this a buffer no longer mixes classes


def shuffle_examples(files: list[str], examples: int, buffer_mb: int) -> int:
    """How many serialized examples ``buffer_mb`` holds, from the shards' mean example size
    (about 30 KB for a photo stored at 404 px; a 3.5-MB original would fill 256 MB with 73)."""
    total = sum(storage.stat(f).size for f in files)
    per_example = max(1, total // max(1, examples))
    return max(MIN_SHUFFLE_EXAMPLES, buffer_mb * 2**20 // per_example)


def make_dataset(examples_dir: str, split: str, image_size: int, batch_size: int,
                 num_classes: int, augment: AugmentPolicy | None = None,
                 shuffle: bool = False, seed: int = 0, examples: int | None = None,
                 shuffle_buffer_mb: int = 256, prefetch_batches: int = 2,
                 shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
    """Batches of ``(pixels float32 [B,S,S,3] in 0-255, one-hot labels [B,C])``.

    ``shuffle`` makes the endless training stream: shuffled within a buffer of
    ``shuffle_buffer_mb`` of serialized examples, repeated before batching, and only full
    batches (a ragged last batch gives degenerate batch statistics to the BN policies that
    train them, and another XLA compilation for its shape). Augmentation (``augment``) is
    for that stream only. Otherwise one pass, with its last partial batch; ``examples``
    (the split's size) gives it a known length: TFRecord datasets have none, and Keras then
    finds the end of every validation pass by running out ("Your input ran out of data").
    ``prefetch_batches`` is a fixed depth, not AUTOTUNE, whose buffer grew until hosts ran
    out of memory (the TF Model Garden fixes it for that reason): training asks for two
    executions' worth of batches, so one is ready while the device runs the other.

    ``shard`` (workers, index) makes the stream this worker's share. In training,
    ``batch_size`` is a replica's: every worker shuffles alike (same seed), the shuffled
    stream's batches go to the workers in turn, and each decodes only its own, so together
    they train on the global batches one process would; each augments with random draws
    of its own. Otherwise the worker takes every ``workers``-th example.
    """
    files = shard_files(examples_dir, split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    workers, index = shard
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=AUTOTUNE, deterministic=not shuffle or workers > 1)
    if shuffle:
        count = examples or read_stats(examples_dir)["split_totals"][split]
        buffer = shuffle_examples(files, count, shuffle_buffer_mb)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()
        if workers > 1:
            ds = ds.batch(batch_size, drop_remainder=True).shard(workers, index).unbatch()
    elif workers > 1:
        ds = ds.shard(workers, index)
        examples = None if examples is None else len(range(index, examples, workers))

    def decode(serialized):
        example = parse(serialized)
        return (decode_resize(example[ENCODED], image_size),
                tf.one_hot(example[LABEL], num_classes))

    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=not shuffle)
    ds = ds.batch(batch_size, drop_remainder=shuffle, num_parallel_calls=AUTOTUNE)
    if examples is not None and not shuffle:
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-examples // batch_size)))
    if augment is not None:
        draws = None if workers == 1 else index + 1
        ds = ds.map(lambda x, y: (augment_batch(x, augment, draws), y),
                    num_parallel_calls=AUTOTUNE)
    return ds.prefetch(prefetch_batches)
