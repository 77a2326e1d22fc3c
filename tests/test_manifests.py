"""The cluster side: every overlay renders with real `kubectl kustomize` and validates
strictly (`kubernetes-validate --strict`; the Kubeflow Profile against its schema)."""

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = ["base", "overlays/gcp", "overlays/gpu", "overlays/multi-user", "overlays/trainer"]
SCHEMAS = {"Profile": "kubeflow-profile-v1.yaml",  # custom resources: their schemas
           "TrainingRuntime": "trainer-v1alpha1-trainingruntime.yaml"}


def render(overlay: str) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "manifests" / overlay)],
                         check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay, tmp_path):
    documents = render(overlay)
    custom = [d for d in documents if d["kind"] in SCHEMAS]
    builtin = [d for d in documents if d["kind"] not in SCHEMAS]
    (tmp_path / "out.yaml").write_text(yaml.safe_dump_all(builtin))
    result = subprocess.run([str(Path(sys.executable).parent / "kubernetes-validate"),
                             "--strict", str(tmp_path / "out.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    for resource in custom:
        schema = yaml.safe_load((ROOT / "tests" / "schemas" / SCHEMAS[resource["kind"]])
                                .read_text())
        jsonschema.validate(resource, schema)
    kinds = sorted(d["kind"] for d in custom)
    assert kinds == {"overlays/multi-user": ["Profile"],
                     "overlays/trainer": ["TrainingRuntime"]}.get(overlay, [])


def test_the_profile_schema_refuses_a_typo_and_a_namespace():
    schema = yaml.safe_load((ROOT / "tests" / "schemas" / "kubeflow-profile-v1.yaml").read_text())
    [profile] = [d for d in render("overlays/multi-user") if d["kind"] == "Profile"]
    for broken in ({**profile, "spec": {**profile["spec"], "ownr": {}}},
                   {**profile, "metadata": {**profile["metadata"], "namespace": "x"}},
                   {**profile, "spec": {"owner": {"name": "someone"}}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_runs_read_by_name_exists_by_that_name(overlay):
    """The launcher reads `kfp-launcher` by name: no hash suffix; the Role lets the run's
    identity read it and the Secret it names, and grants nothing cluster-wide."""
    documents = render(overlay)
    by_kind = {}
    for d in documents:
        by_kind.setdefault(d["kind"], []).append(d)
    assert [c["metadata"]["name"] for c in by_kind["ConfigMap"]] == ["kfp-launcher"]
    launcher = by_kind["ConfigMap"][0]["data"]
    on_gcp = overlay in ("overlays/gcp", "overlays/gpu")
    assert launcher["defaultPipelineRoot"].startswith("gs://" if on_gcp else "minio://")
    providers = yaml.safe_load(launcher.get("providers", "{}"))
    secrets = {p["default"]["credentials"]["secretRef"]["secretName"] for p in providers.values()}
    [role] = [r for r in by_kind["Role"] if r["metadata"]["name"] == "finetune-runner"]
    granted = {(r["resources"][0], name) for r in role["rules"]
               for name in r.get("resourceNames", [])}
    assert ("configmaps", "kfp-launcher") in granted
    assert {("secrets", s) for s in secrets} <= granted
    assert not any("pods/log" in r["resources"] or "*" in r["verbs"] for r in role["rules"])
    assert "ClusterRole" not in by_kind and "ClusterRoleBinding" not in by_kind
    assert {b["subjects"][0]["name"] for b in by_kind["RoleBinding"]} == {"finetune-runner"}
    quota_holders = by_kind.get("ResourceQuota", []) + by_kind.get("Profile", [])
    assert any("requests.nvidia.com/gpu" in str(q) for q in quota_holders)


def test_the_kubeflow_profile_runs_as_the_manifests_identity(tmp_path):
    """The built-in Kubernetes profiles run as the service account the manifests create
    (not the namespace's default one), and so does a profile file extending them."""
    from pipeline import profiles

    file = tmp_path / "cluster.yaml"
    file.write_text("env_secret: finetune-s3\n")
    profile = profiles.load(str(file))
    [sa] = [d for d in render("base") if d["kind"] == "ServiceAccount"]
    assert profile.service_account == sa["metadata"]["name"]
    assert profiles.load("kubeflow").service_account == profiles.load("gke").service_account \
        == sa["metadata"]["name"]
    assert profiles.load("vertex").service_account == ""
    [role] = [d for d in render("base") if d["kind"] == "Role"]
    assert any(profile.env_secret in r.get("resourceNames", []) for r in role["rules"])


def test_the_namespace_enforces_the_baseline_pod_security_standard():
    """Privileged pods, host namespaces and host paths are refused in the run namespace;
    what the restricted standard would refuse is warned about and audited."""
    [namespace] = [d for d in render("base") if d["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"


def test_the_exit_handler_may_read_its_runs_failure_from_the_kfp_api(tmp_path):
    """Multi-user Kubeflow's API takes a token with its audience and checks the caller may
    get runs: the compiled pipeline labels the exit handler (only) for the PodDefault KFP's
    profile controller creates in each profile namespace, and a Role grants get on runs
    to the run's identity."""
    from pipeline.pipeline import compile_pipeline
    from pipeline.platform import ACCESS_LABEL

    documents = render("overlays/multi-user")
    [reader] = [r for r in documents if r["kind"] == "Role"
                and r["metadata"]["name"] == "finetune-run-reader"]
    assert reader["rules"] == [{"apiGroups": ["pipelines.kubeflow.org"], "resources": ["runs"],
                                "verbs": ["get"]}]
    with open(compile_pipeline(str(tmp_path / "p.yaml"))) as handle:
        platform = list(yaml.safe_load_all(handle))[1]["platforms"]["kubernetes"]
    labelled = {name for name, executor in platform["deploymentSpec"]["executors"].items()
                if executor.get("podMetadata", {}).get("labels", {}).get(ACCESS_LABEL)}
    assert labelled == {"exec-record-run"} and ACCESS_LABEL == "access-ml-pipeline"
    [binding] = [b for b in documents if b["kind"] == "RoleBinding"
                 and b["roleRef"]["name"] == "finetune-run-reader"]
    assert binding["subjects"][0]["name"] == "finetune-runner"
