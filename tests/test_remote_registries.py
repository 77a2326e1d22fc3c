"""What the Kubeflow Model Registry and Vertex AI backends send, through their real client
libraries, to stand-in REST servers that record each request (neither service can run
here); and how their URIs are checked."""

import json
import uuid
from pathlib import Path

import pytest

from components.common.errors import ConfigError
from components.export.contract import METADATA_FILE
from components.registry.checks import ConflictError, RegistryError
from components.registry.schemes import check_registry_uri, open_registry


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def _value(properties: dict, key: str):
    """The plain value of a Model Registry custom property as sent over REST."""
    found = properties[key]
    return next(v for k, v in found.items() if k.endswith("_value"))


def test_kubeflow_versions_point_at_the_saved_model_and_production_is_a_property(
        kubeflow_standin, name, model, tmp_path):
    uri = f"kubeflow-registry+{kubeflow_standin.url}?log={tmp_path}/log"
    reg = open_registry(uri, name)
    reg.promote(reg.register(model("a"), "run-1", {"gate": {"decision": "promote"},
                                                   "data_fingerprint": "f1",
                                                   "metrics": {"accuracy": 0.9}})["version"])
    model_id = next(m["id"] for m in kubeflow_standin.models.values() if m["name"] == name)
    [created] = [r["body"] for r in kubeflow_standin.sent("POST", "/model_versions")
                 if r["body"]["registeredModelId"] == model_id]
    props = created["customProperties"]
    assert created["name"] == "1"
    assert (_value(props, "gate_decision"), _value(props, "data_fingerprint"),
            _value(props, "metric.accuracy")) == ("promote", "f1", 0.9)
    assert json.loads(_value(props, "finetune.record"))["metrics"] == {"accuracy": 0.9}
    version_id = next(v["id"] for v in kubeflow_standin.versions.values()
                      if v["registeredModelId"] == model_id)
    [artifact] = [r["body"] for r in kubeflow_standin.sent(
        "POST", f"/model_versions/{version_id}/artifacts")]
    assert (artifact["uri"], artifact["modelFormatName"], artifact["artifactType"]) == (
        model("a"), "tensorflow", "model-artifact")
    patch = kubeflow_standin.sent("PATCH", f"/registered_models/{model_id}")[-1]["body"]
    assert _value(patch["customProperties"], "production") == "1"
    with reg.saved_model_copy(1) as local:
        assert Path(local, "saved_model.pb").read_bytes() == \
            Path(model("a"), "saved_model.pb").read_bytes()


def test_kubeflow_production_moved_outside_the_product_stops_a_checked_promotion(
        kubeflow_standin, name, model, tmp_path):
    """Someone sets ``production`` in the Model Registry UI: the pipeline's checked move
    refuses (the history disagrees), a move by hand writes the history again."""
    reg = open_registry(f"kubeflow-registry+{kubeflow_standin.url}?log={tmp_path}/log", name)
    for graph in ("a", "b", "c"):
        reg.register(model(graph), graph)
    reg.promote(1, "a")
    with kubeflow_standin.lock:
        found = next(m for m in kubeflow_standin.models.values() if m["name"] == name)
        found["customProperties"]["production"]["string_value"] = "2"
    assert reg.current() == 2
    with pytest.raises(ConflictError, match="moved outside this product"):
        reg.promote(3, "c", expected_version=2)
    assert reg.promote(3, "by-hand")["previous_version"] == 2
    assert reg.promote(1, "a", expected_version=3)["version"] == 1


def test_an_unreachable_kubeflow_registry_is_named(name, tmp_path):
    with pytest.raises(RegistryError, match="Kubeflow Model Registry at http://127.0.0.1:9"):
        open_registry(f"kubeflow-registry+http://127.0.0.1:9?log={tmp_path}", name)


