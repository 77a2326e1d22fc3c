"""How a run ended and why, for its record. The exit handler's status names no failing
step: KFP's backend (2.17) sends MLMD's state name (``COMPLETE``, ``FAILED``, ``CANCELED``)
and an empty error, Vertex names the failed tasks but not why, and a pod the platform
killed cannot say anything itself. So on KFP the exit handler reads its run's Argo
workflow through the KFP API: each failed pod's message there is the cause
(``main: OOMKilled (exit code 137)``, an eviction's reason)."""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request

log = logging.getLogger(__name__)

KFP_API = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"  # KFP's in-cluster address
KFP_API_VARIABLE = "KFP_API_URL"  # another address, where KFP runs elsewhere
TOKEN_PATH = "/var/run/secrets/kubeflow/pipelines/token"  # the access-ml-pipeline PodDefault's
TOKEN_VARIABLE = "KF_PIPELINES_SA_TOKEN_PATH"
STATES = {"COMPLETE": "SUCCEEDED", "CACHED": "SUCCEEDED", "CANCELED": "CANCELLED"}
FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
FAILED_PHASES = ("Failed", "Error")
VERTEX_FAILED = re.compile(r"The failed tasks are: \[([^\]]*)\]")
NOT_A_STEP = re.compile(r"^(executor(\(\d+\))?|system-.*|.*-driver|exit-handler-\d+|condition-.*)$")


def final_state(state: str) -> str:
    """The run's status as the record spells it on every platform: KFP's MLMD names are
    mapped; a state that is not final (the body still ``RUNNING`` after a killed pod)
    ended the run without success, so it is ``FAILED``."""
    state = STATES.get(state, state)
    return state if state in FINAL else "FAILED"


def failed_steps(workflow: dict) -> list[tuple[str, str]]:
    """(step, message) for each pod of an Argo workflow that failed its step, in the
    order they finished: a step's own pods (its executor, a retry's tries) have the
    step's DAG node as their ``boundaryID``, and only tries of a step that failed count
    (a retry that later succeeded is no cause); a failed ``<step>-driver`` pod is its
    step's."""
    nodes = workflow.get("status", {}).get("nodes", {})
    failed = []
    for node in nodes.values():
        if node.get("type") != "Pod" or node.get("phase") not in FAILED_PHASES:
            continue
        name = node.get("displayName", "")
        if name.endswith("-driver"):
            step = name[:-len("-driver")]
        else:
            boundary = nodes.get(node.get("boundaryID", ""), {})
            if boundary.get("phase") not in FAILED_PHASES or NOT_A_STEP.match(
                    boundary.get("displayName", "")):
                continue
            step = boundary["displayName"]
        failed.append((node.get("finishedAt") or "", step, node.get("message", "")))
    return [(step, message) for _, step, message in sorted(failed)]


def kfp_cause(run_id: str, timeout_s: float = 10) -> tuple[str, str]:
    """The first failed step of KFP run ``run_id`` and its pod's message, from the run's
    workflow (``GET /apis/v1beta1/runs/{id}``; v2beta1 carries no failure text), with the
    PodDefault's token when the pod has one."""
    request = urllib.request.Request(
        f"{os.environ.get(KFP_API_VARIABLE, KFP_API).rstrip('/')}/apis/v1beta1/runs/{run_id}")
    token_path = os.environ.get(TOKEN_VARIABLE, TOKEN_PATH)
    if os.path.exists(token_path):
        with open(token_path) as handle:
            request.add_header("Authorization", f"Bearer {handle.read().strip()}")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        run = json.load(response)
    workflow = json.loads(run.get("pipeline_runtime", {}).get("workflow_manifest") or "{}")
    steps = failed_steps(workflow)
    return steps[0] if steps else ("", "no failed step in the run's workflow (the KFP UI "
                                         "shows its steps)")


def cause(run_id: str, state: str, error: str, platform_run: str) -> tuple[str, str]:
    """(failing step, cause) of a run that did not succeed. ``platform_run`` is the
    status's resource name: Vertex's ``projects/…`` (its error lists the failed tasks)
    or KFP's workflow name (the API is asked); kfp.local's ``local-pipeline-…`` (or
    none) has neither: run-local records the step itself."""
    vertex = VERTEX_FAILED.search(error or "")
    if vertex:  # a task inside dsl.If is reported as its condition group: no step then
        named = [t.strip() for t in vertex.group(1).split(",")]
        return ", ".join(t for t in named if not NOT_A_STEP.match(t)), error
    if not platform_run or platform_run.startswith(("local-pipeline-", "projects/")):
        return "", error
    try:
        step, message = kfp_cause(run_id)
    except Exception as err:  # best effort: unreachable, refused (no token), malformed
        log.warning("could not read run %s's failure from the KFP API: %s", run_id, err)
        return "", error or (f"the failing step is in the KFP UI (its API could not be read: "
                             f"{err}; see the README's Reliability section)")
    return step, message or error
