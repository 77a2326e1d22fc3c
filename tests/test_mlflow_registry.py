"""The MLflow Model Registry backend against a real ``mlflow server`` on 127.0.0.1."""

import json
import uuid

import pytest

from components.promote.registries import open_registry
from components.promote.registry import ConflictError, RegistryError


@pytest.fixture
def uri(mlflow_server):
    return "mlflow+" + mlflow_server


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def _client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def test_register_is_idempotent_on_run_id_and_content(uri, name, model, mlflow_server):
    reg = open_registry(uri, name)
    first = reg.register(model("a"), "run-1", {"gate": {"decision": "promote"},
                                               "data_fingerprint": "f1",
                                               "metrics": {"accuracy": 0.9}})
    assert reg.register(model("a"), "run-1")["version"] == first["version"] == 1
    assert reg.register(model("a"), "run-2")["run_id"] == "run-1", "same bytes, same version"
    assert reg.register(model("b"), "run-3")["version"] == 2
    versions = _client(mlflow_server).search_model_versions(f"name = '{name}'")
    assert len(versions) == 2
    tags = next(v for v in versions if v.version == "1").tags
    assert (tags["gate_decision"], tags["data_fingerprint"], tags["finetune.run_id"],
            tags["metric.accuracy"]) == ("promote", "f1", "run-1", "0.9")
    assert reg.get_version(1)["metrics"] == {"accuracy": 0.9}
    with reg.saved_model_copy(2) as local:
        assert open(f"{local}/saved_model.pb").read() == "b"


def test_promotion_moves_the_alias_and_rollback_moves_it_back(uri, name, model,
                                                              mlflow_server):
    reg = open_registry(uri, name)
    assert reg.current() is None and reg.production_saved_model() is None
    for run in ("a", "b"):
        reg.promote(reg.register(model(run), run)["version"], run)
    client = _client(mlflow_server)
    assert client.get_model_version_by_alias(name, "production").version == "2"
    assert reg.production_saved_model().startswith("runs:/")
    entry = reg.rollback()
    assert (entry["version"], entry["previous_version"], entry["action"]) == (1, 2, "rollback")
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert [h["version"] for h in reg.history()] == [1, 2, 1]
    assert reg.resolve("production")["run_id"] == "a"


def test_a_promotion_from_a_stale_gate_is_refused(uri, name, model):
    reg = open_registry(uri, name)
    reg.promote(reg.register(model("a"), "a")["version"], "a")
    candidate = reg.register(model("b"), "b")["version"]
    with pytest.raises(ConflictError, match="not None as expected"):
        reg.promote(candidate, "b", expected_version=None)  # the gate saw no production
    assert reg.current() == 1
    assert reg.promote(candidate, "b", expected_version=1)["version"] == 2


def test_errors_name_the_version_and_the_server(uri, name, model):
    reg = open_registry(uri, name)
    with pytest.raises(RegistryError, match="no version 7"):
        reg.get_version(7)
    with pytest.raises(RegistryError, match="alias 'staging'"):
        reg.resolve("staging")
    dead = open_registry("mlflow+http://127.0.0.1:9", name)
    with pytest.raises(RegistryError, match="MLflow at http://127.0.0.1:9"):
        dead.list_versions()


def test_the_run_log_lives_in_mlflow_runs(uri, name):
    reg = open_registry(uri, name)
    reg.log_run("r1", "lineage", {"decision": "changed", "data_fingerprint": "f1",
                                  "production_version": None, "reasons": ["first"]})
    reg.log_run("r1", "evaluate", {"decision": "promote", "reasons": ["ok"]})
    reg.log_run("r1", "final", {"status": "SUCCEEDED"})
    reg.log_run("r2", "lineage", {"decision": "unchanged", "data_fingerprint": "f1",
                                  "production_version": 1, "reasons": ["same"]})
    runs = reg.runs()
    assert [(r["run_id"], r["status"], r["decision"]) for r in runs] == [
        ("r1", "SUCCEEDED", "promote"), ("r2", "running", "unchanged")]


def test_the_registry_cli_lists_production(uri, name, model):
    from click.testing import CliRunner

    from pipeline.cli import main

    reg = open_registry(uri, name)
    reg.promote(reg.register(model("a"), "a")["version"], "a")
    result = CliRunner().invoke(main, ["registry", "list", "--registry", uri, "--model-name",
                                       name, "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed["production"] == 1 and [v["version"] for v in listed["versions"]] == [1]


def test_evaluate_scores_mlflow_production_and_promote_registers_back(
        uri, name, saved_model_dir, examples_dir, tmp_path):
    """The baseline is downloaded from MLflow's artifacts (no storage URI reaches them)."""
    from components.evaluate.gate import GateConfig
    from components.evaluate.run import resolve_baseline, run
    from components.promote.run import run as promote
    from tests.test_evaluate import same_predictions

    reg = open_registry(uri, name)
    reg.promote(reg.register(str(saved_model_dir), "first")["version"], "first")
    baseline, version = resolve_baseline(registry=uri, model_name=name)
    assert version == 1 and baseline.startswith("runs:/")
    candidate = same_predictions(saved_model_dir, tmp_path / "candidate")
    out = str(tmp_path / "evaluation")
    result = run(candidate, str(examples_dir), out, GateConfig(min_accuracy=0.0), baseline,
                 version, registry=reg)
    assert result["decision"] == "promote" and result["baseline"]["accuracy"] is not None
    summary = promote(candidate, out, uri, name, "second")
    assert (summary["version"], summary["previous_version"]) == (2, 1)
    assert reg.current() == 2


@pytest.mark.slow
def test_run_local_promotes_into_mlflow_then_gates_a_worse_candidate_against_it(
        uri, name, tmp_path):
    """Two real kfp.local runs with --registry mlflow+http://...: every step that touches
    the registry (lineage, evaluate's baseline, promote, the run log) goes to MLflow."""
    from pipeline.local_run import run_local

    first = run_local(str(tmp_path), registry=uri, model_name=name)
    assert first["gate"]["decision"] == "promote", first["gate"]
    worse = run_local(str(tmp_path), registry=uri, model_name=name, image_size=32, epochs=1,
                      learning_rate=1e-9, seed=5,
                      train_extra_json=json.dumps({"precision": "float32"}))
    assert worse["gate"]["decision"] == "reject", worse["gate"]
    reg = open_registry(uri, name)
    assert reg.current() == 1 and len(reg.list_versions()) == 1
    assert [(r["status"], r["decision"]) for r in reg.runs()] == [
        ("SUCCEEDED", "promoted"), ("SUCCEEDED", "reject")]