def test_vertex_uploads_versions_under_one_model_and_moves_production_with_default(
        vertex_standin, bucket, name, model):
    from components.common import storage

    uri = f"vertex://projects/proj-1/locations/europe-west4?log={bucket}/log"
    reg = open_registry(uri, name)
    uploaded = []
    for graph in ("a", "b"):
        target = f"{bucket}/models/{graph}"
        storage.copy_tree(model(graph), target)
        storage.write_text(storage.join(target, METADATA_FILE),
                           json.dumps({"tensorflow": "2.21.0"}))
        uploaded.append(target)
        reg.promote(reg.register(target, f"Run.{graph}", {"gate": {"decision": "promote"},
                                                         "data_fingerprint": "f" * 64})
                    ["version"], graph)
    first, second = (r["body"] for r in vertex_standin.posted("/models:upload"))
    assert "parentModel" not in first and second["parentModel"].startswith(
        "projects/proj-1/locations/europe-west4/models/")
    model_spec = second["model"]
    assert (model_spec["displayName"], model_spec["artifactUri"]) == (name, uploaded[1])
    assert model_spec["containerSpec"]["imageUri"] == \
        "europe-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
    assert model_spec["labels"]["run-id"] == "run-b"
    assert model_spec["labels"]["data-fingerprint"] == "f" * 63
    assert json.loads(model_spec["versionDescription"])["run_id"] == "Run.b"
    merges = [r["body"] for r in vertex_standin.posted(":mergeVersionAliases")]
    assert merges[-1] == {"versionAliases": ["production", "default"]}
    versions = next(iter(vertex_standin.models.values()))
    assert [v["versionAliases"] for v in versions] == [[], ["production", "default"]]
    with pytest.raises(RegistryError, match="serves models from Cloud Storage"):
        reg.register(model("c"), "c")


@pytest.mark.parametrize("uri, message", [
    ("kubeflow-registry+http://mr:8080", r"add \?log=STORAGE_URI"),
    ("vertex://projects/p/locations/l", r"add \?log=STORAGE_URI"),
    ("vertex://projects/p?log=gs://b/l", "write vertex://projects/PROJECT/locations/REGION"),
    ("vertex://projects/p/locations/l?log=ftp://b/l", "unsupported scheme 'ftp:'"),
])
def test_remote_registry_uris_are_checked_before_any_work(uri, message):
    with pytest.raises(ConfigError, match=message):
        check_registry_uri(uri)


def test_a_move_whose_backend_write_failed_is_finished_by_the_retry(
        kubeflow_standin, name, model, tmp_path, monkeypatch):
    """The history took the move, the registry's update failed (a 503, a timeout): the
    step's retry, with the same expected production, finishes that move."""
    reg = open_registry(f"kubeflow-registry+{kubeflow_standin.url}?log={tmp_path}/log", name)
    for graph in ("a", "b"):
        reg.register(model(graph), graph)
    reg.promote(1, "a")

    def unavailable(alias, version):
        raise RegistryError("stand-in for a 503")

    with monkeypatch.context() as patch:
        patch.setattr(reg, "_point", unavailable)
        with pytest.raises(RegistryError, match="503"):
            reg.promote(2, "b", expected_version=1)
    assert reg.current() == 1 and reg.history()[-1]["version"] == 2
    assert reg.promote(2, "b", expected_version=1)["version"] == 2
    assert reg.current() == 2 and len(reg.history()) == 2
    with pytest.raises(ConflictError, match="not 1 as expected"):
        reg.promote(1, "late", expected_version=1)  # another promoter's stale gate


def test_a_registration_cut_between_version_and_artifact_is_completed(
        kubeflow_standin, name, model, tmp_path):
    reg = open_registry(f"kubeflow-registry+{kubeflow_standin.url}?log={tmp_path}/log", name)
    kubeflow_standin.fail_next_artifact = True
    with pytest.raises(RegistryError, match="stand-in told to fail"):
        reg.register(model("a"), "run-a")
    assert reg.register(model("a"), "run-a")["version"] == 1
    artifact = reg.client.get_model_artifact(name, "1")
    assert artifact is not None and artifact.uri == model("a")
