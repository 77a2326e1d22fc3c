"""A stand-in for the Kubernetes API with Kubeflow Trainer installed (a cluster cannot run
here): the calls the train step makes to run a TrainJob, with real processes as its pods.

A TrainJob is checked against the schema written from Trainer's v1alpha1 types (as the API
server's structural schema and Trainer's webhook refuse a bad one) and must name a runtime
that exists. Its ``numNodes`` pods are processes of this machine running the trainer's
command with its variables, ``JOBSET_NAME`` and ``JOB_COMPLETION_INDEX`` as the runtime and
Kubernetes set them. Pods' host names cannot resolve here, so the stand-in also plays DNS:
it gives each process the ``TF_CONFIG`` of loopback ports that ``jobset_tf_config`` would
derive from those names. Pods are first listed ``Pending`` (unschedulable), as a GPU pod
often is. Conditions follow the pods as Trainer copies them from the JobSet
(``Complete``/``AllJobsCompleted``, ``Failed``/``FailedJobs``, the others stopped). A
deleted TrainJob lingers a moment, as foreground deletion keeps it until its pods are
gone: it can still be read, and creating one of its name is refused (409). The step's own
pod (this machine's host name) can be read, for its uid."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import jsonschema
import yaml

from components.train.trainjob import INDEX_LABEL, JOBSET_LABEL
from tests.rest_standin import RestStandIn
from tests.worker_nodes import Node, loopback_tf_configs

SCHEMA = Path(__file__).parent / "schemas" / "trainer-v1alpha1-trainjob.yaml"
_NS = r"/namespaces/(?P<ns>[^/]+)"
_TRAINJOBS = r"/apis/trainer\.kubeflow\.org/v1alpha1" + _NS + r"/trainjobs"


def _status(code: int, reason: str, message: str) -> tuple[int, dict]:
    return code, {"kind": "Status", "status": "Failure", "reason": reason, "code": code,
                  "message": message}


class KubernetesStandIn(RestStandIn):
    def __init__(self, namespace: str = "team-a", runtimes: tuple = ("finetune-train",),
                 secrets: dict | None = None):
        self.namespace, self.runtimes = namespace, runtimes
        self.secrets = secrets or {}  # Secret name -> {key: value}
        self.schema = yaml.safe_load(SCHEMA.read_text())
        self.jobs: dict[str, dict] = {}  # name -> {"body", "nodes", "failed", "listed"}
        self.deleting: dict[str, float] = {}  # name -> when it is gone
        super().__init__([
            ("POST", _TRAINJOBS + "$", self._create),
            ("GET", _TRAINJOBS + r"/(?P<name>[^/]+)$", self._get),
            ("DELETE", _TRAINJOBS + r"/(?P<name>[^/]+)$", self._delete),
            ("GET", r"/api/v1" + _NS + r"/pods$", self._pods),
            ("GET", r"/api/v1" + _NS + r"/pods/(?P<pod>[^/]+)/log$", self._log),
            ("GET", r"/api/v1" + _NS + r"/pods/(?P<pod>[^/]+)$", self._pod),
        ])

    def stop(self) -> None:
        for job in self.jobs.values():
            for node in job["nodes"]:
                node.stop()
        super().stop()

    def _env(self, trainer: dict) -> dict[str, str]:
        env = {}
        for item in trainer.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            env[item["name"]] = self.secrets[ref["name"]][ref["key"]] if ref else item["value"]
        return env

    def _gone(self, name: str) -> bool:
        """Whether ``name`` is (no longer) there; a deleted job lingers until its time."""
        if name in self.deleting and time.monotonic() >= self.deleting[name]:
            del self.deleting[name]
            self.jobs.pop(name, None)
        return name not in self.jobs

    def _pod(self, g, query, body):
        if g["pod"] != socket.gethostname():
            return _status(404, "NotFound", f'pods "{g["pod"]}" not found')
        return 200, {"metadata": {"name": g["pod"], "uid": "0c2f6a4e-step-pod"}}

    def _create(self, g, query, body):
        try:
            jsonschema.validate(body, self.schema)
        except jsonschema.ValidationError as err:
            return _status(422, "Invalid", f"TrainJob is invalid: {err.message}")
        name, trainer = body["metadata"]["name"], body["spec"]["trainer"]
        if body["spec"]["runtimeRef"]["name"] not in self.runtimes:
            return _status(422, "Invalid", "admission webhook denied the request: "
                           f"TrainingRuntime {body['spec']['runtimeRef']['name']} not found")
        if not self._gone(name):
            return _status(409, "AlreadyExists", f'trainjobs "{name}" already exists')
        count = trainer.get("numNodes", 1)
        env = self._env(trainer)
        configs = loopback_tf_configs(["worker"] * count)
        nodes = [Node(trainer["command"], {**env, "JOBSET_NAME": name,
                                           "JOB_COMPLETION_INDEX": str(k),
                                           "TF_CONFIG": json.dumps(configs[k])})
                 for k in range(count)]
        self.jobs[name] = {"body": body, "nodes": nodes, "failed": False, "listed": 0}
        return 201, body

    def _conditions(self, job: dict) -> list[dict]:
        phases = [node.phase for node in job["nodes"]]
        if "Failed" in phases and not job["failed"]:
            job["failed"] = True  # JobSet fails at once (maxRestarts 0): the rest stop
            for node in job["nodes"]:
                node.stop()
        def condition(kind, reason, message):
            return {"type": kind, "status": "True", "reason": reason, "message": message,
                    "lastTransitionTime": "2026-12-07T00:00:00Z"}
        if job["failed"]:
            failed = phases.index("Failed")
            return [condition("Failed", "FailedJobs", f"jobset failed: pod of node {failed} "
                              "exited with a non-zero code")]
        if all(p == "Succeeded" for p in phases):
            return [condition("Complete", "AllJobsCompleted", "jobset completed successfully")]
        return []

    def _get(self, g, query, body):
        if self._gone(g["name"]):
            return _status(404, "NotFound", f'trainjobs "{g["name"]}" not found')
        job = self.jobs[g["name"]]
        metadata = {**job["body"]["metadata"], **({"deletionTimestamp": "2026-12-07T00:00:00Z"}
                                                  if g["name"] in self.deleting else {})}
        return 200, {**job["body"], "metadata": metadata,
                     "status": {"conditions": self._conditions(job)}}

    def _delete(self, g, query, body):
        if self._gone(g["name"]):
            return _status(404, "NotFound", f'trainjobs "{g["name"]}" not found')
        for node in self.jobs[g["name"]]["nodes"]:
            node.stop()
        self.deleting.setdefault(g["name"], time.monotonic() + 0.5)
        return 200, {"kind": "Status", "status": "Success"}

    def _pods(self, g, query, body):
        label, _, name = query.get("labelSelector", "").partition("=")
        job = self.jobs.get(name) if label == JOBSET_LABEL else None
        if job:
            job["listed"] += 1
        unschedulable = {"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}
        return 200, {"items": [
            {"metadata": {"name": f"{name}-node-0-{k}-x7k2p",
                          "labels": {JOBSET_LABEL: name, INDEX_LABEL: str(k)}},
             "status": unschedulable if job["listed"] == 1 else {"phase": node.phase}}
            for k, node in enumerate(job["nodes"] if job else [])]}

    def _log(self, g, query, body):
        pod = g["pod"]
        name, _, k = pod.rsplit("-", 1)[0].rpartition("-node-0-")
        job = self.jobs.get(name)
        if not job or query.get("container") != "node":
            return _status(404, "NotFound", f'pods "{pod}" not found')
        since = query.get("sinceTime", "")[:19]
        lines = [(t, line) for t, line in job["nodes"][int(k)].lines if t[:19] >= since]
        stamped = query.get("timestamps") == "true"
        return 200, "".join(f"{t} {line}\n" if stamped else f"{line}\n" for t, line in lines)
