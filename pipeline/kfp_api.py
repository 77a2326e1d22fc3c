"""Submitting and scheduling the compiled pipeline on a Kubeflow Pipelines API server.

Every run names the profile's service account and pipeline root, and runs a pipeline
*version* uploaded once per compiled spec (named by its content hash; the pipeline's
first version, made by the upload that creates the pipeline, carries the pipeline's
name), so the Kubeflow UI shows which spec each run used. Replacing a recurring run
creates the new one first and deletes the old ones only then: a failed create leaves
the old schedule running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from components.common.errors import ConfigError
from pipeline.cron import for_kfp
from pipeline.profiles import Profile

log = logging.getLogger(__name__)
HEALTHZ = "/apis/v2beta1/healthz"
PROBE_TIMEOUT_S = 20


@dataclass(frozen=True)
class KfpTarget:
    """Where and as whom: the API endpoint, the profile namespace and the credentials."""

    host: str
    namespace: str = ""
    token: str = ""  # an existing bearer token (e.g. `kubectl create token ...`)
    token_file: str = ""  # a file holding one, re-read on every request
    cookies: str = ""  # session cookies of an authenticated browser (Dex/oauth2-proxy)
    allow_http_credentials: bool = False  # send them over plain http to another machine

    def check_transport(self) -> None:
        """Refuse sending a token or cookies over plain http beyond this machine, where
        anyone on the path can read them, unless allowed."""
        address = urlsplit(self.host)
        loopback = address.hostname in ("localhost", "::1") or \
            (address.hostname or "").startswith("127.")
        if (self.token or self.token_file or self.cookies) and address.scheme == "http" \
                and not loopback and not self.allow_http_credentials:
            raise ConfigError(f"--host {self.host}: a token or cookies would cross the network "
                              "in plain text; use the https:// endpoint, or pass "
                              "--allow-http-credentials for a trusted network")


def _client(target: KfpTarget):
    import kfp
    from kfp.client import ServiceAccountTokenVolumeCredentials

    if target.token and target.token_file:
        raise ConfigError("give --token (KFP_TOKEN) or --token-file, not both")
    target.check_transport()
    _probe(target)
    credentials = ServiceAccountTokenVolumeCredentials(target.token_file) \
        if target.token_file else None
    return kfp.Client(host=target.host, namespace=target.namespace or "kubeflow",
                      existing_token=target.token or None, cookies=target.cookies or None,
                      credentials=credentials)


def _probe(target: KfpTarget) -> None:
    """One request to the API's health check with the caller's credentials, so that an
    unreachable host or a refused token is one line at once (the client would retry its
    own check for 25 s, logging a traceback each time)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{target.host.rstrip('/')}{HEALTHZ}")
    token = target.token or (Path(target.token_file).read_text().strip()
                             if target.token_file else "")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if target.cookies:
        request.add_header("Cookie", target.cookies)
    try:
        urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise _refused(target, err.code, err.reason) from err
    except (urllib.error.URLError, OSError) as err:
        raise _unreachable(target, getattr(err, "reason", err)) from err


def _refused(target: KfpTarget, status: int, reason: str) -> ConfigError:
    return ConfigError(f"--host {target.host} answered {status} {reason}: give a valid token "
                       "(KFP_TOKEN, --token-file) or session cookies (KFP_COOKIES) for this "
                       "namespace")


def _unreachable(target: KfpTarget, reason) -> ConfigError:
    return ConfigError(f"--host {target.host}: unreachable ({reason}); check the address and "
                       "that the KFP API is exposed there")


@contextlib.contextmanager
def _api_errors(target: KfpTarget):
    """The KFP API's refusals and an unreachable host as one line naming the fix."""
    import urllib3
    from kfp_server_api.exceptions import ApiException

    try:
        yield
    except ApiException as err:
        if err.status in (401, 403):
            raise _refused(target, err.status, err.reason) from err
        detail = str(err.body or "").strip().splitlines()[:1]
        raise ConfigError(f"--host {target.host} answered {err.status} {err.reason}"
                          f"{': ' + detail[0][:300] if detail else ''}") from err
    except (urllib3.exceptions.HTTPError, ConnectionError) as err:
        raise _unreachable(target, type(err).__name__) from err


