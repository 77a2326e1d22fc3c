"""Turn a source (class-per-folder tree or ``path,label`` CSV, any storage scheme) into inputs."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
import unicodedata
from dataclasses import dataclass

from components.common import storage
from components.common.errors import ConfigError


@dataclass(frozen=True)
class SourceFile:
    uri: str
    label: str
    size: int
    checksum: str = ""
    skip_reason: str = ""


def _from_tree(root: str) -> list[SourceFile]:
    files = []
    for info in storage.list_files(root, with_checksum=True, include_unsafe=True):
        parts = storage.relative(root, info.uri).split("/")
        reason = info.unsafe or ("hidden file" if any(p.startswith(".") for p in parts)
                                 else "not inside a class folder" if len(parts) < 2 else "")
        files.append(
            SourceFile(info.uri, parts[0] if len(parts) > 1 else "", info.size, info.checksum,
                       reason)
        )
    return files


def _from_csv(csv_uri: str) -> list[SourceFile]:
    try:
        text = storage.read_bytes(csv_uri).decode("utf-8-sig")  # a BOM is not a column name
    except UnicodeDecodeError as err:
        raise ConfigError(f"--source {csv_uri}: not UTF-8 text ({err}); save the CSV as "
                          "UTF-8") from err
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
        raise ConfigError(
            f"{csv_uri}: the CSV needs a header with columns 'path,label' "
            f"(found {reader.fieldnames})"
        )
    base = (os.path.dirname if storage.is_local(csv_uri) else posixpath.dirname)(csv_uri)
    files = []
    for row in reader:
        path = (row["path"] or "").strip()
        label = (row["label"] or "").strip()
        try:
            relative_path = storage.is_local(path) and not path.startswith("/")
        except storage.UnsupportedURI as err:
            files.append(SourceFile(path, label, 0, skip_reason=str(err)))
            continue
        if relative_path:
            path = storage.join(base, path)
        if not label:
            files.append(SourceFile(path, "", 0, skip_reason="empty label in the CSV"))
            continue
        try:
            info = storage.stat(path)
        except FileNotFoundError:
            files.append(SourceFile(path, label, 0, skip_reason="listed in the CSV but missing"))
            continue
        except storage.UnsafeFile as err:
            files.append(SourceFile(path, label, 0, skip_reason=err.reason))
            continue
        files.append(SourceFile(path, label, info.size, info.checksum))
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
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - any client failure becomes one clear line
            raise ConfigError(
                f"--source {source}: cannot be listed ({err}); check the "
                "bucket name and that this identity may list it"
            ) from err
        if not is_dir:
            raise ConfigError(
                f"--source {source}: not a directory (or an empty bucket prefix); "
                "give a folder with one sub-folder per class, or a CSV"
            )
        files = _from_tree(source)
    if not files:
        raise ConfigError(f"--source {source}: no files found")
    check_labels(files)
    return files


def check_labels(files: list[SourceFile]) -> None:
    """Refuse class names that cannot round-trip through ``labels.txt`` (one name a line):
    a line break or another control character would split or hide a class."""
    for label in sorted({f.label for f in files}):
        if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in label):
            count = sum(f.label == label for f in files)
            raise ConfigError(f"class {label!r} ({count} files): a class name with a line break "
                              "or control character cannot be stored in labels.txt; rename "
                              "the class folder (or the CSV's label)")


def fingerprint(files: list[SourceFile]) -> str:
    """sha256 of the sorted listing (URI, size, checksum, label): the data step's cache key."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.uri):
        digest.update(f"{f.uri}\t{f.size}\t{f.checksum}\t{f.label}\n".encode())
    return digest.hexdigest()
