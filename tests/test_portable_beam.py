"""The data step and evaluation on Beam's portable runner, as on Flink, Spark or Dataflow:
the job goes through the Job API to Beam's local job service, and its work runs in SDK
worker processes of their own (closures pickled, no memory or local state shared with
this process; the job service keeps its workers across jobs, as a Flink task manager's
worker pool does). Both must find exactly what the in-process DirectRunner finds."""

import dataclasses
import json

import pytest
import tensorflow as tf

from components.common.examples import MANIFEST_FILE, STATS_FILE, shard_files
from components.evaluate.gate import GateConfig
from components.evaluate.run import run as evaluate
from components.prepare_data.config import PrepareConfig
from components.prepare_data.run import run as prepare
from tests.beam_services import PortableBeam

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def portable(tmp_path_factory):
    services = PortableBeam(tmp_path_factory.mktemp("beam-services"), workers=2)
    yield services
    services.stop()


def _records(examples, split: str) -> list[dict]:
    """Each tf.Example of ``split`` as a dict of its features (a proto map's serialized
    order is not fixed across processes), sorted."""
    examples = (tf.train.Example.FromString(r.numpy()).features.feature
                for r in tf.data.TFRecordDataset(shard_files(str(examples), split)))
    rows = [{key: feature[key].SerializeToString(deterministic=True) for key in feature}
            for feature in examples]
    return sorted(rows, key=lambda row: row["image/sha256"])


def _lines(path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()),
                  key=lambda row: json.dumps(row, sort_keys=True))


def test_the_data_step_on_the_portable_runner_writes_the_direct_runners_examples(
        portable, demo_dir, examples_dir, tmp_path):
    out, jobs = tmp_path / "examples", portable.jobs_done()
    prepare(PrepareConfig(source=str(demo_dir), output=str(out), beam_args=portable.args))
    assert portable.jobs_done() - jobs == 2, "both passes went through the job service"
    assert portable.workers_started() >= 2, "the work ran in SDK worker processes"
    assert _lines(out / MANIFEST_FILE) == _lines(examples_dir / MANIFEST_FILE)
    stats, direct = (json.loads((d / STATS_FILE).read_text()) for d in (out, examples_dir))
    for found in (stats, direct):
        found.pop("config")  # the Beam arguments and the output folder differ, by design
    assert stats == direct
    for split in ("train", "val", "test"):
        assert _records(out, split) == _records(examples_dir, split), split


def test_evaluation_on_the_portable_runner_scores_every_image_as_the_direct_runner(
        portable, saved_model_dir, examples_dir, tmp_path):
    """With Beam's --temp_location the workers load the model from a copy placed there and
    read the test shards where the examples are: what workers on other machines need."""
    gate = GateConfig.only(min_accuracy=0.0)
    direct = evaluate(str(saved_model_dir), str(examples_dir), str(tmp_path / "direct"), gate)
    jobs, temp = portable.jobs_done(), tmp_path / "beam-temp"
    found = evaluate(str(saved_model_dir), str(examples_dir), str(tmp_path / "portable"),
                     dataclasses.replace(gate, beam_args=(*portable.args,
                                                          f"--temp_location={temp}")))
    assert portable.jobs_done() - jobs == 1, "the inference went through the job service"
    assert temp.is_dir() and not any(temp.iterdir()), "the step's work there is deleted"
    rows = {d: {r["source"]: r for r in _lines(tmp_path / d / "predictions_candidate.jsonl")}
            for d in ("direct", "portable")}
    assert rows["portable"].keys() == rows["direct"].keys() and rows["direct"]
    for source, row in rows["direct"].items():
        other = rows["portable"][source]
        assert (other["sha256"], other["label"]) == (row["sha256"], row["label"]), source
        assert other["probabilities"] == pytest.approx(row["probabilities"], abs=1e-5), source
    assert (found["decision"], found["reasons"]) == (direct["decision"], direct["reasons"])