def _namespace(target: KfpTarget) -> str | None:
    return target.namespace or None


def _experiment_id(client, name: str, target: KfpTarget) -> str:
    try:
        return client.get_experiment(experiment_name=name,
                                     namespace=_namespace(target)).experiment_id
    except ValueError:
        return client.create_experiment(name, namespace=_namespace(target)).experiment_id


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name",
                                       "stringValue": name}]})


def pipeline_version(client, pipeline_yaml: str, pipeline_name: str,
                     target: KfpTarget) -> tuple[str, str]:
    """``(pipeline_id, version_id)`` of the compiled spec, uploaded unless already there."""
    with open(pipeline_yaml, "rb") as handle:
        version_name = f"{pipeline_name}-{hashlib.sha256(handle.read()).hexdigest()[:12]}"
    found = client.list_pipelines(filter=_name_filter(pipeline_name),
                                  namespace=_namespace(target)).pipelines or []
    if not found:
        pipeline = client.upload_pipeline(pipeline_yaml, pipeline_name=pipeline_name,
                                          namespace=_namespace(target))
        versions = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions or []
        log.info("uploaded pipeline %s (%s)", pipeline_name, pipeline.pipeline_id)
        return pipeline.pipeline_id, versions[0].pipeline_version_id
    pipeline_id = found[0].pipeline_id
    versions = client.list_pipeline_versions(
        pipeline_id, filter=_name_filter(version_name)).pipeline_versions or []
    if versions:
        return pipeline_id, versions[0].pipeline_version_id
    version = client.upload_pipeline_version(pipeline_yaml, version_name,
                                             pipeline_id=pipeline_id)
    log.info("uploaded pipeline version %s (%s)", version_name, version.pipeline_version_id)
    return pipeline_id, version.pipeline_version_id


def _identity(profile: Profile) -> dict:
    return {"service_account": profile.service_account or None,
            "pipeline_root": profile.pipeline_root or None}


def submit(target: KfpTarget, profile: Profile, experiment: str, pipeline_yaml: str,
           pipeline_name: str, params: dict, run_name: str) -> str:
    with _api_errors(target):
        client = _client(target)
        experiment_id = _experiment_id(client, experiment, target)
        pipeline_id, version_id = pipeline_version(client, pipeline_yaml, pipeline_name,
                                                   target)
        run = client.run_pipeline(experiment_id, run_name, params=params,
                                  pipeline_id=pipeline_id, version_id=version_id,
                                  **_identity(profile))
    return run.run_id


def schedule(target: KfpTarget, profile: Profile, experiment: str, pipeline_yaml: str,
             pipeline_name: str, params: dict, name: str, cron: str) -> str:
    """Create the recurring run ``name``, then delete older ones of that name (KFP cannot
    update a schedule). One run at a time, no catch-up of missed slots."""
    cron = for_kfp(cron)
    with _api_errors(target):
        return _schedule(_client(target), target, profile, experiment, pipeline_yaml,
                         pipeline_name, params, name, cron)


def _schedule(client, target: KfpTarget, profile: Profile, experiment: str, pipeline_yaml: str,
              pipeline_name: str, params: dict, name: str, cron: str) -> str:
    experiment_id = _experiment_id(client, experiment, target)
    pipeline_id, version_id = pipeline_version(client, pipeline_yaml, pipeline_name, target)
    existing = client.list_recurring_runs(experiment_id=experiment_id, page_size=100,
                                          namespace=_namespace(target)).recurring_runs or []
    created = client.create_recurring_run(
        experiment_id=experiment_id, job_name=name, cron_expression=cron, max_concurrency=1,
        no_catchup=True, params=params, pipeline_id=pipeline_id, version_id=version_id,
        enabled=True, **_identity(profile))
    for old in existing:
        if old.display_name == name:
            log.info("replaced schedule %s: deleting %s", name, old.recurring_run_id)
            client.delete_recurring_run(old.recurring_run_id)
    return created.recurring_run_id
