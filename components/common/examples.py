"""The ``examples`` artifact contract: tf.Example keys, file layout, and readers."""

from __future__ import annotations

import json

import tensorflow as tf

from components.common import outputs, storage
from components.prepare_data.contract import LABELS_FILE, STATS_FILE

ENCODED = "image/encoded"
LABEL = "image/class/label"
LABEL_TEXT = "image/class/text"
SHA256 = "image/sha256"
SOURCE = "image/source"

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


def shard_files(examples_dir: str, split: str) -> list[str]:
    folder = storage.join(examples_dir, split)
    files = [f.uri for f in storage.list_files(folder) if f.uri.endswith(".tfrecord")] \
        if storage.is_dir(folder) else []
    if not files:
        raise FileNotFoundError(f"no {split} shards in {examples_dir}: run prepare-data first")
    return files


def require_complete(examples_dir: str) -> None:
    """Refuse an examples folder whose writer did not finish."""
    outputs.require_complete(examples_dir, "prepare-data")


def read_labels(examples_dir: str) -> list[str]:
    return storage.read_text(storage.join(examples_dir, LABELS_FILE)).splitlines()


def read_stats(examples_dir: str) -> dict:
    return json.loads(storage.read_text(storage.join(examples_dir, STATS_FILE)))


def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    return tf.io.parse_single_example(serialized, FEATURES)
