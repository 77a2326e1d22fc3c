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
    _cancel_earlier(name, pods.poll_seconds)
    job = aiplatform.CustomJob(
        display_name=name, worker_pool_specs=worker_pool_specs(command, pods, workers),
        staging_bucket=shared, base_output_dir=f"{shared}/vertex",
        labels={**pods.labels, JOB_LABEL: name})
    job.submit(service_account=pods.service_account or None)
    link = console_link(job)
    log.info("Vertex CustomJob %s: %s (logs: Cloud Logging, resource.type=\"ml_job\" "
             "resource.labels.job_id=\"%s\")", job.resource_name, link, job.name)
    state = ""
    try:
        state = _follow(job, pods.poll_seconds)
    finally:
        if state not in FINAL:
            log.warning("cancelling Vertex CustomJob %s", job.resource_name)
            job.cancel()
    if state != "JOB_STATE_SUCCEEDED":
        raise RunFailed(f"Vertex CustomJob {job.resource_name} ended {state}: "
                        f"{job.error.message or 'no error given'} (its logs: {link}); "
                        "retrying the step resumes from the last epoch's backup")


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


def _cancel_earlier(name: str, poll_seconds: float, wait_s: float = 600) -> None:
    """Cancel what an earlier attempt of this step left running, and wait until it ended:
    two jobs would write one backup."""
    from google.cloud import aiplatform

    running = [job for job in aiplatform.CustomJob.list(filter=f'labels.{JOB_LABEL}="{name}"')
               if job.state.name not in FINAL]
    for job in running:
        log.warning("cancelling Vertex CustomJob %s, left running by an earlier attempt",
                    job.resource_name)
        job.cancel()
    deadline = time.monotonic() + wait_s
    while any(job.state.name not in FINAL for job in running):
        if time.monotonic() > deadline:
            names = ", ".join(job.resource_name for job in running)
            raise RunFailed(f"Vertex CustomJobs of an earlier attempt ({names}) were still "
                            f"running {wait_s:.0f} s after they were cancelled; cancel them "
                            "in the console and retry")
        time.sleep(poll_seconds)
