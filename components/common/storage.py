"""One file API for the whole project: local paths, ``gs://``, ``s3://`` and ``minio://``.

``s3://`` goes through boto3, so AWS S3 and S3-compatible stores (MinIO) work with the
standard variables: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for the endpoint and
the standard credential chain. ``minio://bucket/key`` (KFP's own scheme for MinIO) is
``s3://bucket/key`` at that endpoint. Any other ``scheme://`` is refused, never taken as
a local path. Every backend is a ``Backend``; ``SCHEMES`` is the one table of schemes, and
the errors and help texts that list them are made from it. The contract is the same on
every scheme (``tests/test_storage.py`` runs it on each).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from components.common.errors import ConfigError
from components.common.storage_backends import (
    GCS,
    S3,
    AlreadyExists,
    Entry,
    Local,
    StorageSetupError,
    StorageUnreachable,
    UnsafeFile,
)

__all__ = ["AlreadyExists", "StorageSetupError", "StorageUnreachable", "UnsafeFile",
           "UnsupportedURI", "FileInfo"]


@runtime_checkable
class Backend(Protocol):
    """One storage scheme: objects ``key`` in ``bucket`` (a local path and no bucket for
    ``Local``). ``write_bytes`` with ``create_only`` raises ``AlreadyExists`` when the
    object exists (the compare-and-swap the registry's aliases rely on); a missing object
    is ``FileNotFoundError``; unreachable storage is ``StorageUnreachable`` and missing
    credentials or endpoints ``StorageSetupError``, each naming the fix."""

    def read_bytes(self, bucket: str, key: str) -> bytes: ...
    def write_bytes(self, bucket: str, key: str, data: bytes, create_only: bool) -> None: ...
    def upload_file(self, local: str, bucket: str, key: str) -> None: ...
    def download_file(self, bucket: str, key: str, local: str) -> None: ...
    def exists(self, bucket: str, key: str) -> bool: ...
    def is_dir(self, bucket: str, key: str) -> bool: ...
    def stat(self, bucket: str, key: str) -> Entry: ...
    def list(self, bucket: str, key: str, with_checksum: bool) -> list[Entry]: ...
    def delete(self, bucket: str, key: str) -> None: ...


SCHEMES: dict[str, Backend] = {"gs": GCS(), "s3": S3(), "minio": S3("minio")}
_LOCAL = Local()
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class UnsupportedURI(ConfigError):
    """A URI whose scheme no backend serves."""


@dataclass(frozen=True)
class FileInfo:
    uri: str
    size: int
    checksum: str  # "sha256:<hex>" locally, "crc32c:<base64>" on GCS, "etag:<etag>" on S3
    unsafe: str = ""  # why a local file is not read (see storage_backends.unsafe_reason)


def forms(example: str = "BUCKET/PATH") -> str:
    """How a storage URI of each scheme is written, for help texts and errors."""
    return ", ".join(f"{scheme}://{example}" for scheme in SCHEMES)


def check_uri(uri: str, what: str = "URI") -> None:
    """Refuse ``uri`` unless it is a local path or a URI of a supported scheme."""
    _parse(uri, what)


def _parse(uri: str, what: str = "URI"):
    """``uri`` -> ``(backend, scheme prefix, bucket, key)``; local: ``(Local, "", "", path)``."""
    match = _SCHEME.match(uri)
    if not match:
        return _LOCAL, "", "", uri
    scheme = match.group(1).lower()
    if scheme not in SCHEMES or not uri[match.end():].startswith("//"):
        raise UnsupportedURI(
            f"{what} {uri!r}: unsupported scheme '{match.group(1)}:'; use a local path, "
            f"{forms()}")
    bucket, _, key = uri[match.end() + 2:].partition("/")
    if not bucket:
        raise UnsupportedURI(f"{what} {uri!r}: no bucket; expected {scheme}://BUCKET/PATH")
    return SCHEMES[scheme], f"{scheme}://", bucket, key


def is_local(uri: str) -> bool:
    return _parse(uri)[0] is _LOCAL


def absolute(uri: str) -> str:
    """``uri`` with a local path made absolute (a step in another process or folder finds
    it, and records say where it was); bucket URIs and "" as they are."""
    return os.path.abspath(uri) if uri and is_local(uri) else uri


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return str(Path(base, *parts))
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def reset_clients() -> None:
    """Forget cached clients, e.g. after the endpoint variables changed."""
    GCS.client.cache_clear()
    S3.client.cache_clear()


def read_bytes(uri: str) -> bytes:
    backend, _prefix, bucket, key = _parse(uri)
    return backend.read_bytes(bucket, key)


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes, create_only: bool = False) -> None:
    """Write a whole object atomically; with ``create_only`` raise ``AlreadyExists`` if it
    is there (a compare-and-swap on absence: exactly one of racing writers wins)."""
    backend, _prefix, bucket, key = _parse(uri)
    backend.write_bytes(bucket, key, data, create_only)


def write_text(uri: str, text: str, create_only: bool = False) -> None:
    write_bytes(uri, text.encode("utf-8"), create_only=create_only)


def upload_file(local: str, uri: str) -> None:
    """Copy a local file to ``uri`` as one atomic object write, without reading it whole."""
    backend, _prefix, bucket, key = _parse(uri)
    backend.upload_file(local, bucket, key)


def download_file(uri: str, local: str) -> None:
    backend, _prefix, bucket, key = _parse(uri)
    Path(local).parent.mkdir(parents=True, exist_ok=True)
    backend.download_file(bucket, key, local)


def exists(uri: str) -> bool:
    backend, _prefix, bucket, key = _parse(uri)
    return backend.exists(bucket, key)


def is_dir(uri: str) -> bool:
    """Local: a directory. Buckets: at least one object under ``uri/``."""
    backend, _prefix, bucket, key = _parse(uri)
    return backend.is_dir(bucket, key)


def stat(uri: str) -> FileInfo:
    """Size and checksum of one object (reads a local file to hash it)."""
    backend, prefix, bucket, key = _parse(uri)
    entry = backend.stat(bucket, key)
    return FileInfo(uri, entry.size, _checksum(backend, entry.checksum))


def _checksum(backend, value: str) -> str:
    return f"sha256:{value}" if backend is _LOCAL and value else value


def list_files(uri: str, with_checksum: bool = False,
               include_unsafe: bool = False) -> list[FileInfo]:
    """Every file below ``uri`` (recursive), sorted by URI. Bucket listings always carry
    a checksum; ``with_checksum`` reads local files to hash them. Local paths that are
    never read (FIFOs, devices, links to folders or out of ``uri``) are left out, or with
    ``include_unsafe`` listed with the reason in ``unsafe``."""
    backend, prefix, bucket, key = _parse(uri)
    infos = [FileInfo(f"{prefix}{bucket}/{e.key}" if prefix else e.key, e.size,
                      _checksum(backend, e.checksum), e.unsafe)
             for e in backend.list(bucket, key, with_checksum)
             if include_unsafe or not e.unsafe]
    return sorted(infos, key=lambda i: i.uri)


def relative(root: str, uri: str) -> str:
    """``uri`` below ``root`` as a ``/``-separated relative path."""
    return uri[len(root.rstrip("/")) + 1:].replace("\\", "/")


def read_jsonl(prefix: str) -> list[dict]:
    """The rows of every ``PREFIX*.jsonl`` file, e.g. those ``beam_work.WriteRows`` writes."""
    folder, stem = prefix.rsplit("/", 1)
    rows = []
    for info in list_files(folder):
        name = info.uri.rsplit("/", 1)[-1]
        if name.startswith(stem) and name.endswith(".jsonl"):
            rows += [json.loads(line) for line in read_text(info.uri).splitlines()]
    return rows


def delete(uri: str) -> None:
    backend, _prefix, bucket, key = _parse(uri)
    backend.delete(bucket, key)


def delete_tree(uri: str) -> None:
    """Delete every file below ``uri`` (locally the folders too; nothing if none)."""
    if is_local(uri):
        shutil.rmtree(uri, ignore_errors=not Path(uri).exists())
        return
    for info in list_files(uri) if is_dir(uri) else []:
        delete(info.uri)


def copy_tree(src: str, dst: str) -> None:
    """Copy every file below ``src`` to the same relative path below ``dst``, file by file."""
    for info in list_files(src):
        target = join(dst, relative(src, info.uri))
        if is_local(info.uri):
            upload_file(info.uri, target)
        elif is_local(target):
            download_file(info.uri, target)
        else:
            write_bytes(target, read_bytes(info.uri))


def sync_tree(src: str, dst: str) -> None:
    """Make the files below ``dst`` those below ``src``: copy each, delete what ``src`` lacks."""
    if is_dir(src):
        copy_tree(src, dst)
    wanted = {relative(src, f.uri) for f in list_files(src)} if is_dir(src) else set()
    for info in list_files(dst) if is_dir(dst) else []:
        if relative(dst, info.uri) not in wanted:
            delete(info.uri)


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local folder with the files below ``uri``: itself when local, else a download
    (for libraries that only read local files, such as TensorFlow for ``s3://``)."""
    if is_local(uri):
        yield uri
        return
    if not is_dir(uri):
        raise FileNotFoundError(f"no files under {uri}")
    with tempfile.TemporaryDirectory(prefix="download-") as scratch:
        copy_tree(uri, scratch)
        yield scratch
