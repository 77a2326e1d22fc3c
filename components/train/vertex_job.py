"""Training across Vertex AI machines: a ``CustomJob`` with a chief pool of one replica and a
worker pool of the rest (Vertex sets each replica's ``TF_CONFIG``: ``chief``, ``worker``),
followed to its end through google-cloud-aiplatform. A retried step cancels the jobs an
earlier attempt left running before it starts its own."""

from __future__ import annotations

import logging
import time

from components.common.errors import RunFailed

log = logging.getLogger(__name__)
JOB_LABEL = "finetune_job"  # every CustomJob of one training, by the step's job name
FINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
         "JOB_STATE_EXPIRED"}


def worker_pool_specs(command: list[str], pods, workers: int) -> list[dict]:
    """The chief's pool (one replica), then the other workers' (Vertex's pool order)."""
    machine = {"machine_type": pods.machine_type}
    if pods.gpus:
        machine.update(accelerator_type=pods.accelerator, accelerator_count=pods.gpus)
    container = {"image_uri": pods.image, "command": list(command),
                 "env": [{"name": k, "value": v} for k, v in sorted(pods.env.items())]}
    pool = {"machine_spec": machine, "container_spec": container}
    return [{**pool, "replica_count": count} for count in (1, workers - 1) if count]


def run_custom_job(name: str, command: list[str], pods, workers: int, shared: str) -> None:
    """Run ``command`` on ``workers`` Vertex machines until the job ends; RunFailed unless
    it succeeded. ``shared`` is the job's staging folder (gs://)."""
    from google.cloud import aiplatform

    aiplatform.init(project=pods.project or None, location=pods.region or None)
    _cancel_running(name, pods.poll_seconds, "left running by an earlier attempt")
    job = aiplatform.CustomJob(
        display_name=name, worker_pool_specs=worker_pool_specs(command, pods, workers),
        staging_bucket=shared, base_output_dir=f"{shared}/vertex",
        labels={**pods.labels, JOB_LABEL: name})
    state = ""
    try:  # from the submission on: a step stopped while it waits for the answer cancels too
        job.submit(service_account=pods.service_account or None)
        log.info("Vertex CustomJob %s: %s (logs: Cloud Logging, resource.type=\"ml_job\" "
                 "resource.labels.job_id=\"%s\")", job.resource_name, console_link(job),
                 job.name)
        state = _follow(job, pods.poll_seconds)
    finally:
        if state not in FINAL:
            _cancel_running(name, pods.poll_seconds, "its step stops", wait_s=0)
    if state != "JOB_STATE_SUCCEEDED":
        raise RunFailed(f"Vertex CustomJob {job.resource_name} ended {state}: "
                        f"{job.error.message or 'no error given'} (its logs: "
                        f"{console_link(job)}); retrying the step resumes from the last "
                        "epoch's backup")


def _follow(job, poll_seconds: float) -> str:
    """Log each state the job passes through; its final one."""
    seen = ""
    while True:
        state = job.state.name
        if state != seen:
            log.info("Vertex CustomJob %s: %s", job.name, state)
            seen = state
        if state in FINAL:
            return state
        time.sleep(poll_seconds)


def console_link(job) -> str:
    """The job's page in the Google Cloud console."""
    _, project, _, location, _, number = job.resource_name.split("/")
    return (f"https://console.cloud.google.com/vertex-ai/locations/{location}/training/"
            f"{number}?project={project}")


def _cancel_running(name: str, poll_seconds: float, why: str, wait_s: float = 600) -> None:
    """Cancel the jobs labelled ``name`` that still run and wait up to ``wait_s`` until they
    ended: an earlier attempt's job and a new one would write one backup."""
    from google.cloud import aiplatform

    running = [job for job in aiplatform.CustomJob.list(filter=f'labels.{JOB_LABEL}="{name}"')
               if job.state.name not in FINAL]
    for job in running:
        log.warning("cancelling Vertex CustomJob %s, %s", job.resource_name, why)
        job.cancel()
    deadline = time.monotonic() + wait_s
    while wait_s and any(job.state.name not in FINAL for job in running):
        if time.monotonic() > deadline:
            names = ", ".join(job.resource_name for job in running)
            raise RunFailed(f"Vertex CustomJobs {names} were still running {wait_s:.0f} s "
                            "after they were cancelled; cancel them in the console and retry")
        time.sleep(poll_seconds)
