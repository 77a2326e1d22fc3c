"""Batch inference over the test shards with tfx-bsl's RunInference (Apache Beam)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx_bsl.public.beam import RunInference
from tfx_bsl.public.proto import model_spec_pb2

from components.common import storage
from components.common.beam_runs import beam_pipeline
from components.common.beam_work import WriteRows, read_rows
from components.common.examples import ENCODED, LABEL, SHA256, SOURCE, read_records

# Beam's adaptive batching starts at one element; whole batches keep the model busy.
BATCH_SIZE = 32
# One DirectRunner worker: TensorFlow already spreads each batch over every core, and
# more worker threads only contend with it (measured in benchmarks/batch_inference.py).
DEFAULT_BEAM_ARGS = ("--runner=FnApiRunner", "--direct_running_mode=in_memory",
                     "--direct_num_workers=1")


def _keyed_bytes(serialized: bytes) -> tuple[str, bytes]:
    """Protobuf parsing in Python: an eager TF op per element costs more than inference."""
    feature = tf.train.Example.FromString(serialized).features.feature
    key = json.dumps({"sha256": feature[SHA256].bytes_list.value[0].decode(),
                      "source": feature[SOURCE].bytes_list.value[0].decode(),
                      "label": int(feature[LABEL].int64_list.value[0])})
    return key, feature[ENCODED].bytes_list.value[0]


def _to_row(item) -> dict:
    key, log = item
    outputs = log.predict_log.response.outputs
    probabilities = tf.make_ndarray(outputs["probabilities"])[0]
    return {**json.loads(key), "probabilities": probabilities.tolist()}


def predict(saved_model: str, shard_files: list[str], images: int, work: str,
            beam_args: tuple[str, ...] = ()) -> list[dict]:
    """Score the ``images`` images of ``shard_files`` through ``serving_default`` (raw
    bytes), the rows passing through ``work`` (see ``beam_work``); rows sorted by sha256."""
    spec = model_spec_pb2.InferenceSpecType(
        saved_model_spec=model_spec_pb2.SavedModelSpec(model_path=saved_model,
                                                       signature_name=["serving_default"]),
        batch_parameters=model_spec_pb2.BatchParameters(min_batch_size=BATCH_SIZE,
                                                        max_batch_size=2 * BATCH_SIZE))
    with beam_pipeline(beam_args, DEFAULT_BEAM_ARGS) as p:
        _ = (
            p
            | "Shards" >> beam.Create(shard_files)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.FlatMap(read_records)
            | "Key" >> beam.Map(_keyed_bytes).with_output_types(tuple[str, bytes])
            | "Infer" >> RunInference(spec)
            | "Row" >> beam.Map(_to_row)
            | "Write" >> beam.ParDo(WriteRows(storage.join(work, "predictions")))
        )
    return read_rows(storage.join(work, "predictions"), "sha256", images)


@dataclass(frozen=True)
class Scoring:
    """Where the Beam job's workers read the test shards and leave their rows; ``staged``
    when they may run on other machines (Beam's ``--temp_location`` given): each model is
    then first copied into ``work`` for them."""

    shards: list[str]
    images: int
    work: str
    beam_args: tuple[str, ...]
    staged: bool

    def predict(self, model: str, name: str) -> list[dict]:
        if self.staged:
            storage.copy_tree(model, storage.join(self.work, f"{name}-model"))
            model = storage.join(self.work, f"{name}-model")
        return predict(model, self.shards, self.images, storage.join(self.work, name),
                       self.beam_args)


def as_arrays(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([r["probabilities"] for r in rows], dtype=np.float64),
            np.array([r["label"] for r in rows], dtype=int))
