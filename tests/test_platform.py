"""Platform profiles: each built-in compiles strictly and as its cluster reads it."""

import dataclasses
import difflib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from components.common.errors import ConfigError
from pipeline import profiles
from pipeline.pipeline import compile_pipeline

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Each built-in profile compiled once: ``{name: (path, [documents])}``."""
    out = {}
    for name in profiles.BUILTINS:
        path = tmp_path_factory.mktemp(name) / "pipeline.yaml"
        compile_pipeline(str(path), profiles.load(name))
        out[name] = (path, list(yaml.safe_load_all(path.read_text())))
    return out


def _k8s_executors(documents) -> dict:
    return documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.mark.parametrize("name", list(profiles.BUILTINS))
def test_every_builtin_parses_strictly(compiled, name):
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    _path, documents = compiled[name]
    spec = documents[0]
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig())
    for config in (_k8s_executors(documents).values() if len(documents) > 1 else []):
        json_format.ParseDict(config, k8s.KubernetesExecutorConfig(), ignore_unknown_fields=False)


@pytest.mark.parametrize("name", list(profiles.BUILTINS))
def test_compiled_pipeline_matches_the_reviewed_golden_copy(compiled, name):
    """Any change to the DAG, a component or a profile shows up as a diff here; after a
    deliberate change run `make golden` and review the diff."""
    path, _documents = compiled[name]
    golden_path = ROOT / "tests" / "golden" / f"pipeline-{name}.yaml"
    diff = list(difflib.unified_diff(golden_path.read_text().splitlines(),
                                     path.read_text().splitlines(), "golden", "compiled",
                                     lineterm=""))
    assert not diff, f"compiled differs from {golden_path.name}:\n" + "\n".join(diff[:60])


def test_kubeflow_asks_for_a_gpu_resource_and_no_cloud_label(compiled):
    path, documents = compiled["kubeflow"]
    assert "cloud.google.com" not in path.read_text()
    train = documents[0]["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert train["resources"]["cpuRequest"] == 8
    k8s = _k8s_executors(documents)["exec-train"]
    assert k8s["tolerations"][0]["key"] == "nvidia.com/gpu" and "nodeSelector" not in k8s


def test_gke_derives_the_node_label_from_the_accelerator(compiled):
    _path, documents = compiled["gke"]
    train = documents[0]["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    selector = _k8s_executors(documents)["exec-train"]["nodeSelector"]
    assert selector["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}


@pytest.mark.parametrize("name", ["kubeflow", "gke"])
def test_every_step_runs_as_the_images_non_root_user(compiled, name):
    """Each executor asks for the Dockerfile's USER with runAsNonRoot (the KFP 2.16+
    compiler adds no privilege escalation, no capabilities and RuntimeDefault seccomp)."""
    import re

    uid = int(re.search(r"^USER (\d+)$", (ROOT / "Dockerfile").read_text(), re.M)[1])
    _path, documents = compiled[name]
    executors = _k8s_executors(documents)
    assert set(executors) == set(documents[0]["deploymentSpec"]["executors"])
    for config in executors.values():
        assert config["securityContext"] == {"runAsUser": str(uid), "runAsGroup": str(uid),
                                             "runAsNonRoot": True}


def test_vertex_is_one_document_with_limits_that_the_vertex_sdk_loads(compiled):
    """The Vertex SDK's own loader (offline, anonymous credentials) takes the template."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform.utils import yaml_utils

    path, documents = compiled["vertex"]
    assert len(documents) == 1
    train = documents[0]["deploymentSpec"]["executors"]["exec-train"]["container"]
    resources = train["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_H100_80GB"
    assert "cpuLimit" in resources and "memoryLimit" in resources
    assert "cpuRequest" not in resources and "memoryRequest" not in resources
    assert yaml_utils.load_yaml(str(path))["pipelineInfo"]["name"] == "resnet50-finetune"
    job = aiplatform.PipelineJob(
        display_name="offline-check", template_path=str(path), pipeline_root="gs://b/root",
        parameter_values={"source": "gs://b/images", "registry_uri": "gs://b/registry"},
        project="test-project", location="us-central1", credentials=AnonymousCredentials())
    assert job.pipeline_spec["pipelineInfo"]["name"] == "resnet50-finetune"


def test_a_two_document_yaml_is_what_the_vertex_loader_refuses(compiled):
    from google.cloud.aiplatform.utils import yaml_utils

    path, _documents = compiled["kubeflow"]
    with pytest.raises(yaml.composer.ComposerError, match="single document"):
        yaml_utils.load_yaml(str(path))


def test_a_profile_file_extends_a_builtin_and_reaches_every_step(tmp_path):
    file = tmp_path / "minio.yaml"
    file.write_text(
        "extends: kubeflow\n"
        "service_account: finetune-runner\n"
        "pipeline_root: minio://mlpipeline/finetune\n"
        "env: {AWS_ENDPOINT_URL_S3: 'http://minio-service.kubeflow:9000'}\n"
        "env_secret: finetune-s3\n"
        "node_selector: {node-pool: gpu}\n"
        "tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]\n"
        "train_timeout_s: 86400\n"
        "step_timeout_s: 3600\n")
    profile = profiles.load(str(file), {"gpus": 4, "image": "reg.example/img@sha256:abc"})
    assert (profile.name, profile.gpus, profile.service_account) == ("minio", 4,
                                                                     "finetune-runner")
    out = tmp_path / "p.yaml"
    compile_pipeline(str(out), profile)
    documents = list(yaml.safe_load_all(out.read_text()))
    executors = documents[0]["deploymentSpec"]["executors"]
    k8s = _k8s_executors(documents)
    assert set(k8s) == set(executors)
    for name, executor in executors.items():
        assert executor["container"]["image"] == "reg.example/img@sha256:abc"
        env = {e["name"]: e["value"] for e in executor["container"]["env"]}
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio-service.kubeflow:9000"
        [secret] = k8s[name]["secretAsEnv"]
        assert secret["secretNameParameter"]["runtimeValue"]["constant"] == "finetune-s3"
        assert {m["envVar"] for m in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID",
                                                            "AWS_SECRET_ACCESS_KEY"}
        assert int(k8s[name]["activeDeadlineSeconds"]) == (86400 if name == "exec-train"
                                                           else 3600)
    train = k8s["exec-train"]
    assert train["nodeSelector"]["labels"] == {"node-pool": "gpu"}
    assert train["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                     "effect": "NoSchedule"}]
    assert executors["exec-train"]["container"]["resources"]["accelerator"][
        "resourceCount"] == "4"


@pytest.mark.parametrize("text,message", [
    ("servce_account: x\n", "unknown key 'servce_account'; did you mean 'service_account'"),
    ("extends: eks\n", "extends 'eks'; use one of kubeflow, gke, vertex"),
    ("gpus: two\n", "gpus 'two': use a whole number"),
    ("train_memory: 32 gigs\n", "train_memory '32 gigs' is not a Kubernetes quantity"),
    ("accelerator: NVIDIA_H100_80GB\n", "is a GKE/Vertex type; on kubeflow give the resource"),
    ("extends: vertex\nnode_selector: {a: b}\n", "node_selector is a Kubernetes setting"),
    ("extends: vertex\npipeline_root: s3://b/root\n", "Vertex AI needs gs://"),
    ("extends: vertex\nrun_as_user: 1000\n", "run_as_user is a Kubernetes setting"),
    ("run_as_user: -1\n", "run_as_user -1: use the image's non-root UID"),
    ("pipeline_root: hdfs://x/y\n", "unsupported scheme 'hdfs:'"),
    ("tolerations: [{key: a, operatr: Exists}]\n", "toleration keys ['operatr']"),
    ("[1, 2]\n", "a profile is a mapping"),
    ("env: {MLFLOW_TRACKING_PASSWORD: hunter2}\n", "env MLFLOW_TRACKING_PASSWORD: a plain env"),
    ("env: {AWS_SECRET_ACCESS_KEY: x, LOG_LEVEL: info}\n", "env AWS_SECRET_ACCESS_KEY: a plain"),
])
def test_profile_file_errors_are_one_line_naming_the_value(tmp_path, text, message):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as err:
        profiles.load(str(file))
    assert "\n" not in str(err.value)


def test_unknown_profile_and_vertex_without_project_are_refused():
    with pytest.raises(ConfigError, match="--platform 'eks': no built-in profile or file"):
        profiles.load("eks")
    with pytest.raises(ConfigError, match="project is empty; set 'project: my-project'"):
        profiles.load("vertex").require_vertex_target()
    with pytest.raises(ConfigError, match="region is empty"):
        profiles.load("vertex", {"project": "p"}).require_vertex_target()


@pytest.mark.parametrize("name", list(profiles.BUILTINS))
def test_a_shown_profile_loads_back_as_the_same_profile(name, tmp_path):
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump(profiles.as_yaml_dict(profiles.load(name))))
    assert profiles.load(str(file)) == dataclasses.replace(profiles.load(name), name=name)


def test_cli_compiles_a_profile_with_overrides_and_shows_profiles(tmp_path):
    out = tmp_path / "vertex.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "compile", "--platform", "vertex", "--output",
         str(out), "--image", "reg.example/img@sha256:abc", "--accelerator", "NVIDIA_L4",
         "--gpus", "2"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load(out.read_text())
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_L4"
    shown = subprocess.run([sys.executable, "-m", "pipeline", "platform", "show", "gke"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert yaml.safe_load(shown)["gke_node_label"] is True
    bad = subprocess.run([sys.executable, "-m", "pipeline", "compile", "--platform", "eks"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
