"""The MLflow Model Registry backend against a real ``mlflow server`` on 127.0.0.1: what
MLflow shows of the registry (the contract every backend keeps is test_registry_contract)."""

import json
import uuid

import pytest

from components.registry.checks import RegistryError
from components.registry.schemes import open_registry


@pytest.fixture
def uri(mlflow_server):
    return "mlflow+" + mlflow_server


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def _client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


def test_versions_and_production_are_mlflow_model_versions_and_alias(uri, name, model,
                                                                     mlflow_server):
    reg = open_registry(uri, name)
    reg.promote(reg.register(model("a"), "run-1", {"gate": {"decision": "promote"},
                                                   "data_fingerprint": "f1",
                                                   "metrics": {"accuracy": 0.9}})["version"])
    reg.promote(reg.register(model("b"), "run-2")["version"])
    client = _client(mlflow_server)
    tags = client.get_model_version(name, "1").tags
    assert (tags["gate_decision"], tags["data_fingerprint"], tags["finetune.run_id"],
            tags["metric.accuracy"]) == ("promote", "f1", "run-1", "0.9")
    assert client.get_model_version_by_alias(name, "production").version == "2"
    assert reg.production_saved_model().startswith("runs:/")
    reg.rollback()
    assert client.get_model_version_by_alias(name, "production").version == "1"


def test_an_unreachable_server_is_named(name):
    dead = open_registry("mlflow+http://127.0.0.1:9", name)
    with pytest.raises(RegistryError, match="MLflow at http://127.0.0.1:9"):
        dead.list_versions()


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
                      train_extra_json=json.dumps({"head_epochs": 0}))
    assert worse["gate"]["decision"] == "reject", worse["gate"]
    reg = open_registry(uri, name)
    assert reg.current() == 1 and len(reg.list_versions()) == 1
    assert [(r["status"], r["decision"]) for r in reg.runs()] == [
        ("SUCCEEDED", "promoted"), ("SUCCEEDED", "reject")]
