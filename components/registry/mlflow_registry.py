"""The MLflow Model Registry as the product's registry: ``mlflow+http(s)://HOST:PORT``.

- A version is an MLflow model version of ``model_name`` whose source is
  ``runs:/<run>/saved_model``: the SavedModel logged once as the artifacts of an MLflow run
  (experiment ``finetune/<model_name>``). Registering is idempotent on the pipeline run
  id and on the SavedModel's content (both model version tags); the product's version
  record (gate decision, metrics, lineage) is the ``finetune.record`` tag, and the gate
  decision, data fingerprint and run id are tags of their own for MLflow's UI.
- ``production`` is MLflow's alias (not the deprecated stages); its history, which
  rollback reads, is the registered model's ``finetune.alias.<alias>`` tag.
- Compare-and-swap becomes read-compare-set: MLflow has no conditional alias update, so
  two promoters that both read the same production within one request's time both
  succeed and the later one wins. Concurrent registrations of one run id, or of the same
  bytes, each create a version, and all but the first delete theirs again: one remains.
- The run log is one MLflow run per pipeline run (tag ``finetune.kind=pipeline-run``),
  each step's entry a ``finetune.step.<step>`` tag.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator

from components.common import storage
from components.registry.base import PRODUCTION, UNCHECKED, ResolvingRegistry, run_record
from components.registry.checks import (
    ConflictError,
    RegistryError,
    check_model_name,
    check_run_id,
)

RECORD_TAG = "finetune.record"
RUN_TAG = "finetune.run_id"
CONTENT_TAG = "finetune.content_sha256"
KIND_TAG = "finetune.kind"
STEP_TAG = "finetune.step."
ALIAS_TAG = "finetune.alias."
# MLflow retries a request 7 times with backoff by default: 4 minutes on a dead server.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")


MISSING = ("RESOURCE_DOES_NOT_EXIST",)
MISSING_ALIAS = ("INVALID_PARAMETER_VALUE",)  # what MLflow answers for an unset alias
EXISTS = ("RESOURCE_ALREADY_EXISTS",)


def _literal(value: str) -> str:
    """``value`` for a quoted MLflow filter literal, which has no escape for quotes."""
    if "'" in value:
        raise RegistryError(f"run id {value!r}: a quote cannot be searched for in MLflow")
    return value


class MlflowRegistry(ResolvingRegistry):
    def __init__(self, uri: str, model_name: str):
        from mlflow import MlflowClient

        check_model_name(model_name)  # it goes into MLflow search filters too
        self.tracking_uri = uri.removeprefix("mlflow+")
        self.client = MlflowClient(tracking_uri=self.tracking_uri,
                                   registry_uri=self.tracking_uri)
        self.model_name = model_name
        self.base = f"{uri}#/models/{model_name}"

    def _call(self, method, *args, expected: tuple[str, ...] = (), **kwargs):
        """Call the client; an MLflow error whose code is ``expected`` is re-raised for
        the caller, any other (an unreachable server too) is a one-line RegistryError."""
        from mlflow.exceptions import MlflowException

        try:
            return method(*args, **kwargs)
        except MlflowException as err:
            if err.error_code in expected:
                raise
            raise RegistryError(f"MLflow at {self.tracking_uri}: {err.message}") from err

    # versions -----------------------------------------------------------------------
    def _records(self, condition: str = "") -> list[dict]:
        query = f"name = '{self.model_name}'" + (f" and {condition}" if condition else "")
        versions = self._call(self.client.search_model_versions, query)
        return sorted((self._record(v) for v in versions if RECORD_TAG in v.tags),
                      key=lambda r: r["version"])

    @staticmethod
    def _record(model_version) -> dict:
        return {**json.loads(model_version.tags[RECORD_TAG]),
                "version": int(model_version.version)}

    def list_versions(self) -> list[dict]:
        return self._records()

    def get_version(self, version: int) -> dict:
        from mlflow.exceptions import MlflowException

        try:
            found = self._call(self.client.get_model_version, self.model_name, str(version),
                               expected=MISSING)
        except MlflowException as err:
            raise RegistryError(f"{self.model_name} has no version {version} in MLflow at "
                                f"{self.tracking_uri}") from err
        if RECORD_TAG not in found.tags:
            raise RegistryError(f"{self.model_name} version {version} in MLflow was not "
                                "registered by this pipeline (no finetune.record tag)")
        return self._record(found)

    def find_by_run(self, run_id: str) -> dict | None:
        return next(iter(self._records(f"tags.`{RUN_TAG}` = '{_literal(run_id)}'")), None)

    def find_by_content(self, content_sha256: str) -> dict | None:
        return next(iter(self._records(f"tags.`{CONTENT_TAG}` = '{content_sha256}'")), None)

    def _experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        name = f"finetune/{self.model_name}"
        found = self._call(self.client.get_experiment_by_name, name)
        if found:
            return found.experiment_id
        try:
            return self._call(self.client.create_experiment, name, expected=EXISTS)
        except MlflowException:  # created by a concurrent step
            return self._call(self.client.get_experiment_by_name, name).experiment_id

    def register(self, saved_model_dir: str, run_id: str, info: dict | None = None,
                 attachments: dict[str, str] | None = None) -> dict:
        """Add a version, idempotent per ``run_id`` and per content; ``attachments`` (name
        -> text) are logged beside the SavedModel's files."""
        from mlflow.exceptions import MlflowException

        content, existing = self._registered(saved_model_dir, run_id)
        if existing:
            return existing
        with contextlib.suppress(MlflowException):  # it exists
            self._call(self.client.create_registered_model, self.model_name, expected=EXISTS)
        run = self._call(self.client.create_run, self._experiment(),
                         tags={RUN_TAG: run_id, KIND_TAG: "model"}, run_name=run_id)
        mlflow_run = run.info.run_id
        with storage.local_copy(saved_model_dir) as local:
            self._call(self.client.log_artifacts, mlflow_run, local, "saved_model")
        for name, text in (attachments or {}).items():
            self._call(self.client.log_text, mlflow_run, text, f"saved_model/{name}")
        self._call(self.client.set_terminated, mlflow_run)
        info = info or {}
        record = {"model_name": self.model_name, "run_id": run_id,
                  "uri": f"runs:/{mlflow_run}/saved_model", "time": time.time(),
                  "content_sha256": content, "production_at_registration": self.current(),
                  "mlflow_run_id": mlflow_run, **info}
        tags = {RUN_TAG: run_id, CONTENT_TAG: content, RECORD_TAG: json.dumps(record),
                "gate_decision": (info.get("gate") or {}).get("decision", ""),
                "data_fingerprint": info.get("data_fingerprint") or "",
                **{f"metric.{k}": str(v) for k, v in (info.get("metrics") or {}).items()}}
        version = self._call(self.client.create_model_version, self.model_name,
                             record["uri"], run_id=mlflow_run, tags=tags, await_creation_for=0)
        return self._first_registration({**record, "version": int(version.version)})

    def _first_registration(self, mine: dict) -> dict:
        """Of racing registrations of one run or of the same bytes, the first version
        stays and the later ones are deleted. Each version is created with its tags, and
        the server numbers versions in commit order, so every later one sees the first."""
        same = (self._records(f"tags.`{CONTENT_TAG}` = '{mine['content_sha256']}'")
                + self._records(f"tags.`{RUN_TAG}` = '{_literal(mine['run_id'])}'"))
        first = min(same, key=lambda r: r["version"], default=mine)
        if first["version"] >= mine["version"]:
            return mine
        self._call(self.client.delete_model_version, self.model_name, str(mine["version"]))
        self._call(self.client.delete_run, mine["mlflow_run_id"])
        return first

    @contextlib.contextmanager
    def _local_copy(self, record: dict) -> Iterator[str]:
        """A local copy of ``record``'s SavedModel, downloaded from MLflow."""
        from mlflow.artifacts import download_artifacts

        with tempfile.TemporaryDirectory(prefix="mlflow-model-") as scratch:
            yield self._call(download_artifacts, artifact_uri=record["uri"], dst_path=scratch,
                             tracking_uri=self.tracking_uri)

    # aliases ------------------------------------------------------------------------
    def _model_tags(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return self._call(self.client.get_registered_model, self.model_name,
                              expected=MISSING).tags
        except MlflowException:
            return {}

    def history(self, alias: str = PRODUCTION) -> list[dict]:
        return json.loads(self._model_tags().get(ALIAS_TAG + alias, "[]"))

    def current(self, alias: str = PRODUCTION) -> int | None:
        from mlflow.exceptions import MlflowException

        try:
            found = self._call(self.client.get_model_version_by_alias, self.model_name, alias,
                               expected=MISSING + MISSING_ALIAS)
        except MlflowException:
            return None
        return int(found.version)

    def _move(self, alias: str, version: int, action: str, run_id: str,
              expected_version: int | None | object) -> dict:
        self.get_version(version)
        current = self.current(alias)
        if expected_version is not UNCHECKED and current != expected_version:
            raise ConflictError(f"{alias} of {self.model_name} is version {current}, not "
                                f"{expected_version} as expected; re-read and retry")
        history = self.history(alias)
        entry = {"alias": alias, "version": version, "previous_version": current,
                 "action": action, "run_id": run_id, "time": time.time(),
                 "seq": len(history) + 1}
        self._call(self.client.set_registered_model_alias, self.model_name, alias, version)
        self._call(self.client.set_registered_model_tag, self.model_name, ALIAS_TAG + alias,
                   json.dumps(history + [entry]))
        return entry

    def promote(self, version: int, run_id: str = "", alias: str = PRODUCTION,
                expected_version: int | None | object = UNCHECKED) -> dict:
        """Point ``alias`` at ``version`` (read-compare-set with ``expected_version``)."""
        history = self.history(alias)
        if history and self.current(alias) == version:
            return history[-1]
        return self._move(alias, version, "promote", run_id, expected_version)

    def rollback(self, alias: str = PRODUCTION, run_id: str = "") -> dict:
        history = self.history(alias)
        if not history:
            raise RegistryError(f"{alias} of {self.model_name} is not set: nothing to roll "
                                "back to")
        previous = history[-1].get("previous_version")
        if previous is None:
            raise RegistryError(f"{alias} of {self.model_name} has no previous version")
        return self._move(alias, previous, "rollback", run_id, history[-1]["version"])

    # run log ------------------------------------------------------------------------
    def _pipeline_runs(self, run_id: str = "") -> list:
        query = f"tags.`{KIND_TAG}` = 'pipeline-run'" + (
            f" and tags.`{RUN_TAG}` = '{_literal(run_id)}'" if run_id else "")
        return list(self._call(self.client.search_runs, [self._experiment()], query,
                               max_results=10_000))

    def log_run(self, run_id: str, step: str, entry: dict) -> None:
        """Record what ``step`` of pipeline run ``run_id`` did, as a tag of its MLflow run."""
        check_run_id(run_id)
        found = self._pipeline_runs(run_id)
        mlflow_run = found[0].info.run_id if found else self._call(
            self.client.create_run, self._experiment(),
            tags={KIND_TAG: "pipeline-run", RUN_TAG: run_id}, run_name=run_id).info.run_id
        self._call(self.client.set_tag, mlflow_run, STEP_TAG + step,
                   json.dumps({**entry, "time": time.time()}))

    def runs(self) -> list[dict]:
        records = []
        for run in self._pipeline_runs():
            steps = {key[len(STEP_TAG):]: json.loads(value)
                     for key, value in run.data.tags.items() if key.startswith(STEP_TAG)}
            if steps:
                records.append(run_record(run.data.tags[RUN_TAG], steps))
        return sorted(records, key=lambda r: r["time"])
