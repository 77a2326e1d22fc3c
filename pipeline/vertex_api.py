"""Submitting and scheduling the compiled pipeline on Vertex AI Pipelines.

Through google-cloud-aiplatform (`PipelineJob`, `PipelineJob.create_schedule`) with the
profile's project, region, pipeline root, service account and labels. Replacing a
schedule creates the new one first and deletes the old ones only then.
"""

from __future__ import annotations

import logging
import time
import uuid

from components.common.errors import ConfigError
from pipeline.cron import for_vertex
from pipeline.profiles import Profile

log = logging.getLogger(__name__)


def _single_document(pipeline_yaml: str) -> None:
    import yaml

    with open(pipeline_yaml) as handle:
        documents = [d for d in yaml.safe_load_all(handle) if d]
    if len(documents) != 1:
        raise ConfigError(f"--pipeline {pipeline_yaml}: {len(documents)} YAML documents; Vertex "
                          "AI loads one: compile it with --platform vertex")


def _job(profile: Profile, pipeline_yaml: str, params: dict, display_name: str):
    from google.cloud import aiplatform

    from pipeline.pipeline import PIPELINE_NAME

    _single_document(pipeline_yaml)
    aiplatform.init(project=profile.project, location=profile.region)
    return aiplatform.PipelineJob(
        display_name=display_name, template_path=pipeline_yaml,
        job_id=f"{PIPELINE_NAME}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}",
        pipeline_root=profile.pipeline_root or None, parameter_values=params,
        labels=dict(profile.labels) or None, project=profile.project,
        location=profile.region)


def submit(profile: Profile, pipeline_yaml: str, params: dict, run_name: str) -> str:
    job = _job(profile, pipeline_yaml, params, run_name)
    job.submit(service_account=profile.service_account or None)
    return job.resource_name


def schedule(profile: Profile, pipeline_yaml: str, params: dict, name: str, cron: str) -> str:
    """Create the schedule ``name`` (one run at a time), then delete older ones of that name."""
    from google.cloud.aiplatform import PipelineJobSchedule

    cron = for_vertex(cron)
    job = _job(profile, pipeline_yaml, params, name)
    existing = PipelineJobSchedule.list(filter=f'display_name="{name}"',
                                        project=profile.project, location=profile.region)
    created = job.create_schedule(cron=cron, display_name=name, max_concurrent_run_count=1,
                                  service_account=profile.service_account or None)
    for old in existing:
        log.info("replaced schedule %s: deleting %s", name, old.resource_name)
        old.delete()
    return created.resource_name
