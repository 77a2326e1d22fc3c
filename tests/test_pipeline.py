"""Compile (no TensorFlow), strict spec validation, and kfp.local end to end."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    code = ("import sys; from pipeline.pipeline import compile_pipeline; "
            f"compile_pipeline({str(out)!r}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return list(yaml.safe_load_all(out.read_text()))


def test_compiled_yaml_parses_strictly(compiled):
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    spec, platform = compiled
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig())
    for name, config in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
        json_format.ParseDict(config, k8s.KubernetesExecutorConfig(), ignore_unknown_fields=False)
        assert name == "exec-train"


def test_gpu_retry_and_caching_are_where_they_belong(compiled):
    spec, platform = compiled
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] == 3
    assert tasks["prepare-data"]["cachingOptions"]["enableCache"] is True
    for never_cached in ("fingerprint-data", "evaluate"):
        assert not tasks[never_cached]["cachingOptions"].get("enableCache")
    promote = spec["root"]["dag"]["tasks"]["condition-1"]
    assert "promote" in promote["triggerPolicy"]["condition"]
    toleration = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert toleration["tolerations"][0]["key"] == "nvidia.com/gpu"


@pytest.mark.slow
def test_run_local_promotes_then_rejects_a_worse_candidate(tmp_path):
    """Two real kfp.local runs of the compiled YAML: a good model (run-local's defaults, 64
    px, 4 epochs) is promoted; a barely trained one is rejected (it would have to come
    within the 0.01 non-inferiority margin of production) and production does not move."""
    from components.promote.registry import Registry
    from pipeline.local_run import run_local

    first = run_local(str(tmp_path))
    assert first["gate"]["decision"] == "promote" and first["production_version"] == 1
    worse = run_local(str(tmp_path), image_size=32, epochs=1, learning_rate=1e-9, seed=5,
                      train_extra_json=json.dumps({"precision": "float32"}))
    assert worse["gate"]["decision"] == "reject", worse["gate"]
    reg = Registry(str(tmp_path / "registry"), "demo")
    assert reg.current() == 1 and len(reg.list_versions()) == 1
