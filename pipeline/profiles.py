"""Platform profiles: what differs per cluster (never in the DAG), validated before use.

A profile is a built-in name (``kubeflow``, ``gke``, ``vertex``) or a YAML file whose
keys are the fields of ``Profile``; ``extends: NAME`` starts from a built-in. Unknown
names and keys are refused with a one-line error that names them. Imports no kfp.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from components.common.errors import ConfigError

BACKENDS = ("kubeflow", "vertex")
TRAINING = ("step", "jobs")
KUBEFLOW_GPU = "nvidia.com/gpu"
GKE_ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
_QUANTITY = re.compile(r"^\d+(\.\d+)?(m|k|M|G|T|P|Ki|Mi|Gi|Ti|Pi)?$")
_ACCELERATOR_TYPE = re.compile(r"^[A-Z][A-Z0-9_]+$")
# Vertex AI's GPU types (google.cloud.aiplatform_v1's AcceleratorType, but the retired K80);
# a GKE node label is the same name in lower case with dashes (nvidia-h100-80gb).
GPU_TYPES = ("NVIDIA_TESLA_T4", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100",
             "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB",
             "NVIDIA_H100_MEGA_80GB", "NVIDIA_H200_141GB", "NVIDIA_B200", "NVIDIA_GB200",
             "NVIDIA_RTX_PRO_6000")
# Vertex AI's machine for N GPUs of a type (its "GPUs on Compute Engine" pairings).
VERTEX_MACHINES = {
    "NVIDIA_H100_80GB": {n: f"a3-highgpu-{n}g" for n in (1, 2, 4, 8)},
    "NVIDIA_H200_141GB": {8: "a3-ultragpu-8g"},
    "NVIDIA_A100_80GB": {n: f"a2-ultragpu-{n}g" for n in (1, 2, 4, 8)},
    "NVIDIA_TESLA_A100": {n: f"a2-highgpu-{n}g" for n in (1, 2, 4, 8)},
    "NVIDIA_L4": {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48",
                  8: "g2-standard-96"},
    **{gpu: {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32",
             8: "n1-standard-64"}
       for gpu in ("NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100",
                   "NVIDIA_TESLA_P4")},
}
_LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|ACCESS_KEY|API_KEY",
                         re.I)
TOLERATION_KEYS = ("key", "operator", "value", "effect")


@dataclass(frozen=True)
class Profile:
    """Every per-cluster setting. Mappings are stored as sorted ``(key, value)`` tuples."""

    name: str = "kubeflow"
    backend: str = "kubeflow"  # kubeflow (any KFP cluster) or vertex (Vertex AI Pipelines)
    accelerator: str = KUBEFLOW_GPU  # kubeflow: a GPU resource; gke/vertex: NVIDIA_H100_80GB
    gpus: int = 1  # per training pod; 0 trains on CPU
    gke_node_label: bool = False  # select GKE nodes by the label derived from accelerator
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[tuple[tuple[str, str], ...], ...] = (
        (("effect", "NoSchedule"), ("key", KUBEFLOW_GPU), ("operator", "Exists")),)
    service_account: str = "finetune-runner"  # runs execute as this identity: the manifests'
    # Kubernetes service account, or on Vertex a GCP service account email ("" = default)
    run_as_user: int = 1000  # the image's non-root user: steps run as it with runAsNonRoot;
    # 0 = leave the user to the image and the cluster (Vertex AI has no such setting)
    pipeline_root: str = ""  # where artifacts live; "" = the cluster's default
    image: str = ""  # the project image for every step (prefer a digest)
    train_cpu: str = "8"
    train_memory: str = "32G"
    step_cpu: str = "2"
    step_memory: str = "8G"
    train_retries: int = 3
    ablation_parallelism: int = 4  # ablation cells training at once (each holds ``gpus``)
    train_timeout_s: int = 0  # 0 = none (Kubernetes activeDeadlineSeconds)
    step_timeout_s: int = 0
    env: tuple[tuple[str, str], ...] = ()  # plain variables on every step
    env_secret: str = ""  # a Secret whose keys reach every step as variables
    env_secret_keys: tuple[str, ...] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    project: str = ""  # vertex: the Google Cloud project
    region: str = ""  # vertex: e.g. us-central1
    labels: tuple[tuple[str, str], ...] = ()  # vertex: labels on every run
    training: str = "step"  # step: the train step's pod trains (workers 1); jobs: the step
    # runs a Kubeflow Trainer TrainJob / Vertex CustomJob of `workers` nodes with the GPUs
    machine_type: str = ""  # vertex, training jobs: each worker's machine; "" = the one
    # Vertex pairs with accelerator and gpus (a3-highgpu-1g for one H100)

    @property
    def is_vertex(self) -> bool:
        return self.backend == "vertex"

    @property
    def accelerator_resource(self) -> str:
        """What the train container asks for: a resource name, or a Vertex type."""
        return KUBEFLOW_GPU if self.gke_node_label else self.accelerator

    @property
    def train_node_selector(self) -> dict[str, str]:
        selector = dict(self.node_selector)
        if self.gke_node_label and self.gpus:
            selector[GKE_ACCELERATOR_LABEL] = self.accelerator.lower().replace("_", "-")
        return selector

    def validate(self) -> Profile:
        where = f"platform profile {self.name!r}"
        if self.backend not in BACKENDS:
            raise ConfigError(f"{where}: backend {self.backend!r}; use one of "
                              f"{', '.join(BACKENDS)}")
        if self.training not in TRAINING:
            raise ConfigError(f"{where}: training {self.training!r}; use one of "
                              f"{', '.join(TRAINING)} (jobs: Kubeflow Trainer or Vertex "
                              "CustomJobs train, workers nodes at once)")
        if self.ablation_parallelism < 1:
            raise ConfigError(f"{where}: ablation_parallelism {self.ablation_parallelism}: use "
                              "1 or more (cells that train at once)")
        if self.run_as_user < 0:
            raise ConfigError(f"{where}: run_as_user {self.run_as_user}: use the image's "
                              "non-root UID (1000 for the project image) or 0 to leave it "
                              "to the image and the cluster")
        if self.gpus < 0 or self.train_retries < 0:
            raise ConfigError(f"{where}: gpus {self.gpus} / train_retries "
                              f"{self.train_retries}: use >= 0")
        if self.train_timeout_s < 0 or self.step_timeout_s < 0:
            raise ConfigError(f"{where}: timeouts must be >= 0 seconds (0 = none)")
        for key in ("train_cpu", "train_memory", "step_cpu", "step_memory"):
            value = getattr(self, key)
            if not _QUANTITY.match(value):
                raise ConfigError(f"{where}: {key} {value!r} is not a Kubernetes quantity "
                                  "(e.g. 8, 500m, 32G, 16Gi)")
        if self.env_secret and not self.env_secret_keys:
            raise ConfigError(f"{where}: env_secret {self.env_secret!r} needs env_secret_keys")
        secret_like = [key for key, _value in self.env if SECRET_NAME.search(key)]
        if secret_like:
            raise ConfigError(f"{where}: env {', '.join(secret_like)}: a plain env value is "
                              "compiled into the pipeline YAML, readable wherever the run is; "
                              "put it in the Kubernetes Secret named by env_secret and list "
                              "its key in env_secret_keys (on Vertex: the service account's "
                              "own credentials, or Secret Manager)")
        if self.pipeline_root:
            from components.common import storage

            storage.check_uri(self.pipeline_root, f"{where}: pipeline_root")
        if _ACCELERATOR_TYPE.match(self.accelerator) and self.accelerator not in GPU_TYPES:
            raise ConfigError(f"{where}: accelerator {self.accelerator!r} is no GPU type Vertex "
                              f"AI or GKE knows; use one of {', '.join(GPU_TYPES)}")
        if self.is_vertex:
            self._validate_vertex(where)
        else:
            self._validate_kubeflow(where)
        return self

    def _validate_kubeflow(self, where: str) -> None:
        typed = bool(_ACCELERATOR_TYPE.match(self.accelerator))
        if self.gke_node_label and not typed:
            raise ConfigError(f"{where}: gke_node_label needs an accelerator type such as "
                              f"NVIDIA_H100_80GB, not {self.accelerator!r}")
        if not self.gke_node_label and typed:
            raise ConfigError(
                f"{where}: accelerator {self.accelerator!r} is a GKE/Vertex type; on kubeflow "
                f"give the resource name ({KUBEFLOW_GPU}), or use the gke or vertex profile")
        for key in ("project", "region", "labels", "machine_type"):
            if getattr(self, key):
                raise ConfigError(f"{where}: {key} is a Vertex AI setting; remove it or use "
                                  "backend: vertex")

    def _validate_vertex(self, where: str) -> None:
        if self.gpus and not _ACCELERATOR_TYPE.match(self.accelerator):
            raise ConfigError(f"{where}: accelerator {self.accelerator!r}: Vertex AI takes an "
                              "accelerator type such as NVIDIA_H100_80GB")
        kubernetes_only = ("gke_node_label", "node_selector", "tolerations", "env_secret",
                           "train_timeout_s", "step_timeout_s", "run_as_user")
        for key in kubernetes_only:
            if getattr(self, key):
                raise ConfigError(f"{where}: {key} is a Kubernetes setting Vertex AI does not "
                                  "read; remove it (Vertex picks machines from the "
                                  "accelerator and the CPU/memory limits)")
        if self.pipeline_root and not self.pipeline_root.startswith("gs://"):
            raise ConfigError(f"{where}: pipeline_root {self.pipeline_root!r}: Vertex AI "
                              "needs gs://BUCKET/PATH")
        for key, value in self.labels:
            if not _LABEL.match(key) or len(value) > 63:
                raise ConfigError(f"{where}: label {key}={value!r}: Vertex labels are lowercase "
                                  "letters, digits, '_' and '-', at most 63 characters")

    def vertex_machine(self) -> str:
        """Each training worker's Vertex machine: ``machine_type``, else the one Vertex
        pairs with ``gpus`` of ``accelerator``."""
        if self.machine_type:
            return self.machine_type
        if not self.gpus:
            return "n1-standard-8"
        machine = VERTEX_MACHINES.get(self.accelerator, {}).get(self.gpus)
        if not machine:
            raise ConfigError(f"platform profile {self.name!r}: no known Vertex machine holds "
                              f"{self.gpus} {self.accelerator}; set machine_type (e.g. "
                              "a3-highgpu-8g) for training across workers")
        return machine

    def worker_pods(self, local: bool = False) -> str:
        """Where the train step's training processes run (``WorkerPods`` as JSON): this
        machine under kfp.local, the step's own pod, or a TrainJob or a Vertex CustomJob
        (``training: jobs``)."""
        from components.container_image import IMAGE
        from components.train.pods import WorkerPods

        if local or self.training == "step":
            return WorkerPods(backend="local" if local else "pod").to_json()
        common = {"image": self.image or IMAGE, "gpus": self.gpus, "cpu": self.train_cpu,
                  "memory": self.train_memory, "env": dict(self.env),
                  "service_account": self.service_account}
        if self.is_vertex:
            return WorkerPods(backend="vertex", accelerator=self.accelerator if self.gpus else "",
                              machine_type=self.vertex_machine(), project=self.project,
                              region=self.region, labels=dict(self.labels), **common).to_json()
        return WorkerPods(backend="kubeflow", accelerator=self.accelerator_resource,
                          node_selector=self.train_node_selector,
                          tolerations=tuple(dict(t) for t in self.tolerations),
                          env_secret=self.env_secret,
                          env_secret_keys=self.env_secret_keys if self.env_secret else (),
                          **common).to_json()

    def mutable_image_warning(self) -> str:
        """Why the image should be pinned, or "" when it is a digest."""
        from components.container_image import IMAGE

        image = self.image or IMAGE
        if "@sha256:" in image:
            return ""
        return (f"image {image!r} is a mutable tag: KFP's cache key sees the tag, so a cached "
                "step can survive a code change; use a digest (REGISTRY/IMAGE@sha256:...)")

    def require_vertex_target(self) -> None:
        """Submitting to Vertex AI needs a project and a region."""
        for key, example in (("project", "my-project"), ("region", "us-central1")):
            if not getattr(self, key):
                raise ConfigError(f"platform profile {self.name!r}: {key} is empty; set "
                                  f"'{key}: {example}' in the profile file or pass --{key}")


BUILTINS: dict[str, Profile] = {
    "kubeflow": Profile(),
    "gke": Profile(name="gke", accelerator="NVIDIA_H100_80GB", gke_node_label=True),
    "vertex": Profile(name="vertex", backend="vertex", accelerator="NVIDIA_H100_80GB",
                      tolerations=(), train_retries=3, service_account="", run_as_user=0),
}
FIELDS = {f.name: f for f in dataclasses.fields(Profile)}


def _normalise(key: str, value, where: str):
    """A YAML value -> the field's stored form (mappings as sorted tuples)."""
    current = getattr(Profile(), key)
    if key == "tolerations":
        if not isinstance(value, list):
            raise ConfigError(f"{where}: tolerations must be a list of mappings")
        out = []
        for item in value:
            unknown = set(item) - set(TOLERATION_KEYS) if isinstance(item, dict) else {item}
            if unknown:
                raise ConfigError(f"{where}: toleration keys {sorted(map(str, unknown))}; use "
                                  f"{', '.join(TOLERATION_KEYS)}")
            out.append(tuple(sorted((k, str(v)) for k, v in item.items())))
        return tuple(out)
    if isinstance(current, tuple) and key in ("node_selector", "env", "labels"):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping")
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    if isinstance(current, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list")
        return tuple(str(v) for v in value)
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} {value!r}: use true or false")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} {value!r}: use a whole number")
        return value
    return str(value)


