"""Vertex AI Model Registry as the product's registry:
``vertex://projects/P/locations/L?log=gs://BUCKET/PATH[&serving_image=IMAGE]``.

- A version is a version of the Vertex model whose display name is ``model_name``
  (label ``finetune-model``), made by ``Model.upload`` (``parent_model`` after the first)
  from the SavedModel where the export step wrote it, with the serving container of
  Vertex's prebuilt TensorFlow images for the SavedModel's TensorFlow version (the newest
  the SDK lists at or below it; ``serving_image`` overrides it) and labels for lineage
  (run id, gate decision, data fingerprint, content hash, cut to Vertex's label rules).
  The product's version record (gate, metrics, lineage) is the version description.
- ``production`` is Vertex's version alias; promoting it also moves ``default``, so an
  endpoint deploy or a ``Model(name)`` without a version gets production.
- Compare-and-swap: ``mergeVersionAliases`` has no precondition, so a move reads the
  alias, compares, appends ``seq + 1`` to the alias history under ``log`` (a create-only
  write: of two promoters that read the same production exactly one gets past it), then
  merges the alias. What remains: an alias moved outside this product (the console,
  another tool) between the read and the merge is overwritten. Two first registrations
  racing can make two models of one display name; the next call names both.
- The run log and the alias history live on storage under ``log`` (``<log>/<model>/``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time

from components.common import storage
from components.export.contract import METADATA_FILE
from components.registry.base import PRODUCTION, LoggedRegistry, StorageLog
from components.registry.checks import RegistryError, write_attachments

DEFAULT_ALIAS = "default"  # Vertex's: what a model without a version means


def label(value: str) -> str:
    """``value`` under Vertex's label rules: lowercase letters, digits, ``_`` and ``-``,
    at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:63]


def serving_image(tensorflow_version: str, location: str) -> str:
    """Vertex's prebuilt TensorFlow prediction image for a SavedModel written by
    ``tensorflow_version``: the newest the SDK lists at or below it, in ``location``'s
    region."""
    from google.cloud.aiplatform import helpers

    major, minor = (int(part) for part in tensorflow_version.split(".")[:2])
    for candidate in range(minor, -1, -1):
        with contextlib.suppress(ValueError):
            return helpers.get_prebuilt_prediction_container_uri(
                "tensorflow", f"{major}.{candidate}", region=location)
    raise RegistryError(f"no Vertex prediction image for TensorFlow {tensorflow_version}: "
                        "name one with &serving_image=IMAGE in the registry URI")


class VertexRegistry(LoggedRegistry):
    def __init__(self, uri: str, model_name: str, project: str, location: str, log: str,
                 image: str = ""):
        if not model_name:
            raise RegistryError("model name is empty")
        self.model_name, self.project, self.location = model_name, project, location
        self.image = image
        self.base = f"{uri.split('?')[0]}#/models/{model_name}"
        self.log = StorageLog(storage.join(log, model_name))

    def _call(self, method, *args, **kwargs):
        """Call the SDK; an API error is one RegistryError naming the call."""
        from google.api_core.exceptions import GoogleAPIError

        try:
            return method(*args, **kwargs)
        except GoogleAPIError as err:
            raise RegistryError(f"Vertex AI ({self.project}, {self.location}): "
                                f"{err}") from err

    def _parent(self) -> str | None:
        """The resource name of this registry's Vertex model, or None before the first
        version."""
        from google.cloud import aiplatform

        found = [m.resource_name for m in self._call(
            aiplatform.Model.list, filter=f'display_name="{self.model_name}"',
            project=self.project, location=self.location)
            if m.labels.get("finetune-model") == label(self.model_name)]
        if len(found) > 1:
            raise RegistryError(f"{len(found)} Vertex models are named {self.model_name!r} "
                                f"({', '.join(found)}): delete all but one")
        return found[0] if found else None

    def _registry(self, parent: str):
        from google.cloud import aiplatform

        return aiplatform.models.ModelRegistry(parent, project=self.project,
                                               location=self.location)

    @staticmethod
    def _record(info) -> dict | None:
        """The product's record of a Vertex version, or None for one it did not upload."""
        try:
            record = json.loads(info.version_description or "")
        except json.JSONDecodeError:
            return None
        if not isinstance(record, dict) or "run_id" not in record:
            return None
        return {**record, "version": int(info.version_id)}

    def _version_info(self, parent: str, version: str):
        """Vertex's info on ``version`` (a number or an alias) of ``parent``, or None."""
        from google.api_core.exceptions import InvalidArgument, NotFound

        try:
            return self._registry(parent).get_version_info(version)
        except (NotFound, InvalidArgument):  # no such version; an alias no version holds
            return None

    # versions -----------------------------------------------------------------------
    def list_versions(self) -> list[dict]:
        parent = self._parent()
        if parent is None:
            return []
        records = [self._record(v) for v in self._call(self._registry(parent).list_versions)]
        return sorted((r for r in records if r), key=lambda r: r["version"])

    def get_version(self, version: int) -> dict:
        parent = self._parent()
        info = self._call(self._version_info, parent, str(version)) if parent else None
        record = self._record(info) if info else None
        if record is None:
            raise RegistryError(f"{self.model_name} has no version {version} uploaded by "
                                f"this pipeline in Vertex AI ({self.project}, "
                                f"{self.location})")
        return record

    def register(self, saved_model_dir: str, run_id: str, info: dict | None = None,
                 attachments: dict[str, str] | None = None) -> dict:
        """Upload a version, idempotent per ``run_id`` and per content.
        ``attachments`` (name -> text) are written beside the SavedModel, which the
        version references where it is."""
        from google.cloud import aiplatform

        content, existing = self._registered(saved_model_dir, run_id)
        if existing:
            return existing
        if not saved_model_dir.startswith("gs://"):
            raise RegistryError(f"{saved_model_dir}: Vertex AI serves models from Cloud "
                                "Storage; run the pipeline with a gs:// pipeline root")
        write_attachments(saved_model_dir, attachments)
        info = info or {}
        metadata_file = storage.join(saved_model_dir, METADATA_FILE)
        metadata = json.loads(storage.read_text(metadata_file)) \
            if storage.exists(metadata_file) else {}
        parent = self._parent()
        record = {"model_name": self.model_name, "run_id": run_id, "uri": saved_model_dir,
                  "time": time.time(), "content_sha256": content,
                  "production_at_registration": self.current(PRODUCTION), **info}
        model = self._call(
            aiplatform.Model.upload, display_name=self.model_name,
            artifact_uri=saved_model_dir, parent_model=parent,
            serving_container_image_uri=self.image or serving_image(
                metadata.get("tensorflow", "2.15"), self.location),
            is_default_version=parent is None, version_description=json.dumps(record),
            labels={"finetune-model": label(self.model_name), "run-id": label(run_id),
                    "content-sha256": label(content),
                    "gate-decision": label((info.get("gate") or {}).get("decision", "")),
                    "data-fingerprint": label(info.get("data_fingerprint") or "")},
            project=self.project, location=self.location)
        return {**record, "version": int(model.version_id)}

    # aliases ------------------------------------------------------------------------
    def current(self, alias: str = PRODUCTION) -> int | None:
        parent = self._parent()
        info = self._call(self._version_info, parent, alias) if parent else None
        return None if info is None else int(info.version_id)

    def _point(self, alias: str, version: int) -> None:
        aliases = [alias, DEFAULT_ALIAS] if alias == PRODUCTION else [alias]
        self._call(self._registry(self._parent()).add_version_aliases, aliases, str(version))
