"""Turn a source (class-per-folder tree or ``path,label`` CSV, local or gs://) into inputs."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
from dataclasses import dataclass

from components.common import storage
from components.common.errors import ConfigError


@dataclass(frozen=True)
class SourceFile:
    uri: str
    label: str
    size: int
    md5: str = ""
    skip_reason: str = ""


def _relative_parts(root: str, uri: str) -> list[str]:
    return uri[len(root.rstrip("/")) + 1 :].replace("\\", "/").split("/")


def _from_tree(root: str) -> list[SourceFile]:
    files = []
    for info in storage.list_files(root, with_md5=True):
        parts = _relative_parts(root, info.uri)
        reason = ""
        if any(p.startswith(".") for p in parts):
            reason = "hidden file"
        elif len(parts) < 2:
            reason = "not inside a class folder"
        files.append(
            SourceFile(info.uri, parts[0] if len(parts) > 1 else "", info.size, info.md5, reason)
        )
    return files


def _from_csv(csv_uri: str) -> list[SourceFile]:
    text = storage.read_text(csv_uri)
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
        raise ConfigError(
            f"{csv_uri}: the CSV needs a header with columns 'path,label' "
            f"(found {reader.fieldnames})"
        )
    base = posixpath.dirname(csv_uri) if storage.is_gcs(csv_uri) else os.path.dirname(csv_uri)
    files = []
    for row in reader:
        path = (row["path"] or "").strip()
        label = (row["label"] or "").strip()
        if not storage.is_gcs(path) and not path.startswith("/"):
            path = storage.join(base, path)
        if not label:
            files.append(SourceFile(path, "", 0, skip_reason="empty label in the CSV"))
        elif not storage.exists(path):
            files.append(SourceFile(path, label, 0, skip_reason="listed in the CSV but missing"))
        else:
            data = storage.read_bytes(path)
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            files.append(SourceFile(path, label, len(data), md5))
    return files


def list_source(source: str) -> list[SourceFile]:
    """Every file of the source, each with its label, or a skip reason for listing-level faults."""
    if source.lower().endswith(".csv"):
        if not storage.exists(source):
            raise ConfigError(f"--source {source}: the CSV does not exist")
        files = _from_csv(source)
    else:
        try:
            is_dir = storage.is_dir(source)
        except Exception as err:  # noqa: BLE001 - any client failure becomes one clear line
            raise ConfigError(
                f"--source {source}: cannot be listed ({err}); check the "
                "bucket name and this identity's storage.objects.list"
            ) from err
        if not is_dir:
            raise ConfigError(
                f"--source {source}: not a directory (or an empty bucket prefix); "
                "give a folder with one sub-folder per class, or a CSV"
            )
        files = _from_tree(source)
    if not files:
        raise ConfigError(f"--source {source}: no files found")
    return files


def fingerprint(files: list[SourceFile]) -> str:
    """sha256 of the sorted listing (URI, size, checksum, label): the data step's cache key."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.uri):
        digest.update(f"{f.uri}\t{f.size}\t{f.md5}\t{f.label}\n".encode())
    return digest.hexdigest()
