"""Submitting and scheduling the compiled pipeline on a Kubeflow Pipelines API server."""

import logging

from components.common.errors import ConfigError

log = logging.getLogger(__name__)


def to_kfp_cron(expression: str) -> str:
    """KFP's scheduler reads 6 fields, the first being seconds. A 5-field (Unix) cron is
    translated by prefixing second 0; anything else is refused."""
    fields = expression.split()
    if len(fields) == 6:
        return expression
    if len(fields) == 5:
        translated = "0 " + expression
        log.info("5-field cron %r translated to KFP's 6-field %r (seconds first)", expression,
                 translated)
        return translated
    raise ConfigError(f"--cron {expression!r}: use 6 fields 'sec min hour day month weekday' "
                      "(e.g. '0 0 2 * * *' for 02:00 daily) or a 5-field Unix cron")


def _client(host: str, namespace: str):
    import kfp

    return kfp.Client(host=host, namespace=namespace or None)


def _experiment_id(client, name: str, namespace: str) -> str:
    try:
        return client.get_experiment(experiment_name=name, namespace=namespace or None
                                     ).experiment_id
    except ValueError:
        return client.create_experiment(name, namespace=namespace or None).experiment_id


def submit(host: str, namespace: str, experiment: str, pipeline_yaml: str, params: dict,
           run_name: str) -> str:
    client = _client(host, namespace)
    run = client.create_run_from_pipeline_package(
        pipeline_yaml, arguments=params, run_name=run_name, experiment_name=experiment,
        namespace=namespace or None)
    return run.run_id


def schedule(host: str, namespace: str, experiment: str, pipeline_yaml: str, params: dict,
             name: str, cron: str) -> str:
    """Create the recurring run ``name``; an existing one of that name is replaced (KFP
    cannot update a schedule). One run at a time, no catch-up of missed slots."""
    cron = to_kfp_cron(cron)
    client = _client(host, namespace)
    experiment_id = _experiment_id(client, experiment, namespace)
    existing = client.list_recurring_runs(experiment_id=experiment_id, page_size=100,
                                          namespace=namespace or None).recurring_runs or []
    for recurring in existing:
        if recurring.display_name == name:
            log.info("replacing schedule %s (%s)", name, recurring.recurring_run_id)
            client.delete_recurring_run(recurring.recurring_run_id)
    created = client.create_recurring_run(
        experiment_id=experiment_id, job_name=name, cron_expression=cron, max_concurrency=1,
        no_catchup=True, params=params, pipeline_package_path=pipeline_yaml, enabled=True)
    return created.recurring_run_id
