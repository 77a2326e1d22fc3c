"""What every registry backend shares: the ``ModelRegistry`` interface the steps and the CLI
use, what each backend derives from its versions and aliases (``ResolvingRegistry``), and
the alias history and run log kept on storage (``StorageLog``, ``LoggedRegistry``) for the
backends that keep them there.

The alias history is ``aliases/<alias>/<seq>.json``: the highest ``seq`` is current; moving
an alias writes ``seq + 1`` create-only (GCS ``if_generation_match=0``, S3
``If-None-Match: *``, a hard link locally): a compare-and-swap in which exactly one of two
racing writers wins.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from components.common import outputs, storage
from components.export.contract import DESCRIPTIONS
from components.registry.checks import (
    ConflictError,
    RegistryError,
    check_run_id,
    check_saved_model,
)

PRODUCTION = "production"
SEQ_WIDTH = 8
CONTENT_WAIT_S = 120  # how long a registration waits for a concurrent one of equal bytes
CONTENT_CLAIM_STALE_S = 3600  # a content claim this old belongs to a run that died
UNCHECKED = object()  # promote without comparing the alias's current version


@runtime_checkable
class ModelRegistry(Protocol):
    """What every backend answers (``schemes.open_registry`` returns one); the contract
    suite runs the same tests on each."""

    model_name: str

    def register(self, saved_model_dir: str, run_id: str, info: dict | None = None,
                 attachments: dict[str, str] | None = None) -> dict: ...
    def list_versions(self) -> list[dict]: ...
    def get_version(self, version: int) -> dict: ...
    def resolve(self, ref: str) -> dict: ...
    def find_by_run(self, run_id: str) -> dict | None: ...
    def find_by_content(self, content_sha256: str) -> dict | None: ...
    def current(self, alias: str = PRODUCTION) -> int | None: ...
    def history(self, alias: str = PRODUCTION) -> list[dict]: ...
    def promote(self, version: int, run_id: str = "", alias: str = PRODUCTION,
                expected_version: int | None | object = UNCHECKED) -> dict: ...
    def rollback(self, alias: str = PRODUCTION, run_id: str = "") -> dict: ...
    def log_run(self, run_id: str, step: str, entry: dict) -> None: ...
    def runs(self) -> list[dict]: ...
    def saved_model_copy(self, version: int) -> contextlib.AbstractContextManager[str]: ...
    def production_saved_model(self) -> str | None: ...
    def model_names(self) -> list[str]: ...


class ResolvingRegistry:
    """What every backend derives from its versions and aliases."""

    def _registered(self, saved_model_dir: str, run_id: str) -> tuple[str, dict | None]:
        """The SavedModel's content hash, and the version already holding this run or
        these bytes (registering is idempotent on both)."""
        if not run_id:
            raise RegistryError("run id is empty: promotion needs it to stay idempotent")
        check_saved_model(saved_model_dir)
        content = outputs.content_sha256(saved_model_dir, exclude=DESCRIPTIONS)
        return content, self.find_by_run(run_id) or self.find_by_content(content)

    def resolve(self, ref: str) -> dict:
        """A version number or an alias name -> the version record."""
        if str(ref).isdigit():
            return self.get_version(int(ref))
        version = self.current(ref)
        if version is None:
            raise RegistryError(f"alias {ref!r} of {self.model_name} is not set")
        return self.get_version(version)

    def find_by_run(self, run_id: str) -> dict | None:
        return next((r for r in self.list_versions() if r.get("run_id") == run_id), None)

    def find_by_content(self, content_sha256: str) -> dict | None:
        return next((r for r in self.list_versions()
                     if r.get("content_sha256") == content_sha256), None)

    @contextlib.contextmanager
    def saved_model_copy(self, version: int) -> Iterator[str]:
        """A local copy of version ``version``'s SavedModel, verified against the content
        hash its record holds: a tampered or half-copied version is refused, never
        loaded."""
        record = self.get_version(version)
        with self._local_copy(record) as local:
            found = outputs.content_sha256(local, exclude=DESCRIPTIONS)
            if found != record.get("content_sha256"):
                raise RegistryError(
                    f"{self.model_name} version {version} at {record['uri']}: its files do "
                    f"not match the recorded content hash ({found[:12]} against "
                    f"{str(record.get('content_sha256'))[:12]}): changed or incomplete since "
                    "registration; roll production back or register the model again")
            yield local

    def _local_copy(self, record: dict):
        """A local copy of the SavedModel of ``record`` (the folder itself if local)."""
        return storage.local_copy(record["uri"])

    def model_names(self) -> list[str]:
        """The models this registry holds, where the backend lists them cheaply (storage);
        empty elsewhere."""
        return []

    def production_saved_model(self) -> str | None:
        """The SavedModel URI of the production version, or None on a first run."""
        version = self.current(PRODUCTION)
        return None if version is None else self.get_version(version)["uri"]


def numbers(folder: str) -> list[int]:
    """The numbers N of the ``N.json`` files in ``folder`` (none if it does not exist)."""
    if not storage.is_dir(folder):
        return []
    names = [info.uri.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] for info in storage.list_files(folder)]
    return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())


def read_json(uri: str) -> dict:
    try:
        return json.loads(storage.read_text(uri))
    except FileNotFoundError as err:
        raise RegistryError(f"registry object missing: {uri}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RegistryError(f"registry object is corrupt (not JSON): {uri}: {err}") from err


class StorageLog:
    """A model's alias history and run log on storage, under ``base``:
    ``aliases/<alias>/<seq>.json`` (create-only, so appending entry ``seq + 1`` is a
    compare-and-swap) and ``runs/<run id>/<step>.json``."""

    def __init__(self, base: str):
        self.base = base

    def _path(self, *parts: str) -> str:
        return storage.join(self.base, *parts)

    def history(self, alias: str = PRODUCTION) -> list[dict]:
        return [read_json(self._path("aliases", alias, f"{seq:0{SEQ_WIDTH}d}.json"))
                for seq in numbers(self._path("aliases", alias))]

    def head(self, alias: str) -> tuple[int, dict | None]:
        """The last entry's sequence number and the entry (0, None before the first)."""
        seqs = numbers(self._path("aliases", alias))
        if not seqs:
            return 0, None
        return seqs[-1], read_json(self._path("aliases", alias,
                                               f"{seqs[-1]:0{SEQ_WIDTH}d}.json"))

    def append(self, alias: str, entry: dict) -> dict:
        """Write ``entry`` as number ``entry["seq"]``; ConflictError if another writer did."""
        try:
            storage.write_text(self._path("aliases", alias, f"{entry['seq']:0{SEQ_WIDTH}d}.json"),
                               json.dumps(entry, indent=2), create_only=True)
        except storage.AlreadyExists as err:
            raise ConflictError(f"{alias} of {self.base} was moved concurrently (entry "
                                f"{entry['seq']} exists); re-read and retry") from err
        return entry

    def claim_content(self, content_sha256: str, run_id: str) -> dict | None:
        """Claim the registration of these bytes (create-only ``contents/<sha>.json``):
        None when this run holds the claim, else the live claim of the run that does. A
        claim older than ``CONTENT_CLAIM_STALE_S`` (its run died) no longer holds."""
        uri = self._path("contents", f"{content_sha256}.json")
        try:
            storage.write_text(uri, json.dumps({"run_id": run_id, "time": time.time()}),
                               create_only=True)
            return None
        except storage.AlreadyExists:
            claim = read_json(uri)
        if claim.get("run_id") == run_id or \
                time.time() - claim.get("time", 0) > CONTENT_CLAIM_STALE_S:
            return None
        return claim

    def log_run(self, run_id: str, step: str, entry: dict) -> None:
        """Record what ``step`` of pipeline run ``run_id`` did (one object per step)."""
        check_run_id(run_id)
        storage.write_text(self._path("runs", run_id, f"{step}.json"),
                           json.dumps({**entry, "time": time.time()}, indent=2))

    def runs(self) -> list[dict]:
        """One record per pipeline run, oldest first: status, data, decision, versions."""
        folder = self._path("runs")
        steps: dict[str, dict[str, dict]] = {}
        for info in storage.list_files(folder) if storage.is_dir(folder) else []:
            run_id, _, name = storage.relative(folder, info.uri).partition("/")
            if name.endswith(".json"):
                steps.setdefault(run_id, {})[name[:-5]] = read_json(info.uri)
        return sorted((run_record(run_id, entries) for run_id, entries in steps.items()),
                      key=lambda r: r["time"])


