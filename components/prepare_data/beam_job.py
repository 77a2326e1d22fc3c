"""The two Apache Beam passes of the data step.

Pass 1 decodes and validates every file and emits a small JSON row (no pixels), so the
driver can de-duplicate and split with a global view. Pass 2 groups the accepted rows
by output shard (rows only: image bytes never go through a shuffle) and each shard is
read, normalised and written by one worker, streaming: memory stays flat as data grows.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile

import apache_beam as beam

from components.common import progress, storage
from components.common.beam_runs import beam_pipeline
from components.common.beam_work import WriteRows, read_rows
from components.common.errors import RunFailed
from components.common.images import InvalidImage, inspect_image, stored_image

# FnApiRunner by name: Beam's DirectRunner first tries to download the Prism runner from
# GitHub for every pipeline (and leaves an empty beam-temp folder when it cannot).
DEFAULT_BEAM_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=multi_threading",
                     "--direct_num_workers=0")
log = logging.getLogger(__name__)
# Counters of the pass running in this process (Beam pickles a transform's arguments, so
# they are found by name); a distributed runner's workers have none and say nothing.
_COUNTERS: dict[str, progress.Counter] = {}


def _counted(value, name: str):
    if counter := _COUNTERS.get(name):
        counter.tick()
    return value


def inspect_file(file: dict, min_side: int, max_pixels: int) -> dict:
    """One manifest row for an input file: its checksums and image facts, or its skip reason."""
    row = dict(file)
    if row.get("skip_reason"):
        return row
    try:
        data = storage.read_bytes(row["uri"])
    except OSError as err:
        row["skip_reason"] = f"unreadable: {err}"
        return row
    row["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        info = inspect_image(data, min_side, max_pixels)
    except InvalidImage as err:
        row["skip_reason"] = str(err)
        return row
    row.update(width=info.width, height=info.height, format=info.format, mode=info.mode,
               dhash=info.dhash)
    return row


def inspect_all(files: list[dict], work: str, min_side: int, max_pixels: int,
                beam_args: tuple[str, ...]) -> list[dict]:
    """One row per file (``key`` identifies it), through ``work`` (see ``beam_work``)."""
    prefix = storage.join(work, "inspected")
    _COUNTERS["inspect"] = progress.Counter("inspected", len(files), "files")
    with beam_pipeline(beam_args, DEFAULT_BEAM_ARGS) as pipeline:
        _ = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Spread" >> beam.Reshuffle()
            | "Inspect" >> beam.Map(inspect_file, min_side, max_pixels)
            | "CountInspected" >> beam.Map(_counted, "inspect")
            | "Write" >> beam.ParDo(WriteRows(prefix))
        )
    return read_rows(prefix, "key", len(files))


def write_shard(item: tuple[str, list[dict]], output: str, max_pixels: int,
                stored_side: int) -> str:
    """Write one TFRecord shard locally, then place it as one atomic object write (TF has
    no ``s3://`` file system, and ``output`` may be on any scheme)."""
    import tensorflow as tf

    from components.common.examples import make_example

    shard_name, rows = item
    target = storage.join(output, shard_name)
    with tempfile.TemporaryDirectory(prefix="shard-") as scratch:
        local = os.path.join(scratch, "shard.tfrecord")
        with tf.io.TFRecordWriter(local) as writer:
            for row in sorted(rows, key=lambda r: r["sha256"]):
                data = stored_image(storage.read_bytes(row["uri"]), max_pixels, stored_side)
                writer.write(make_example(data, row["label_index"], row["label"],
                                          row["sha256"], row["uri"]))
        storage.upload_file(local, target)
    return target


def write_shards(rows: list[dict], output: str, max_pixels: int, stored_side: int,
                 beam_args: tuple[str, ...]) -> list[str]:
    """``rows`` carry ``shard`` (relative file name); returns the written shard URIs."""
    shards = sorted({storage.join(output, r["shard"]) for r in rows})
    _COUNTERS["write"] = progress.Counter("wrote", len(shards), "shards")
    with beam_pipeline(beam_args, DEFAULT_BEAM_ARGS) as pipeline:
        _ = (
            pipeline
            | "Rows" >> beam.Create(rows)
            | "ByShard" >> beam.Map(lambda r: (r["shard"], r))
            | "Group" >> beam.GroupByKey()
            | "WriteShard" >> beam.Map(write_shard, output, max_pixels, stored_side)
            | "CountWritten" >> beam.Map(_counted, "write")
        )
    if missing := [shard for shard in shards if not storage.exists(shard)]:
        raise RunFailed(f"the Beam workers wrote {len(shards) - len(missing)} of {len(shards)} "
                        f"shards where this step can read them (missing: {missing[0]}): "
                        "workers on other machines need the output on storage both reach "
                        "(e.g. gs://BUCKET/examples)")
    return shards
