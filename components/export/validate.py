"""Infra validation: the exported SavedModel must load, describe itself and agree."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np

from components.common.errors import ConfigError

# Loads the SavedModel with project code made unimportable, and answers on real bytes.
FRESH_PROCESS_PROBE = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("components", "pipeline"):
            raise ImportError(f"project module {name} must not be needed to serve")
sys.meta_path.insert(0, Block())
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
images = [open(p, "rb").read() for p in json.loads(sys.argv[2])]
out = model.signatures["serving_default"](image_bytes=tf.constant(images))
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "classes": [c[0].decode() for c in out["classes"].numpy()]}))
"""

EXPECTED_SIGNATURES = {
    "serving_default": {"inputs": {"image_bytes": ("DT_STRING", "(-1)")},
                        "outputs": ("probabilities", "classes", "top_k_classes",
                                    "top_k_scores")},
    "serving_pixels": {"inputs": {"pixels": ("DT_FLOAT", None)},
                       "outputs": ("probabilities", "classes", "top_k_classes",
                                   "top_k_scores")},
}


class InfraValidationError(RuntimeError):
    """The exported model must not be trusted; the message says which check failed."""


def load_in_fresh_process(export_dir: str, image_paths: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-I", "-c", FRESH_PROCESS_PROBE, os.path.abspath(export_dir),
         json.dumps([os.path.abspath(p) for p in image_paths])],
        capture_output=True, text=True, env=env, cwd="/", timeout=600,
    )
    if result.returncode != 0:
        raise InfraValidationError(f"SavedModel does not load in a fresh process:\n"
                                   f"{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_cli_description(export_dir: str) -> str:
    """``saved_model_cli show --all`` must list the documented signatures."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run([cli, "show", "--dir", export_dir, "--all"], capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        raise InfraValidationError(f"saved_model_cli failed: {result.stderr[-1000:]}")
    text = result.stdout
    for name, spec in EXPECTED_SIGNATURES.items():
        match = re.search(rf"signature_def\['{name}'\]:(.*?)(?=signature_def\[|\Z)", text, re.S)
        if not match:
            raise InfraValidationError(f"signature {name!r} missing from saved_model_cli output")
        block = match.group(1)
        for input_name, (dtype, shape) in spec["inputs"].items():
            pattern = rf"inputs\['{input_name}'\] tensor_info:\s*dtype: {dtype}\s*shape: ([^\n]*)"
            found = re.search(pattern, block)
            if not found or (shape and found.group(1).strip() != shape):
                raise InfraValidationError(f"{name}: input {input_name!r} is not {dtype} "
                                           f"{shape or ''}")
        for output in spec["outputs"]:
            if f"outputs['{output}']" not in block:
                raise InfraValidationError(f"{name}: output {output!r} missing")
    return text


def tolerance_for(precision: str) -> float:
    """float32 is tight; bfloat16/float16 keep 8/11 mantissa bits, so probabilities that
    pass through 50 layers can move by about 1e-2."""
    return 1e-4 if precision == "float32" else 2e-2


def check_parity(keras_probs: np.ndarray, served: dict, labels: list[str], tolerance: float):
    served_probs = np.asarray(served["probabilities"])
    worst = float(np.abs(served_probs - keras_probs).max())
    top1_keras = [labels[i] for i in keras_probs.argmax(1)]
    if top1_keras != served["classes"]:
        raise InfraValidationError(f"top-1 differs between Keras and the served bytes signature: "
                                   f"{top1_keras} vs {served['classes']}")
    if worst > tolerance:
        raise InfraValidationError(f"probabilities differ by {worst:.2e} > {tolerance:.0e}")
    return worst


def measure_latency(serve, sample: bytes, batch_sizes=(1, 32), repeats=(30, 8)) -> dict:
    import tensorflow as tf

    results = {}
    for batch, n in zip(batch_sizes, repeats, strict=True):
        inputs = tf.constant([sample] * batch)
        serve(image_bytes=inputs)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            serve(image_bytes=inputs)
            times.append((time.perf_counter() - start) * 1000)
        results[f"batch_{batch}"] = {"p50_ms": float(np.percentile(times, 50)),
                                     "p99_ms": float(np.percentile(times, 99))}
    return results


def require_labels_match(model_classes: int, labels: list[str]) -> None:
    if model_classes != len(labels):
        raise ConfigError(f"the model has {model_classes} outputs but labels.txt lists "
                          f"{len(labels)} classes: export with the examples it was trained on")
