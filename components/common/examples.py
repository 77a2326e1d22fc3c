"""The ``examples`` artifact contract: tf.Example keys, file layout, and readers."""

from __future__ import annotations

import json

import tensorflow as tf

from components.common import storage

ENCODED = "image/encoded"
LABEL = "image/class/label"
LABEL_TEXT = "image/class/text"
SHA256 = "image/sha256"
SOURCE = "image/source"
COMPLETE_MARKER = "_SUCCESS"

FEATURES = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    LABEL: tf.io.FixedLenFeature([], tf.int64),
    LABEL_TEXT: tf.io.FixedLenFeature([], tf.string),
    SHA256: tf.io.FixedLenFeature([], tf.string),
    SOURCE: tf.io.FixedLenFeature([], tf.string),
}


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def make_example(encoded: bytes, label: int, label_text: str, sha256: str, source: str) -> bytes:
    feature = {
        ENCODED: _bytes(encoded),
        LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        LABEL_TEXT: _bytes(label_text.encode()),
        SHA256: _bytes(sha256.encode()),
        SOURCE: _bytes(source.encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def shard_pattern(examples_dir: str, split: str) -> str:
    return storage.join(examples_dir, split, "*.tfrecord")


def shard_files(examples_dir: str, split: str) -> list[str]:
    files = sorted(tf.io.gfile.glob(shard_pattern(examples_dir, split)))
    if not files:
        raise FileNotFoundError(f"no {split} shards in {examples_dir}: run prepare-data first")
    return files


def require_complete(examples_dir: str) -> None:
    """Refuse an examples folder whose writer did not finish."""
    if not storage.exists(storage.join(examples_dir, COMPLETE_MARKER)):
        raise FileNotFoundError(
            f"{examples_dir} is not a complete examples artifact (no {COMPLETE_MARKER}); "
            "re-run prepare-data"
        )


def read_labels(examples_dir: str) -> list[str]:
    return storage.read_text(storage.join(examples_dir, "labels.txt")).splitlines()


def read_stats(examples_dir: str) -> dict:
    return json.loads(storage.read_text(storage.join(examples_dir, "stats.json")))


def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    return tf.io.parse_single_example(serialized, FEATURES)