class LoggedRegistry(ResolvingRegistry):
    """A registry whose alias moves and run log go through a StorageLog (``self.log``).

    A move appends ``seq + 1`` to the alias history (create-only) before it points the
    backend's alias (``_point``), so of two promoters that read the same state exactly
    one moves it. A move the history holds but the backend missed (its pointing failed,
    or is under way) is finished first: pointing twice is harmless. A checked move refuses
    while the two still disagree, that is, when the alias was moved outside this product.
    Subclasses give ``current`` (the backend's alias) and ``_point``."""

    log: StorageLog

    def _registered(self, saved_model_dir: str, run_id: str) -> tuple[str, dict | None]:
        """As every backend's, and under concurrency too: the first run to claim these
        bytes registers them; another waits for that version rather than adding one."""
        content, existing = super()._registered(saved_model_dir, run_id)
        if existing:
            return content, existing
        holder = self.log.claim_content(content, run_id)
        if holder is None:
            return content, None
        deadline = time.monotonic() + CONTENT_WAIT_S
        while time.monotonic() < deadline:
            found = self.find_by_content(content)
            if found:
                return content, found
            time.sleep(0.2)
        raise ConflictError(f"run {holder['run_id']} is registering the same SavedModel bytes "
                            f"in {self.model_name} and has not finished after "
                            f"{CONTENT_WAIT_S} s; retry once it has")

    def _point(self, alias: str, version: int) -> None:
        """Point the backend's own alias at ``version`` (the storage registry has none)."""

    def history(self, alias: str = PRODUCTION) -> list[dict]:
        return self.log.history(alias)

    def log_run(self, run_id: str, step: str, entry: dict) -> None:
        self.log.log_run(run_id, step, entry)

    def runs(self) -> list[dict]:
        return self.log.runs()

    def _settled(self, alias: str) -> tuple[int, dict | None, int | None]:
        """The history's last number and entry, and the backend's alias after finishing
        a move that the history records and the backend missed."""
        seq, head = self.log.head(alias)
        current = self.current(alias)
        if head and head["version"] != current and head.get("previous_version") == current:
            self._point(alias, head["version"])
            current = head["version"]
        return seq, head, current

    def _move(self, alias: str, version: int, action: str, run_id: str,
              expected_version: int | None | object) -> dict:
        self.get_version(version)
        seq, head, current = self._settled(alias)
        if expected_version is not UNCHECKED and head and head["version"] != current:
            raise ConflictError(
                f"{alias} of {self.model_name} is version {current} but its history ends "
                f"at {head['version']}: the alias was moved outside this product; move it "
                "by hand (`finetune registry promote`), which writes the history again")
        if expected_version is not UNCHECKED and current != expected_version:
            raise ConflictError(f"{alias} of {self.model_name} is version {current}, not "
                                f"{expected_version} as expected; re-read and retry")
        entry = self.log.append(alias, {
            "alias": alias, "version": version, "previous_version": current,
            "action": action, "run_id": run_id, "time": time.time(), "seq": seq + 1})
        self._point(alias, version)
        return entry

    def promote(self, version: int, run_id: str = "", alias: str = PRODUCTION,
                expected_version: int | None | object = UNCHECKED) -> dict:
        """Point ``alias`` at ``version``; a no-op entry is not written if it already is.
        With ``expected_version`` (None: not set yet) the move is a compare-and-swap."""
        _seq, head, current = self._settled(alias)
        if head and head["version"] == version == current:
            return head
        return self._move(alias, version, "promote", run_id, expected_version)

    def rollback(self, alias: str = PRODUCTION, run_id: str = "") -> dict:
        """Point ``alias`` back at the version it held before the current one."""
        _seq, head = self.log.head(alias)
        if head is None:
            raise RegistryError(f"{alias} of {self.model_name} is not set: nothing to roll "
                                "back to")
        previous = head.get("previous_version")
        if previous is None:
            raise RegistryError(f"{alias} of {self.model_name} has no previous version")
        return self._move(alias, previous, "rollback", run_id, head["version"])


def run_record(run_id: str, steps: dict[str, dict]) -> dict:
    lineage, evaluate = steps.get("lineage", {}), steps.get("evaluate", {})
    promote, final = steps.get("promote", {}), steps.get("final", {})
    cause = steps.get("cause", {})
    decision = "promoted" if promote else evaluate.get("decision") or lineage.get("decision")
    return {
        "run_id": run_id, "time": min(entry["time"] for entry in steps.values()),
        "status": final.get("status", "running"), "decision": decision,
        "reasons": evaluate.get("reasons") or lineage.get("reasons", []),
        "data_fingerprint": lineage.get("data_fingerprint"), "lineage_key": lineage.get("key"),
        "evaluated": bool(evaluate),
        "production_version": lineage.get("production_version"),
        "promoted_version": promote.get("version"), "failed_step": cause.get("step"),
        "error": cause.get("error") or final.get("error", ""),
    }
