"""The ``examples`` artifact contract: its files by name, the tf.Example keys of its
TFRecord shards, and their readers. TensorFlow is imported by the functions that need it,
so the file names are cheap to import (the run report, the local runner)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator

from components.common import outputs, storage

LABELS_FILE = "labels.txt"  # one class name per line, in label-index order
MANIFEST_FILE = "manifest.jsonl"  # one row per input file: accepted (with split) or why not
STATS_FILE = "stats.json"  # counts, fingerprint, skip reasons, the step's settings
AUGMENTATION_FILE = "augmentation.json"  # the AugmentPolicy training applies
DATA_REPORT_FILE = "data_report.md"
PREVIEW_FILE = "augmentation_preview.html"
# besides these, one folder per split of ``*.tfrecord`` shards of tf.Examples keyed:
ENCODED = "image/encoded"
LABEL = "image/class/label"
LABEL_TEXT = "image/class/text"
SHA256 = "image/sha256"
SOURCE = "image/source"


def _bytes(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def make_example(encoded: bytes, label: int, label_text: str, sha256: str, source: str) -> bytes:
    import tensorflow as tf

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


def read_records(shard: str) -> Iterator[bytes]:
    """A shard's serialized tf.Examples, read in place when local, else through the storage
    API (any scheme)."""
    import tensorflow as tf

    if storage.is_local(shard):
        yield from (record.numpy() for record in tf.data.TFRecordDataset(shard))
        return
    with tempfile.TemporaryDirectory(prefix="shard-") as scratch:
        local = os.path.join(scratch, "shard.tfrecord")
        storage.download_file(shard, local)
        yield from (record.numpy() for record in tf.data.TFRecordDataset(local))


def parse(serialized):
    """One serialized tf.Example as a dict of tensors by key."""
    import tensorflow as tf

    string, integer = tf.io.FixedLenFeature([], tf.string), tf.io.FixedLenFeature([], tf.int64)
    features = {ENCODED: string, LABEL: integer, LABEL_TEXT: string, SHA256: string,
                SOURCE: string}
    return tf.io.parse_single_example(serialized, features)
