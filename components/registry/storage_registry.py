"""A model registry on plain storage (any storage URI: a local folder, gs://, s3://,
minio://) with atomic pointers.

Layout under ``<root>/<model_name>/``:
- ``versions/<N>/``: the SavedModel of version N, immutable. This folder is the serving
  base path for TF Serving (numeric sub-folders) and ``versions/<N>`` a KServe storageUri.
- ``records/<N>.json``: version N's record. Written last, create-only: the commit point.
  A version without a record is invisible.
- ``claims/<N>.json``: which run claimed number N (create-only), so two runs never share N.
- ``runs/<run id>/<step>.json``: what each step of a pipeline run recorded (the run log).
- ``aliases/<alias>/<seq>.json``: the alias history (see ``base.StorageLog``).
"""

from __future__ import annotations

import json
import time

from components.common import outputs, storage
from components.registry.base import (
    PRODUCTION,
    LoggedRegistry,
    StorageLog,
    numbers,
    read_json,
)
from components.registry.checks import (
    SAVED_MODEL_FILE,
    RegistryError,
    check_model_name,
    write_attachments,
)

MARKERS = (outputs.STARTED_MARKER, outputs.COMPLETE_MARKER)


class StorageRegistry(LoggedRegistry):
    """The registry kept as files under a storage root: no server of its own."""


    def __init__(self, root: str, model_name: str):
        check_model_name(model_name)
        storage.check_uri(root, "--registry")
        self.root = root
        self.model_name = model_name
        self.base = storage.join(root, model_name)
        self.log = StorageLog(self.base)

    def _path(self, *parts: str) -> str:
        return storage.join(self.base, *parts)

    def version_uri(self, version: int) -> str:
        return self._path("versions", str(version))

    def model_names(self) -> list[str]:
        """The models this registry's root holds (a version record or a run log each)."""
        names = set()
        for info in storage.list_files(self.root):
            parts = storage.relative(self.root, info.uri).split("/")
            if len(parts) > 2 and parts[1] in ("records", "runs"):
                names.add(parts[0])
        return sorted(names)

    # versions -----------------------------------------------------------------------
    def list_versions(self) -> list[dict]:
        return [self.get_version(n) for n in numbers(self._path("records"))]

    def get_version(self, version: int) -> dict:
        uri = self._path("records", f"{version}.json")
        if not storage.exists(uri):
            raise RegistryError(f"{self.model_name} has no version {version} (registry "
                                f"object missing: {uri})")
        record = read_json(uri)
        if record.get("version") != version:
            raise RegistryError(f"registry record {uri} says version "
                                f"{record.get('version')}, expected {version}")
        return record

    def current(self, alias: str = PRODUCTION) -> int | None:
        _seq, head = self.log.head(alias)
        return None if head is None else head["version"]

    def _claim(self, run_id: str) -> int:
        records = numbers(self._path("records"))
        for number in numbers(self._path("claims")):
            claim = read_json(self._path("claims", f"{number}.json"))
            if claim.get("run_id") == run_id and number not in records:
                return number
        number = max(numbers(self._path("claims")) + records + [0]) + 1
        while True:
            try:
                storage.write_text(self._path("claims", f"{number}.json"),
                                   json.dumps({"run_id": run_id, "time": time.time()}),
                                   create_only=True)
                return number
            except storage.AlreadyExists:
                number += 1

    def register(self, saved_model_dir: str, run_id: str, info: dict | None = None,
                 attachments: dict[str, str] | None = None) -> dict:
        """Add a version, idempotent per ``run_id`` and per content (never two versions
        with the same bytes): stage files, then commit the record. ``attachments`` (name
        -> text, e.g. the model card) are written beside the SavedModel's files."""
        content, existing = self._registered(saved_model_dir, run_id)
        if existing:
            return existing
        number = self._claim(run_id)
        target = self.version_uri(number)
        write_attachments(target, attachments)
        root = saved_model_dir.rstrip("/")
        files = {storage.relative(root, f.uri): f.uri for f in storage.list_files(root)}
        for name in attachments or {}:  # this registration's card, not one left there
            files.pop(name, None)
        # The model's bytes, then saved_model.pb (a server watching versions/ never sees a
        # partial model), then the markers: a copy cut short never carries _SUCCESS.
        for name in sorted(files, key=lambda n: (n in MARKERS, n == SAVED_MODEL_FILE, n)):
            storage.write_bytes(storage.join(target, name), storage.read_bytes(files[name]))
        record = {"version": number, "model_name": self.model_name, "run_id": run_id,
                  "uri": target, "time": time.time(), "content_sha256": content,
                  "production_at_registration": self.current(PRODUCTION), **(info or {})}
        try:
            storage.write_text(self._path("records", f"{number}.json"),
                               json.dumps(record, indent=2), create_only=True)
        except storage.AlreadyExists:
            return self.get_version(number)
        return record
