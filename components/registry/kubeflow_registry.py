"""The Kubeflow Model Registry as the product's registry:
``kubeflow-registry+http(s)://HOST:PORT?log=STORAGE_URI``, through its Python client
(``model-registry``).

- A version is a model version of the registered model ``model_name``, named by its
  number, with one model artifact whose URI is the SavedModel where the export step wrote
  it in the pipeline's storage (the registry holds a reference, not a copy: keep that
  storage for as long as a version may serve). The product's version record (gate
  decision, metrics, lineage) is the version's ``finetune.record`` custom property; the
  gate decision, data fingerprint, run id and content hash are properties of their own.
- The registry has no aliases: ``production`` is a custom property of the registered
  model naming the version, which KServe and the Model Registry UI read.
- Compare-and-swap: the server's update has no precondition, so a move reads the
  property, compares, appends ``seq + 1`` to the alias history under ``log`` (a
  create-only write: of two promoters that read the same production exactly one gets
  past it), then updates the property. What remains: a writer outside this product (the
  UI, another tool) that changes the property between the read and the update is
  overwritten; and the update replaces the registered model's custom properties whole, so
  a property another tool adds in that instant is lost.
- The run log and the alias history live on storage under ``log`` (``<log>/<model>/``),
  as in the storage registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from urllib.parse import urlsplit

from components.common import storage
from components.registry.base import PRODUCTION, LoggedRegistry, StorageLog
from components.registry.checks import RegistryError, write_attachments

RECORD = "finetune.record"
AUTHOR = "resnet-finetune"
ARTIFACT = {"model_format_name": "tensorflow", "model_format_version": "2"}


def _run(coroutine):
    """The client's async runner: a fresh event loop per call, instead of the client's
    default, which patches asyncio for the whole process (nest-asyncio)."""
    return asyncio.run(coroutine)


class KubeflowRegistry(LoggedRegistry):
    def __init__(self, uri: str, model_name: str, log: str):
        from model_registry import ModelRegistry

        if not model_name:
            raise RegistryError("model name is empty")
        address = urlsplit(uri.removeprefix("kubeflow-registry+"))
        self.model_name = model_name
        self.server = f"{address.scheme}://{address.netloc}"
        self.base = f"{uri.split('?')[0]}#/models/{model_name}"
        self.log = StorageLog(storage.join(log, model_name))
        with warnings.catch_warnings():  # the in-cluster token is optional over http
            warnings.filterwarnings("ignore", "User access token is missing")
            self.client = self._call(ModelRegistry, f"{address.scheme}://{address.hostname}",
                                     address.port, author=AUTHOR, async_runner=_run,
                                     log_level=logging.ERROR,
                                     is_secure=address.scheme == "https")

    def _call(self, method, *args, **kwargs):
        """Call the client; any failure (an unreachable server too) is one RegistryError."""
        try:
            return method(*args, **kwargs)
        except Exception as err:  # the client raises its own, aiohttp's and pydantic's
            raise RegistryError(f"Kubeflow Model Registry at {self.server}: "
                                f"{type(err).__name__}: {err}") from err

    # versions -----------------------------------------------------------------------
    def _model(self):
        return self._call(self.client.get_registered_model, self.model_name)

    def list_versions(self) -> list[dict]:
        if self._model() is None:
            return []
        versions = self._call(lambda: list(self.client.get_model_versions(self.model_name)))
        return sorted((self._record(v) for v in versions
                       if RECORD in (v.custom_properties or {})), key=lambda r: r["version"])

    @staticmethod
    def _record(model_version) -> dict:
        return {**json.loads(model_version.custom_properties[RECORD]),
                "version": int(model_version.name)}

    def get_version(self, version: int) -> dict:
        found = self._call(self.client.get_model_version, self.model_name, str(version)) \
            if self._model() else None
        if found is None or RECORD not in (found.custom_properties or {}):
            raise RegistryError(f"{self.model_name} has no version {version} registered by "
                                f"this pipeline in the Kubeflow Model Registry at "
                                f"{self.server}")
        return self._record(found)

    def register(self, saved_model_dir: str, run_id: str, info: dict | None = None,
                 attachments: dict[str, str] | None = None) -> dict:
        """Add a version, idempotent per ``run_id`` and per content; the version number
        is the next free name (the server refuses a name twice, so racing runs differ).
        ``attachments`` (name -> text) are written beside the SavedModel, which the
        version references where it is."""
        content, existing = self._registered(saved_model_dir, run_id)
        if existing:
            self._ensure_artifact(existing)
            return existing
        write_attachments(saved_model_dir, attachments)
        info = info or {}
        number = max([r["version"] for r in self.list_versions()] + [0]) + 1
        production = self.current(PRODUCTION)
        while True:
            record = {"version": number, "model_name": self.model_name, "run_id": run_id,
                      "uri": saved_model_dir, "time": time.time(), "content_sha256": content,
                      "production_at_registration": production, **info}
            properties = {
                RECORD: json.dumps(record), "finetune.run_id": run_id,
                "finetune.content_sha256": content,
                "gate_decision": (info.get("gate") or {}).get("decision", ""),
                "data_fingerprint": info.get("data_fingerprint") or "",
                **{f"metric.{k}": float(v) for k, v in (info.get("metrics") or {}).items()
                   if isinstance(v, int | float)}}
            try:
                self.client.register_model(self.model_name, saved_model_dir,
                                           version=str(number), **ARTIFACT,
                                           version_description=f"run {run_id}",
                                           metadata=properties)
                return record
            except Exception as err:  # the client's "already exists", or the server's 409
                if "already exists" not in str(err):
                    raise RegistryError(f"Kubeflow Model Registry at {self.server}: "
                                        f"{type(err).__name__}: {err}") from err
                number += 1

    def _ensure_artifact(self, record: dict) -> None:
        """Give a version whose registration stopped between its two writes (the version,
        then its model artifact) the artifact it lacks, so that a retry completes it."""
        name, version = self.model_name, str(record["version"])
        if self._call(self.client.get_model_artifact, name, version) is None:
            found = self._call(self.client.get_model_version, name, version)
            # The client's public calls register a version and its artifact together only.
            self._call(self.client.async_runner, self.client._register_model_artifact(
                found, name, record["uri"], **ARTIFACT))

    # aliases ------------------------------------------------------------------------
    def current(self, alias: str = PRODUCTION) -> int | None:
        model = self._model()
        value = (model.custom_properties or {}).get(alias) if model else None
        return None if value in (None, "") else int(value)

    def _point(self, alias: str, version: int) -> None:
        model = self._model()
        model.custom_properties = {**(model.custom_properties or {}), alias: str(version)}
        self._call(self.client.update, model)
