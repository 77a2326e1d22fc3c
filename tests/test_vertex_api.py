"""submit and schedule on Vertex AI through the real google-cloud-aiplatform client,
against ``VertexStandIn`` (a stand-in for the Vertex REST API: Vertex cannot run here)."""

import pytest
import yaml

from components.common.errors import ConfigError
from pipeline import profiles, vertex_api
from pipeline.cron import for_vertex
from pipeline.pipeline import compile_pipeline
from tests.vertex_standin import VertexStandIn

SA = "finetune@proj-1.iam.gserviceaccount.com"
PARAMS = {"source": "gs://b/images", "registry_uri": "gs://b/registry"}


@pytest.fixture
def vertex(monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    standin = VertexStandIn()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", standin.url)
    aiplatform.init(credentials=AnonymousCredentials(), api_endpoint=standin.url,
                    api_transport="rest")
    yield standin
    initializer.global_config.__init__()  # aiplatform.init is bound to this very object
    standin.stop()


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    file = tmp_path_factory.mktemp("profile") / "vertex-prod.yaml"
    file.write_text(f"extends: vertex\nproject: proj-1\nregion: europe-west4\n"
                    f"service_account: {SA}\npipeline_root: gs://bkt/pipeline-root\n"
                    "labels: {team: vision, cost-center: ml}\n")
    return profiles.load(str(file))


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory, profile):
    return compile_pipeline(str(tmp_path_factory.mktemp("v") / "pipeline.yaml"), profile)


def test_submit_sends_the_spec_identity_root_and_labels(vertex, profile, pipeline_yaml):
    name = vertex_api.submit(profile, pipeline_yaml, PARAMS, "manual-1")
    assert name.startswith("projects/proj-1/locations/europe-west4/pipelineJobs/")
    [request] = vertex.posted("/pipelineJobs")
    body = request["body"]
    assert body["serviceAccount"] == SA and body["displayName"] == "manual-1"
    assert body["labels"] == {"team": "vision", "cost-center": "ml"}
    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://bkt/pipeline-root"
    assert body["runtimeConfig"]["parameterValues"] == PARAMS
    with open(pipeline_yaml) as handle:
        assert body["pipelineSpec"]["pipelineInfo"] == yaml.safe_load(handle)["pipelineInfo"]
    assert not [r for r in vertex.requests if "googleapis" in r["path"]]


def test_schedule_is_created_before_the_old_one_is_deleted(vertex, profile, pipeline_yaml):
    first = vertex_api.schedule(profile, pipeline_yaml, PARAMS, "nightly", "0 2 * * *")
    second = vertex_api.schedule(profile, pipeline_yaml, PARAMS, "nightly", "0 0 3 * * *")
    bodies = [r["body"] for r in vertex.posted("/schedules")]
    assert [b["cron"] for b in bodies] == ["0 2 * * *", "0 3 * * *"]
    for body in bodies:
        assert body["maxConcurrentRunCount"] == "1" and body["displayName"] == "nightly"
        job = body["createPipelineJobRequest"]["pipelineJob"]
        assert job["serviceAccount"] == SA
        assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bkt/pipeline-root"
    writes = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in vertex.requests
              if "/schedules" in r["path"] and r["method"] in ("POST", "DELETE")]
    assert writes[-2:] == [("POST", "schedules"), ("DELETE", first.rsplit("/", 1)[-1])]
    assert list(vertex.schedules) == [second]


def test_a_failing_create_leaves_the_old_schedule(vertex, profile, pipeline_yaml):
    old = vertex_api.schedule(profile, pipeline_yaml, PARAMS, "nightly", "0 2 * * *")
    vertex.fail_schedule_create = True
    with pytest.raises(Exception, match="stand-in told to fail"):
        vertex_api.schedule(profile, pipeline_yaml, PARAMS, "nightly", "0 3 * * *")
    assert list(vertex.schedules) == [old]


def test_a_kubeflow_yaml_is_refused_before_anything_is_sent(vertex, profile, tmp_path):
    kubeflow_yaml = compile_pipeline(str(tmp_path / "kfp.yaml"), profiles.load("kubeflow"))
    with pytest.raises(ConfigError, match="2 YAML documents.*--platform vertex"):
        vertex_api.submit(profile, kubeflow_yaml, PARAMS, "r")
    assert vertex.requests == []


@pytest.mark.parametrize("cron,expected", [("0 2 * * *", "0 2 * * *"),
                                           ("0 30 2 * * 1-5", "30 2 * * 1-5"),
                                           ("TZ=Europe/Paris 0 2 * * *",
                                            "TZ=Europe/Paris 0 2 * * *"),
                                           ("CRON_TZ=Europe/Paris 0 0 2 * * *",
                                            "TZ=Europe/Paris 0 2 * * *")])
def test_vertex_cron(cron, expected):
    assert for_vertex(cron) == expected


def test_a_cron_with_seconds_is_refused():
    with pytest.raises(ConfigError, match="cannot run at second 30"):
        for_vertex("30 0 2 * * *")
