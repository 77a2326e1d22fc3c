"""The promote step on a real local registry, with stand-in evaluation folders."""

import json

import pytest

from components.common import outputs
from components.promote.run import GateRejected, run
from components.registry.checks import ConflictError
from components.registry.storage_registry import StorageRegistry
from tests.saved_model_stand_in import write_stand_in


def evaluation(tmp_path, name, decision="promote", baseline="", baseline_version=None):
    """Stands in for the evaluate step's output folder (only the files promote reads)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "gate.json").write_text(json.dumps({
        "decision": decision, "reasons": ["because"], "mode": "m", "checks": [],
        "baseline": baseline, "baseline_version": baseline_version}))
    (folder / "metrics.json").write_text(json.dumps({"candidate": {"accuracy": 0.9}}))
    outputs.finish(str(folder))
    return str(folder)


def model(tmp_path, graph: str) -> str:
    """Stands in for another exported SavedModel (other bytes)."""
    folder = write_stand_in(tmp_path / f"sm-{graph}", graph)
    (folder / "export_metadata.json").write_text(json.dumps({"config_hash": "abc"}))
    outputs.finish(str(folder))
    return str(folder)


@pytest.fixture
def saved_model(tmp_path):
    folder = write_stand_in(tmp_path / "sm")
    (folder / "export_metadata.json").write_text(json.dumps({"config_hash": "abc",
                                                             "labels": ["a", "b"]}))
    outputs.finish(str(folder))
    return str(folder)


def test_promotes_records_and_is_idempotent(tmp_path, saved_model):
    reg = str(tmp_path / "reg")
    first = run(saved_model, evaluation(tmp_path, "e1"), reg, "m", "run-1")
    again = run(saved_model, evaluation(tmp_path, "e1b"), reg, "m", "run-1")
    assert first["version"] == again["version"] == 1
    record = StorageRegistry(reg, "m").get_version(1)
    assert record["config_hash"] == "abc" and record["gate"]["decision"] == "promote"
    assert len(StorageRegistry(reg, "m").history()) == 1


def test_refuses_a_rejected_evaluation(tmp_path, saved_model):
    with pytest.raises(GateRejected, match="gate rejected"):
        run(saved_model, evaluation(tmp_path, "e", decision="reject"), str(tmp_path / "r"),
            "m", "run-1")
    assert StorageRegistry(str(tmp_path / "r"), "m").list_versions() == []


def test_a_stale_gate_conflicts_when_production_moved(tmp_path, saved_model):
    reg = str(tmp_path / "reg")
    run(saved_model, evaluation(tmp_path, "e1"), reg, "m", "run-1")
    v1_uri = StorageRegistry(reg, "m").version_uri(1)
    stale = evaluation(tmp_path, "stale", baseline=v1_uri, baseline_version=1)
    run(model(tmp_path, "v2"), evaluation(tmp_path, "e2", baseline=v1_uri, baseline_version=1),
        reg, "m", "run-2")
    with pytest.raises(ConflictError, match="re-read and retry"):
        run(model(tmp_path, "v3"), stale, reg, "m", "run-3")
    assert StorageRegistry(reg, "m").current() == 2


def test_an_explicit_baseline_folder_does_not_block_promotion(tmp_path, saved_model):
    reg = str(tmp_path / "reg")
    run(saved_model, evaluation(tmp_path, "e1"), reg, "m", "run-1")
    result = run(model(tmp_path, "v2"), evaluation(tmp_path, "e2", baseline="/some/folder"), reg,
                 "m", "run-2")
    assert result["version"] == 2 and result["previous_version"] == 1


def test_refuses_an_unfinished_evaluation(tmp_path, saved_model):
    folder = evaluation(tmp_path, "e")
    (tmp_path / "e" / outputs.COMPLETE_MARKER).unlink()
    with pytest.raises(FileNotFoundError, match="not a complete artifact.*re-run evaluate"):
        run(saved_model, folder, str(tmp_path / "reg"), "m", "run-1")
    assert not (tmp_path / "reg").exists()
