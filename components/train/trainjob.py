"""Training across Kubeflow nodes: a Kubeflow Trainer ``TrainJob`` (trainer.kubeflow.org/
v1alpha1, v2.1) on the ``TrainingRuntime`` the manifests install, created by the train step,
followed to its end (its conditions and its pods' logs into the step's log) and deleted.

Trainer runs ``numNodes`` pods of the runtime's ``node`` job (an Indexed Job of a JobSet
named as the TrainJob). Each derives its ``TF_CONFIG`` from JobSet's stable host names
(``workers.jobset_tf_config``). A retried step deletes the job its earlier attempt left and
starts a new one, which resumes from the backup."""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections import deque

from components.common.errors import RunFailed
from components.common.kubernetes_api import APIError, KubernetesAPI

log = logging.getLogger(__name__)
TRAINJOBS = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs"
PODS = "/api/v1/namespaces/{namespace}/pods"
TRAINER_JOB = "node"  # the runtime's replicated job, and its container, that train
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
PART_OF = {"app.kubernetes.io/part-of": "resnet-finetune"}


def _env(pods) -> list[dict]:
    env = [{"name": k, "value": v} for k, v in sorted(pods.env.items())]
    return env + [{"name": key, "valueFrom": {"secretKeyRef": {"name": pods.env_secret,
                                                               "key": key}}}
                  for key in pods.env_secret_keys]


def trainjob(name: str, command: list[str], pods, workers: int, owner: dict | None = None
             ) -> dict:
    """The TrainJob of ``workers`` nodes running ``command`` with the profile's image,
    resources, variables, identity and placement; ``owner`` (the step's pod) takes it
    away with it, should the step be killed before it deletes the job."""
    requests = {k: v for k, v in (("cpu", pods.cpu), ("memory", pods.memory)) if v}
    resources = {"requests": requests} if requests else {}
    if pods.gpus:
        resources["limits"] = {pods.accelerator: str(pods.gpus)}
    placement = {"serviceAccountName": pods.service_account,
                 "nodeSelector": dict(pods.node_selector),
                 "tolerations": [dict(t) for t in pods.tolerations]}
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
        "metadata": {"name": name, "labels": dict(PART_OF),
                     **({"ownerReferences": [owner]} if owner else {})},
        "spec": {
            "runtimeRef": {"name": pods.runtime, "apiGroup": "trainer.kubeflow.org",
                           "kind": "TrainingRuntime"},
            "trainer": {"image": pods.image, "command": list(command), "numNodes": workers,
                        "resourcesPerNode": resources, "env": _env(pods)},
            "podTemplateOverrides": [{"targetJobs": [{"name": TRAINER_JOB}],
                                      "spec": {k: v for k, v in placement.items() if v}}],
        },
    }


def run_trainjob(name: str, command: list[str], pods, workers: int, _shared: str = "",
                 api: KubernetesAPI | None = None) -> None:
    """Run ``command`` on ``workers`` nodes as TrainJob ``name`` until it completes;
    RunFailed when it fails. The job is deleted afterwards, whatever happened."""
    api = api or KubernetesAPI.in_cluster()
    _delete(api, name, wait_s=300)
    owner = _this_pod(api)
    try:  # from the creation on: a step stopped while it waits for the answer deletes too
        api.call("POST", TRAINJOBS, trainjob(name, command, pods, workers, owner))
        log.info("TrainJob %s/%s created: %d nodes on runtime %s", api.namespace, name,
                 workers, pods.runtime)
        _follow(api, name, _PodLogs(api, name), pods.poll_seconds)
    finally:
        _delete(api, name)


def _this_pod(api: KubernetesAPI) -> dict | None:
    """An owner reference to the pod this runs in (its name is the host name), or None."""
    try:
        pod = api.call("GET", f"{PODS}/{socket.gethostname()}")["metadata"]
    except (APIError, KeyError) as err:
        log.warning("the TrainJob gets no owner (this pod could not be read: %s); if this "
                    "pod is killed, the next attempt deletes the job", err)
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": pod["name"], "uid": pod["uid"],
            "blockOwnerDeletion": False}


