"""One file API for local paths and ``gs://`` URIs.

Local paths use the file system; ``gs://bucket/key`` goes through google-cloud-storage
with its default retry policy. Writes of whole objects are atomic on both backends
(temporary file + rename locally; single-request upload on GCS), and
``create_only=True`` is a compare-and-swap on absence: GCS ``if_generation_match=0``,
an exclusive hard link locally.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

GCS_PREFIX = "gs://"


class AlreadyExists(Exception):
    """A create-only write found the object already there (GCS: HTTP 412)."""


@dataclass(frozen=True)
class FileInfo:
    uri: str
    size: int
    md5: str


def is_gcs(uri: str) -> bool:
    return uri.startswith(GCS_PREFIX)


def split_gcs(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    rest = uri[len(GCS_PREFIX) :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"not a gs:// URI with a bucket: {uri!r}; expected gs://BUCKET/PATH")
    return bucket, key


def join(base: str, *parts: str) -> str:
    if is_gcs(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


@lru_cache(maxsize=1)
def _client():
    from google.cloud import storage

    return storage.Client()


def _blob(uri: str):
    bucket, key = split_gcs(uri)
    return _client().bucket(bucket).blob(key)


def read_bytes(uri: str) -> bytes:
    if is_gcs(uri):
        from google.api_core.exceptions import NotFound

        try:
            return _blob(uri).download_as_bytes()
        except NotFound as err:
            raise FileNotFoundError(f"no such object: {uri}") from err
    return Path(uri).read_bytes()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes, create_only: bool = False) -> None:
    """Write a whole object atomically; with ``create_only`` fail if it exists."""
    if is_gcs(uri):
        from google.api_core.exceptions import PreconditionFailed

        blob = _blob(uri)
        kwargs = {"if_generation_match": 0} if create_only else {}
        try:
            blob.upload_from_string(data, **kwargs)
        except PreconditionFailed as err:
            raise AlreadyExists(uri) from err
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if create_only:
            try:
                os.link(tmp, path)
            except FileExistsError as err:
                raise AlreadyExists(uri) from err
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(uri: str, text: str, create_only: bool = False) -> None:
    write_bytes(uri, text.encode("utf-8"), create_only=create_only)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists()
    return Path(uri).exists()


def is_dir(uri: str) -> bool:
    """Local: a directory. GCS: at least one object under ``uri/``."""
    if is_gcs(uri):
        bucket, key = split_gcs(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        return any(True for _ in _client().list_blobs(bucket, prefix=prefix, max_results=1))
    return Path(uri).is_dir()


def list_files(uri: str, with_md5: bool = False) -> list[FileInfo]:
    """Every file below ``uri`` (recursive), sorted by URI.

    ``with_md5`` reads local files to checksum them; GCS listings carry the MD5.
    """
    if is_gcs(uri):
        bucket, key = split_gcs(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        infos = [
            FileInfo(f"{GCS_PREFIX}{bucket}/{b.name}", int(b.size or 0), b.md5_hash or "")
            for b in _client().list_blobs(bucket, prefix=prefix)
            if not b.name.endswith("/")
        ]
        return sorted(infos, key=lambda i: i.uri)
    root = Path(uri)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {uri}")
    infos = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            try:
                size = path.stat().st_size
                md5 = _file_md5(path) if with_md5 else ""
            except FileNotFoundError:
                continue  # removed while listing (another writer's temporary file)
            infos.append(FileInfo(str(path), size, md5))
    return sorted(infos, key=lambda i: i.uri)


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def read_jsonl(prefix: str) -> list[dict]:
    """The rows of every ``PREFIX*.jsonl`` file, e.g. the shards Beam's WriteToText writes."""
    folder, stem = prefix.rsplit("/", 1)
    rows = []
    for info in list_files(folder):
        name = info.uri.rsplit("/", 1)[-1]
        if name.startswith(stem) and name.endswith(".jsonl"):
            rows += [json.loads(line) for line in read_text(info.uri).splitlines()]
    return rows


def delete(uri: str) -> None:
    if is_gcs(uri):
        _blob(uri).delete()
    else:
        Path(uri).unlink()


def copy_tree(src: str, dst: str) -> None:
    """Copy every file below ``src`` to the same relative path below ``dst``."""
    if not is_gcs(src) and not is_gcs(dst):
        shutil.copytree(src, dst, dirs_exist_ok=True)
        return
    src_root = src.rstrip("/")
    for info in list_files(src):
        write_bytes(join(dst, info.uri[len(src_root) + 1 :]), read_bytes(info.uri))
