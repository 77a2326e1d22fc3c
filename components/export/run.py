"""The export step: trained_model in, a validated ``saved_model`` artifact out."""

from __future__ import annotations

import json
import logging
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from components.common import outputs, progress, storage
from components.common.contract import read_json
from components.common.examples import ENCODED, parse, require_complete, shard_files
from components.common.preprocess import decode_resize
from components.export import validate
from components.export.contract import DESCRIPTIONS, METADATA_FILE
from components.export.serving import save_serving_model
from components.train.contract import CONFIG_FILE, MODEL_FILE, model_facts, recipe
from components.train.model import load_trained_model

log = logging.getLogger(__name__)


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _test_images(examples: str, limit: int) -> list[bytes]:
    dataset = tf.data.TFRecordDataset(shard_files(examples, "test")).map(parse).take(limit)
    return [r[ENCODED].numpy() for r in dataset]


def run(model_dir: str, examples: str, output: str, parity_images: int = 32) -> dict:
    """Export, and complete ``output`` only if every infra-validation check passes."""
    require_complete(examples)
    outputs.require_complete(model_dir, "train")
    with storage.local_copy(model_dir) as model_local, storage.local_copy(examples) as ex, \
            outputs.local_output(output) as out:
        metadata = _export(model_local, ex, out, parity_images)
    log.info("exported %s (%.1f MB, %.2fx the weights); parity %.1e", output,
             metadata["saved_model_bytes"] / 1e6, metadata["size_ratio"],
             metadata["infra_validation"]["max_probability_difference"])
    return metadata


def _export(model_dir: str, examples: str, output: str, parity_images: int) -> dict:
    config = read_json(model_dir, CONFIG_FILE)
    labels, image_size = config["labels"], config["image_size"]
    model = load_trained_model(storage.join(model_dir, MODEL_FILE))
    validate.require_labels_match(model.output_shape[-1], labels)
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        save_serving_model(model, labels, image_size, output)
        progress.say("saved the SavedModel; loading it in a fresh process")
        images = _test_images(examples, parity_images)
        paths = []
        for i, data in enumerate(images):
            paths.append(os.path.join(scratch, f"{i}.img"))
            with open(paths[-1], "wb") as handle:
                handle.write(data)
        served = validate.load_in_fresh_process(output, paths)
    pixels = tf.stack([decode_resize(tf.constant(b), image_size) for b in images])
    keras_probs = np.asarray(model(pixels, training=False), dtype=np.float32)
    tolerance = validate.tolerance_for(config["runtime"]["precision"])
    worst = validate.check_parity(keras_probs, served, labels, tolerance)
    progress.say(f"check: served = Keras on {len(images)} test images (largest difference "
                 f"{worst:.1e}, tolerance {tolerance:.0e})")
    validate.check_cli_description(output)
    progress.say("check: signatures as saved_model_cli describes them")
    serve = tf.saved_model.load(output).signatures["serving_default"]
    latency = validate.measure_latency(serve, images[0])
    progress.say("check: median latency " + ", ".join(
        f"{v['p50_ms']:.0f} ms at {k.replace('_', ' ')}" for k, v in latency.items()))
    weights_bytes = int(sum(np.asarray(v).nbytes for v in model.variables))
    saved_bytes = _folder_bytes(output)
    metadata = {
        "input_size": image_size, "labels": labels, "signature": "serving_default",
        "tensorflow": tf.__version__, "keras": keras.__version__,
        **model_facts(config), "data_fingerprint": config["data_fingerprint"],
        "training": recipe(config),
        "saved_model_bytes": saved_bytes, "weights_bytes": weights_bytes,
        "content_sha256": outputs.content_sha256(output, exclude=DESCRIPTIONS),
        "size_ratio": round(saved_bytes / weights_bytes, 3),
        "infra_validation": {"passed": True, "parity_images": len(images),
                             "max_probability_difference": worst, "tolerance": tolerance,
                             "latency": latency},
    }
    with open(os.path.join(output, METADATA_FILE), "w") as handle:
        json.dump(metadata, handle, indent=2)
    return metadata