def _refuse_unknown(keys, where: str) -> None:
    allowed = sorted(set(FIELDS) - {"name"}) + ["extends"]
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}; {hint}"
                              f"(keys: {', '.join(allowed)})")


def load(ref: str, overrides: dict | None = None) -> Profile:
    """A built-in profile by name, or a YAML file; ``overrides`` (None values ignored) win."""
    ref = ref or "kubeflow"
    if ref in BUILTINS:
        profile = BUILTINS[ref]
    elif Path(ref).is_file():
        profile = _from_file(Path(ref))
    else:
        raise ConfigError(f"--platform {ref!r}: no built-in profile or file of that name; use "
                          f"{', '.join(BUILTINS)} or a YAML file")
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    _refuse_unknown(changes, f"platform profile {profile.name!r}")
    return dataclasses.replace(profile, **changes).validate()


def _from_file(path: Path) -> Profile:
    import yaml

    where = str(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a profile is a mapping of settings")
    _refuse_unknown(data, where)
    base_name = data.pop("extends", "kubeflow")
    if base_name not in BUILTINS:
        raise ConfigError(f"{where}: extends {base_name!r}; use one of {', '.join(BUILTINS)}")
    values = {k: _normalise(k, v, where) for k, v in data.items()}
    return dataclasses.replace(BUILTINS[base_name], name=path.stem, **values)


def as_yaml_dict(profile: Profile) -> dict:
    """The profile as a user would write it (for `finetune platform show`)."""
    out = {"extends": profile.name} if profile.name in BUILTINS else {}
    for key, value in dataclasses.asdict(profile).items():
        if key == "name":
            continue
        if key in ("node_selector", "env", "labels"):
            value = dict(value)
        elif key == "tolerations":
            value = [dict(t) for t in value]
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out
