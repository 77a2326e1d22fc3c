"""The data-preparation step: source files in, the ``examples`` artifact out."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict

from components.common import beam_work, outputs, progress, storage
from components.common.errors import ConfigError
from components.common.examples import (
    AUGMENTATION_FILE,
    DATA_REPORT_FILE,
    LABELS_FILE,
    MANIFEST_FILE,
    PREVIEW_FILE,
    STATS_FILE,
)
from components.common.publish import Published
from components.prepare_data import beam_job, report
from components.prepare_data.config import SPLITS, PrepareConfig
from components.prepare_data.listing import fingerprint, list_source
from components.prepare_data.split import Candidate, assign_splits

log = logging.getLogger(__name__)
PREVIEW_SIZE = 160
PREVIEW_VARIANTS = 4


def _read_split_state(uri: str) -> dict[str, str]:
    """The pinned split of each image digest; a file this step did not write is refused."""
    if not uri or not storage.exists(uri):
        return {}
    state = {}
    for number, line in enumerate(storage.read_text(uri).splitlines(), start=1):
        try:
            row = json.loads(line) if line else None
            if row is not None:
                state[row["sha256"]] = row["split"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"--split-state {uri}: line {number} is not a split record "
                              f"({type(err).__name__}: {err}); restore the file the data "
                              "step wrote, or give a new path to start the pins afresh") from err
    return state


def _manifest(inspected: list[dict], decisions: dict[str, tuple[str, str]]) -> list[dict]:
    rows = []
    for row in sorted(inspected, key=lambda r: (r["uri"], r["key"])):
        split, reason = decisions.get(row["key"], ("", row.get("skip_reason", "")))
        rows.append({
            "uri": row["uri"], "label": row["label"], "size": row["size"],
            "sha256": row.get("sha256", ""), "status": "accepted" if split else "skipped",
            "split": split, "reason": reason,
            **{k: row[k] for k in ("width", "height", "format", "mode") if k in row},
        })
    return rows


def _preview(manifest: list[dict], cfg: PrepareConfig) -> str:
    import tensorflow as tf

    from components.common.augment import augment_batch
    from components.common.preprocess import decode_resize

    train = sorted((r for r in manifest if r["split"] == "train"), key=lambda r: r["sha256"])
    chosen = train[: cfg.preview_images]
    originals, augmented = [], []
    for row in chosen:
        image = decode_resize(tf.constant(storage.read_bytes(row["uri"])), PREVIEW_SIZE)
        batch = augment_batch(tf.repeat(image[None], PREVIEW_VARIANTS, axis=0), cfg.augmentation)
        originals.append((row["label"], image.numpy()))
        augmented.append(list(batch.numpy()))
    return report.preview_html(originals, augmented, cfg.augmentation)


def published(stats: dict, output: str) -> Published:
    """What the UI shows of a run with ``stats`` written to ``output``."""
    return Published(
        metadata={k: stats[k] for k in ("fingerprint", "labels", "split_totals", "skipped")},
        pages={"data_report": storage.join(output, DATA_REPORT_FILE),
               "augmentation_preview": storage.join(output, PREVIEW_FILE)})


def run(cfg: PrepareConfig) -> dict:
    """Validate, de-duplicate, split and shard ``cfg.source`` into ``cfg.output``."""
    cfg.validate()
    files = list_source(cfg.source)
    data_fingerprint = fingerprint(files)
    log.info("listed %d files from %s (fingerprint %s)", len(files), cfg.source,
             data_fingerprint[:12])
    progress.say(f"listed {len(files)} files in {cfg.source}")
    outputs.check_writable(cfg.output)  # before the inspection pass, not after it
    keyed = [{**asdict(f), "key": i} for i, f in enumerate(files)]
    with beam_work.work_folder(cfg.beam_args, "prepare") as work:
        inspected = beam_job.inspect_all(keyed, work, cfg.min_side, cfg.max_pixels,
                                         cfg.beam_args)
    valid = [r for r in inspected if not r.get("skip_reason")]
    decisions = assign_splits(
        [Candidate(r["key"], r["uri"], r["label"], r["sha256"], r["dhash"]) for r in valid],
        cfg.fractions, _read_split_state(cfg.split_state), cfg.near_duplicates,
        cfg.allow_small_classes,
    )
    by_key = {d.key: (d.split, d.skip_reason) for d in decisions}
    manifest = _manifest(inspected, by_key)
    labels = sorted({r["label"] for r in manifest if r["status"] == "accepted"})
    label_index = {label: i for i, label in enumerate(labels)}
    shard_rows = []
    for split in SPLITS:
        rows = sorted((r for r in valid if by_key[r["key"]][0] == split),
                      key=lambda r: r["sha256"])
        n_shards = max(1, math.ceil(len(rows) / cfg.examples_per_shard))
        for i, row in enumerate(rows):
            shard = f"{split}/{split}-{i % n_shards:05d}-of-{n_shards:05d}.tfrecord"
            shard_rows.append({**row, "shard": shard,
                               "label_index": label_index[row["label"]]})
    outputs.begin(cfg.output)
    beam_job.write_shards(shard_rows, cfg.output, cfg.max_pixels, cfg.stored_side,
                          cfg.beam_args)
    stats = report.compute_stats(manifest, labels, data_fingerprint)
    stats["config"] = {**asdict(cfg), "beam_args": list(cfg.beam_args),
                       "stored_side": cfg.stored_side}
    texts = {
        LABELS_FILE: "\n".join(labels) + "\n",
        MANIFEST_FILE: "".join(json.dumps(r) + "\n" for r in manifest),
        STATS_FILE: json.dumps(stats, indent=2),
        AUGMENTATION_FILE: json.dumps(cfg.augmentation.to_dict(), indent=2),
        DATA_REPORT_FILE: report.markdown_report(stats, cfg.augmentation),
        PREVIEW_FILE: _preview(manifest, cfg),
    }
    for name, text in texts.items():
        storage.write_text(storage.join(cfg.output, name), text)
    outputs.finish(cfg.output)
    if cfg.split_state:
        state = {**_read_split_state(cfg.split_state),
                 **{r["sha256"]: r["split"] for r in manifest if r["status"] == "accepted"}}
        storage.write_text(cfg.split_state, "".join(
            json.dumps({"sha256": k, "split": v}) + "\n" for k, v in sorted(state.items())))
    log.info("wrote %d examples (%s), skipped %d", stats["accepted"], stats["split_totals"],
             stats["skipped"])
    return stats
