"""Training across pods: a pipeline's train step with ``workers`` above 1 starts that many
training processes where its platform runs them (a Kubeflow Trainer ``TrainJob``, a Vertex
AI ``CustomJob``, or processes of this machine under kfp.local), follows them to the end
and publishes the chief's model as its own artifact."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

from components.common import storage
from components.common.errors import ConfigError
from components.common.settings import flatten

log = logging.getLogger(__name__)
BACKENDS = ("local", "pod", "kubeflow", "vertex")
WORKER_COMMAND = ("python", "-m", "components.train.workers")


@dataclass(frozen=True)
class WorkerPods:
    """Where and how the worker processes run: compiled into the pipeline from the
    platform profile (``pipeline.platform.worker_pods``)."""

    backend: str = "pod"  # pod: the step's own pod (one process); local: processes of
    # this machine (kfp.local); kubeflow: a Kubeflow Trainer TrainJob; vertex: a CustomJob
    image: str = ""
    gpus: int = 0  # per worker
    accelerator: str = ""  # kubeflow: a resource name (nvidia.com/gpu); vertex: a GPU type
    machine_type: str = ""  # vertex: each worker's machine
    cpu: str = ""
    memory: str = ""
    env: dict = field(default_factory=dict)
    env_secret: str = ""  # kubeflow: a Secret whose keys reach every worker
    env_secret_keys: tuple = ()
    service_account: str = ""
    node_selector: dict = field(default_factory=dict)
    tolerations: tuple = ()
    runtime: str = "finetune-train"  # kubeflow: the TrainingRuntime the manifests install
    project: str = ""  # vertex
    region: str = ""
    labels: dict = field(default_factory=dict)
    poll_seconds: float = 15.0

    def to_json(self) -> str:
        """The settings that differ from the defaults (the compiled YAML stays readable)."""
        default = WorkerPods()
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items()
                           if v != dataclasses.asdict(default)[k]}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerPods:
        values = json.loads(text or "{}")
        pods = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        if pods.backend not in BACKENDS:
            raise ConfigError(f"worker pods backend {pods.backend!r}: use one of "
                              f"{', '.join(BACKENDS)}")
        return pods


def refuse_workers_in_one_pod(workers: int) -> None:
    """A pipeline compiled to train in its step's pod trains in one process."""
    if workers > 1:
        raise ConfigError(
            f"workers {workers}: this pipeline trains in its train step's pod (platform "
            "profile training: step), one process on that pod's GPUs; to train across "
            "nodes compile it with a profile whose training is jobs (Kubeflow Trainer or "
            "Vertex AI CustomJobs), or leave workers at 1")


def job_name(run_id: str) -> str:
    """A name for run ``run_id``'s training job, the same on every retry of the step, that
    Kubernetes accepts: a DNS label of at most 48 characters (JobSet names each pod
    ``<name>-node-0-<k>-<5 characters>`` within 63)."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:30].strip("-")
    return f"finetune-{readable}-{digest}" if readable else f"finetune-{digest}"


def _shared_storage(cfg, examples_uri: str, model_uri: str) -> None:
    """Refuse what the pods could not share: local examples, model or backup folders."""
    where = f"workers {cfg.runtime.workers} across pods"
    for what, uri in (("the examples artifact", examples_uri), ("the model artifact", model_uri),
                      ("backup_dir", cfg.runtime.backup_dir)):
        if uri and storage.is_local(uri):
            raise ConfigError(f"{where}: {what} is at {uri}, a path only this pod sees; every "
                              f"worker must reach it: use storage ({storage.forms()})")


def train_in_pods(cfg, pods: WorkerPods, examples_uri: str, model_uri: str,
                  launchers: dict | None = None) -> dict:
    """Train ``cfg`` (its examples and output this pod's local paths; ``examples_uri`` and
    ``model_uri`` their artifacts' storage URIs) in ``cfg.runtime.workers`` nodes of a
    TrainJob or a CustomJob, or here for ``local`` and ``pod``. A job's chief writes the
    model to ``<model_uri>.workers/model``; it is copied into ``cfg.output`` afterwards."""
    from components.common.examples import require_complete
    from components.train.run import run

    cfg = cfg.validate()
    if pods.backend == "pod":
        refuse_workers_in_one_pod(cfg.runtime.workers)
    if pods.backend in ("local", "pod"):
        return run(cfg)
    require_complete(cfg.examples)
    _shared_storage(cfg, examples_uri, model_uri)
    shared = f"{model_uri.rstrip('/')}.workers"
    in_pods = dataclasses.replace(cfg, examples=examples_uri,
                                  output=storage.join(shared, "model"))
    config_uri, result_uri = storage.join(shared, "config.json"), storage.join(shared,
                                                                                "result.json")
    storage.write_text(config_uri, json.dumps(flatten(in_pods)))
    launchers = launchers or _launchers()
    name = job_name(cfg.runtime.run_id or hashlib.sha256(shared.encode()).hexdigest())
    log.info("training across %d %s pods as %s; the chief writes to %s", cfg.runtime.workers,
             pods.backend, name, in_pods.output)
    launchers[pods.backend](name, [*WORKER_COMMAND, config_uri, result_uri], pods,
                            cfg.runtime.workers, shared)
    summary = json.loads(storage.read_text(result_uri))
    storage.copy_tree(in_pods.output, cfg.output)
    storage.delete_tree(shared)
    return summary


def _launchers() -> dict:
    from components.train.trainjob import run_trainjob
    from components.train.vertex_job import run_custom_job

    return {"kubeflow": run_trainjob, "vertex": run_custom_job}
