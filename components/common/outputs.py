"""Artifact folders written in place, on any scheme, with no directory rename.

A step claims its output with a started marker, writes its files straight into it and
writes the completion marker last; readers accept a folder only once that marker is
there. This works alike on local disk, the KFP launcher's localized paths and Cloud
Storage FUSE (which refuses directory renames). A retried step finds its own started
marker and clears the partial output; a complete or foreign folder is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from components.common import storage

log = logging.getLogger(__name__)
STARTED_MARKER = "_STARTED"
COMPLETE_MARKER = "_SUCCESS"


def _require_local_writable(output: str) -> None:
    existing = Path(output)
    while not existing.exists():
        existing = existing.parent
    if os.access(existing, os.W_OK):
        return
    why = ("is on a read-only file system" if os.statvfs(existing).f_flag & os.ST_RDONLY
           else "is not writable by this user")
    raise PermissionError(f"--output {output}: {existing} {why}; choose a writable folder")


def check_writable(output: str) -> dict[str, str]:
    """Refuse a complete or foreign non-empty ``output``, or a local one this process
    cannot write; returns its files by name."""
    if storage.is_local(output):
        _require_local_writable(output)
    files = storage.list_files(output) if storage.is_dir(output) else []
    names = {storage.relative(output, f.uri): f.uri for f in files}
    if COMPLETE_MARKER in names:
        raise FileExistsError(f"--output {output} already holds a complete artifact; "
                              "choose a new folder")
    if names and STARTED_MARKER not in names:
        raise FileExistsError(f"--output {output} exists and is not empty; choose a new folder")
    return names


def begin(output: str, keep: tuple[str, ...] = ()) -> None:
    """Claim ``output``: refuse a complete or foreign non-empty folder, clear a partial
    one left by an earlier attempt (except paths under ``keep``), mark it started."""
    names = check_writable(output)
    stale = [uri for name, uri in names.items()
             if name != STARTED_MARKER and not name.startswith(tuple(f"{k}/" for k in keep))]
    if stale:
        log.warning("clearing %d files of an unfinished earlier attempt in %s", len(stale),
                    output)
    for uri in stale:
        storage.delete(uri)
    storage.write_text(storage.join(output, STARTED_MARKER), "")


def finish(output: str) -> None:
    storage.write_text(storage.join(output, COMPLETE_MARKER), "")


def is_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, COMPLETE_MARKER))


def require_complete(folder: str, producer: str) -> None:
    """Refuse a folder whose writer did not finish."""
    if not is_complete(folder):
        raise FileNotFoundError(f"{folder} is not a complete artifact (no {COMPLETE_MARKER}); "
                                f"re-run {producer}")


@contextlib.contextmanager
def local_output(output: str, keep: tuple[str, ...] = ()) -> Iterator[str]:
    """A local folder to write the artifact ``output`` into: ``output`` itself when local,
    else a scratch folder uploaded at the end (for libraries that only write locally).
    The completion marker is written last, only if the body succeeds."""
    begin(output, keep)
    if storage.is_local(output):
        yield output
    else:
        with tempfile.TemporaryDirectory(prefix="output-") as scratch:
            yield scratch
            storage.copy_tree(scratch, output)
    finish(output)


def content_sha256(folder: str, exclude: tuple[str, ...] = ()) -> str:
    """A hash of an artifact's files (relative paths and bytes), markers and ``exclude``d
    names left out: equal for byte-identical artifacts wherever they are stored."""
    digest = hashlib.sha256()
    skip = {STARTED_MARKER, COMPLETE_MARKER, *exclude}
    for info in storage.list_files(folder):
        name = storage.relative(folder, info.uri)
        if name not in skip:
            digest.update(f"{name}\n{info.size}\n".encode())
            digest.update(storage.read_bytes(info.uri))
    return digest.hexdigest()
