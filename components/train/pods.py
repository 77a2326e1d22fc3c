"""Training across pods: a pipeline's train step with ``workers`` above 1 starts that many
training processes where its platform runs them (a Kubeflow Trainer ``TrainJob``, a Vertex
AI ``CustomJob``, or processes of this machine under kfp.local), follows them to the end
and publishes the chief's model as its own artifact."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import signal
import threading
import time
from dataclasses import dataclass, field

from components.common import storage
from components.common.errors import ConfigError
from components.common.settings import flatten
from components.train.workers import HEARTBEAT_S

log = logging.getLogger(__name__)
BACKENDS = ("local", "pod", "kubeflow", "vertex")
WORKER_COMMAND = ("python", "-m", "components.train.workers")


@dataclass(frozen=True)
class WorkerPods:
    """Where and how the training processes run: compiled into the pipeline from the
    platform profile (``Profile.worker_pods``)."""

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
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"worker pods {', '.join(unknown)}: unknown; compile the "
                              "pipeline again with this version of finetune")
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


def job_name(run_id: str, workers: int) -> str:
    """A name for run ``run_id``'s training job, the same on every retry of the step, that
    Kubernetes accepts: a DNS label short enough that JobSet's longest pod name,
    ``<name>-node-0-<workers - 1>-<5 characters>``, stays within 63."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    room = 63 - len("-node-0-") - len(str(workers - 1)) - len("-abcde")
    readable = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")
    readable = readable[:room - len("finetune--") - len(digest)].strip("-")
    return f"finetune-{readable}-{digest}" if readable else f"finetune-{digest}"


@contextlib.contextmanager
def exit_on_sigterm():
    """SIGTERM (a cancelled run, a step's timeout, an evicted pod) as SystemExit, so the
    ``finally`` that stops a training job runs; Python's default would skip it. Only the
    main thread receives signals: elsewhere only the heartbeat stops the job."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("not the main thread: a SIGTERM will not stop the training job; its "
                    "workers stop once this step's heartbeat goes stale")
        yield
        return

    def stop(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _heartbeat(uri: str, every_s: float = HEARTBEAT_S):
    """Write the time to ``uri`` every ``every_s`` seconds while following a job: its
    workers stop once it goes stale (``workers.watch_launcher``), should this step be
    killed without a chance to stop them."""
    stop = threading.Event()
    storage.write_text(uri, str(time.time()))  # there before any worker looks

    def beat():
        while not stop.wait(every_s):
            try:
                storage.write_text(uri, str(time.time()))
            except Exception as err:  # a storage blip: the next beat may pass
                log.warning("could not write the heartbeat %s: %s", uri, err)
    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join(timeout=every_s)


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
    from components.common.outputs import COMPLETE_MARKER

    cfg = cfg.validate()
    if pods.backend == "pod":
        refuse_workers_in_one_pod(cfg.runtime.workers)
    if pods.backend in ("local", "pod"):
        from components.train.run import run

        return run(cfg)
    require_complete(cfg.examples)
    _shared_storage(cfg, examples_uri, model_uri)
    shared = f"{model_uri.rstrip('/')}.workers"
    name = job_name(cfg.runtime.run_id or hashlib.sha256(shared.encode()).hexdigest(),
                    cfg.runtime.workers)
    # Every node, and the next attempt, must name the same backup: a run id for all.
    in_pods = dataclasses.replace(
        cfg, examples=examples_uri, output=storage.join(shared, "model"),
        runtime=dataclasses.replace(cfg.runtime, run_id=cfg.runtime.run_id or name))
    config_uri, result_uri, heartbeat_uri = (storage.join(shared, file) for file in (
        "config.json", "result.json", "heartbeat"))
    finished = storage.exists(storage.join(in_pods.output, COMPLETE_MARKER))
    if finished and storage.exists(result_uri):
        log.info("the training job of an earlier attempt finished; publishing its model")
    else:
        if finished:  # the chief finished but its summary was lost: train again
            storage.delete_tree(in_pods.output)
        storage.write_text(config_uri, json.dumps(flatten(in_pods)))
        log.info("training across %d %s nodes as %s; the chief writes to %s",
                 cfg.runtime.workers, pods.backend, name, in_pods.output)
        launch = (launchers or _launchers())[pods.backend]
        with exit_on_sigterm(), _heartbeat(heartbeat_uri):
            launch(name, [*WORKER_COMMAND, config_uri, result_uri, heartbeat_uri], pods,
                   cfg.runtime.workers, shared)
    summary = json.loads(storage.read_text(result_uri))
    storage.copy_tree(in_pods.output, cfg.output)
    storage.delete_tree(shared)
    return summary


def _launchers() -> dict:
    from components.train.trainjob import run_trainjob
    from components.train.vertex_job import run_custom_job

    return {"kubeflow": run_trainjob, "vertex": run_custom_job}