def _follow(api: KubernetesAPI, name: str, logs: _PodLogs, poll_seconds: float) -> None:
    seen = set()
    while True:
        conditions = api.call("GET", f"{TRAINJOBS}/{name}").get("status", {}).get(
            "conditions", [])
        for c in conditions:
            key = (c["type"], c["status"], c.get("reason", ""))
            if key not in seen:
                seen.add(key)
                log.info("TrainJob %s: %s=%s (%s) %s", name, *key, c.get("message", ""))
        logs.forward()
        done = {c["type"]: c for c in conditions if c["status"] == "True"}
        if "Complete" in done:
            return
        if "Failed" in done:
            raise RunFailed(f"TrainJob {name} failed ({done['Failed'].get('reason', '')}: "
                            f"{done['Failed'].get('message', '')}); {logs.last_words()}. "
                            "Retrying the step resumes from the last epoch's backup")
        time.sleep(poll_seconds)


def _delete(api: KubernetesAPI, name: str, wait_s: float = 0) -> None:
    """Delete TrainJob ``name`` and, with ``wait_s``, wait until it is gone (an earlier
    attempt's job must stop before another writes the same backup)."""
    try:
        api.call("DELETE", f"{TRAINJOBS}/{name}", query={"propagationPolicy": "Foreground"})
    except APIError as err:
        if err.status == 404:
            return
        raise
    log.info("TrainJob %s deleted", name)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            api.call("GET", f"{TRAINJOBS}/{name}")
        except APIError as err:
            if err.status == 404:
                return
            raise
        time.sleep(1)
    if wait_s:
        raise RunFailed(f"TrainJob {name}, left by an earlier attempt, was not gone "
                        f"{wait_s:.0f} s after its deletion; delete it (kubectl delete "
                        f"trainjob {name}) and retry")


class _PodLogs:
    """The TrainJob's pods' new log lines, forwarded marked with their node."""

    def __init__(self, api: KubernetesAPI, name: str):
        self.api, self.name = api, name
        self.last: dict[str, tuple] = {}  # pod -> the instant of its last line forwarded
        self.tails: dict[str, deque] = {}
        self.states: dict[str, str] = {}  # pod -> its phase and why, as last logged

    def forward(self) -> None:
        pods = self.api.call("GET", PODS, query={"labelSelector": f"{JOBSET_LABEL}={self.name}"})
        for pod in pods.get("items", []):
            name = pod["metadata"]["name"]
            index = pod["metadata"].get("labels", {}).get(INDEX_LABEL, "?")
            state = _state(pod.get("status", {}))
            if self.states.get(name) != state:
                self.states[name] = state
                log.info("TrainJob %s node %s (%s): %s", self.name, index, name, state)
            if state.split(" ")[0] in ("Running", "Succeeded", "Failed"):
                self._forward(name, index)

    def _forward(self, pod: str, index: str) -> None:
        query = {"container": TRAINER_JOB, "timestamps": "true"}
        if pod in self.last:
            query["sinceTime"] = self.last[pod][0] + "Z"
        try:
            text = self.api.call("GET", f"{PODS}/{pod}/log", query=query, text=True)
        except APIError as err:  # not started yet, or gone
            if err.status in (400, 404):
                return
            raise
        tail = self.tails.setdefault(pod, deque(maxlen=5))
        for line in text.splitlines():
            stamp, _, message = line.partition(" ")
            instant = _instant(stamp)
            if instant <= self.last.get(pod, ("",)):
                continue
            self.last[pod] = instant
            tail.append(message)
            sys.stderr.write(f"[node {index}] {message}\n")

    def last_words(self) -> str:
        """The last lines of the pods, for the error."""
        said = [f"{pod}: {' | '.join(tail)}" for pod, tail in sorted(self.tails.items()) if tail]
        return "last lines: " + "; ".join(said) if said else "no pod logged anything"


def _state(status: dict) -> str:
    """A pod's phase and, while it waits, why: unschedulable (no GPU free, a node selector
    no node has), an image that cannot be pulled."""
    why = [c.get("message", "") for c in status.get("conditions", [])
           if c.get("type") == "PodScheduled" and c.get("status") == "False"]
    why += [" ".join(filter(None, (w.get("reason"), w.get("message"))))
            for c in status.get("containerStatuses", [])
            if (w := c.get("state", {}).get("waiting"))]
    phase = status.get("phase", "Pending")
    return f"{phase} ({'; '.join(filter(None, why))})" if any(why) else phase


def _instant(stamp: str) -> tuple:
    """An RFC 3339 time as a comparable (seconds, nanoseconds) pair of strings."""
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    return seconds, fraction.ljust(9, "0")
