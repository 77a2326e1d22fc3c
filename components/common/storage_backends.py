"""The three object stores behind ``storage``: local files, Cloud Storage and S3.

Each backend takes ``(bucket, key)`` (local: ``("", path)``) and has the same contract:
whole-object writes are atomic, ``create_only`` is a compare-and-swap on absence that
raises ``AlreadyExists``, a missing object raises ``FileNotFoundError``, and listings
carry a checksum the store always has (local sha256, GCS crc32c, S3 ETag).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from components.common.errors import ConfigError, RunFailed

S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


FILE_MODE = 0o666


def _read_umask() -> int:
    """The process's umask, read once at import (setting it back at once: before any
    thread of this process writes files)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _read_umask()


class AlreadyExists(Exception):
    """A create-only write found the object already there (GCS and S3: HTTP 412)."""


class StorageSetupError(ConfigError):
    """The store cannot be reached as configured; the message names the variable to set."""


class StorageUnreachable(RunFailed):
    """The storage service stopped answering (or never did)."""


@dataclass(frozen=True)
class Entry:
    key: str
    size: int
    checksum: str
    unsafe: str = ""  # why a local file is not read (a FIFO, a link out of the listing)


class UnsafeFile(OSError):
    """A local path that is not read: not a regular file, or a link that is not followed."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def unsafe_reason(path: str, root: str = "") -> str:
    """Why the local ``path`` is not read, or "": a dangling link, a link to a folder,
    a link out of ``root`` (when given), or no regular file (a FIFO, socket or device:
    reading one can block forever or never end)."""
    if os.path.islink(path):
        target = os.path.realpath(path)
        if not os.path.exists(target):
            return f"dangling symbolic link (to {os.readlink(path)})"
        if root and os.path.commonpath([target, os.path.realpath(root)]) != \
                os.path.realpath(root):
            return f"symbolic link to {target}, outside the source: not followed"
        if os.path.isdir(target):
            return ("symbolic link to a folder: not followed (copy the folder in, or list "
                    "its files in a CSV)")
    if not stat.S_ISREG(os.stat(path).st_mode):
        return "not a regular file (a FIFO, socket or device): not read"
    return ""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Local:
    """Temporary file + rename for atomic writes, an exclusive hard link for create-only."""

    def read_bytes(self, _bucket: str, path: str) -> bytes:
        return Path(path).read_bytes()

    def write_bytes(self, _bucket: str, path: str, data: bytes, create_only: bool) -> None:
        with self._temporary_beside(path) as (handle, tmp):
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            self._place(tmp, path, create_only)

    def upload_file(self, local: str, _bucket: str, path: str) -> None:
        with self._temporary_beside(path) as (handle, tmp), open(local, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                handle.write(chunk)
            handle.close()
            self._place(tmp, path, create_only=False)

    def download_file(self, _bucket: str, path: str, local: str) -> None:
        self.upload_file(path, "", local)

    @contextlib.contextmanager
    def _temporary_beside(self, path: str):
        """A temporary file beside ``path``, with the mode a plain ``open`` would give."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.fchmod(fd, FILE_MODE & ~UMASK)  # mkstemp's 0600 would hide artifacts from
        handle = os.fdopen(fd, "wb")  # a server running as another user (TF Serving)
        try:
            yield handle, tmp
        finally:
            handle.close()
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    def _place(tmp: str, path: str, create_only: bool) -> None:
        if not create_only:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError as err:
            raise AlreadyExists(path) from err

    def exists(self, _bucket: str, path: str) -> bool:
        return Path(path).exists()

    def is_dir(self, _bucket: str, path: str) -> bool:
        return Path(path).is_dir()

    def stat(self, _bucket: str, path: str) -> Entry:
        reason = unsafe_reason(path)
        if reason:
            raise UnsafeFile(path, reason)
        return Entry(path, Path(path).stat().st_size, sha256_file(path))

    def list(self, _bucket: str, path: str, with_checksum: bool) -> list[Entry]:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"not a directory: {path}")
        entries = []
        for dirpath, dirs, files in os.walk(path):  # links to folders are listed, not walked
            linked = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
            for name in files + linked:
                file = os.path.join(dirpath, name)
                try:
                    reason = unsafe_reason(file, path)
                    if reason:
                        entries.append(Entry(file, 0, "", reason))
                        continue
                    size = os.stat(file).st_size
                    checksum = sha256_file(file) if with_checksum else ""
                except FileNotFoundError:
                    continue  # removed while listing (another writer's temporary file)
                entries.append(Entry(file, size, checksum))
        return entries

    def delete(self, _bucket: str, path: str) -> None:
        Path(path).unlink()


class GCS:
    """google-cloud-storage with its default retries; ``if_generation_match=0`` for create-only."""

    @staticmethod
    @lru_cache(maxsize=1)
    def client():
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage

        try:
            return storage.Client()
        except DefaultCredentialsError as err:
            raise StorageSetupError(
                "gs:// needs Google credentials and none were found: on GKE give the pod's "
                "service account Workload Identity, elsewhere set "
                "GOOGLE_APPLICATION_CREDENTIALS to a key file or run `gcloud auth "
                "application-default login`") from err

    def _blob(self, bucket: str, key: str):
        return self.client().bucket(bucket).blob(key)

    def read_bytes(self, bucket: str, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(bucket, key).download_as_bytes()
        except NotFound as err:
            raise FileNotFoundError(f"no such object: gs://{bucket}/{key}") from err

    def write_bytes(self, bucket: str, key: str, data: bytes, create_only: bool) -> None:
        from google.api_core.exceptions import PreconditionFailed

        kwargs = {"if_generation_match": 0} if create_only else {}
        try:
            self._blob(bucket, key).upload_from_string(data, **kwargs)
        except PreconditionFailed as err:
            raise AlreadyExists(f"gs://{bucket}/{key}") from err

    def upload_file(self, local: str, bucket: str, key: str) -> None:
        self._blob(bucket, key).upload_from_filename(local)

    def download_file(self, bucket: str, key: str, local: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._blob(bucket, key).download_to_filename(local)
        except NotFound as err:
            raise FileNotFoundError(f"no such object: gs://{bucket}/{key}") from err

    def exists(self, bucket: str, key: str) -> bool:
        return self._blob(bucket, key).exists()

    def is_dir(self, bucket: str, key: str) -> bool:
        prefix = key.rstrip("/") + "/" if key else ""
        return any(True for _ in self.client().list_blobs(bucket, prefix=prefix, max_results=1))

    def stat(self, bucket: str, key: str) -> Entry:
        blob = self.client().bucket(bucket).get_blob(key)
        if blob is None:
            raise FileNotFoundError(f"no such object: gs://{bucket}/{key}")
        return Entry(key, int(blob.size or 0), f"crc32c:{blob.crc32c}")

    def list(self, bucket: str, key: str, with_checksum: bool) -> list[Entry]:
        prefix = key.rstrip("/") + "/" if key else ""
        return [Entry(b.name, int(b.size or 0), f"crc32c:{b.crc32c}")
                for b in self.client().list_blobs(bucket, prefix=prefix)
                if not b.name.endswith("/")]

    def delete(self, bucket: str, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._blob(bucket, key).delete()
        except NotFound as err:
            raise FileNotFoundError(f"no such object: gs://{bucket}/{key}") from err


def s3_endpoint() -> str:
    return next((os.environ[v] for v in S3_ENDPOINT_VARIABLES if os.environ.get(v)), "")


def _etag(value: str) -> str:
    return "etag:" + value.strip('"')


class S3:
    """boto3 (endpoint and credentials from the standard AWS variables and chain);
    ``If-None-Match: *`` for create-only. ETags of multipart uploads are not MD5s of the
    content, but they change whenever the content does, which is all a listing needs."""

    def __init__(self, scheme: str = "s3"):
        self.scheme = scheme

    def _client(self):
        if self.scheme == "minio" and not s3_endpoint():
            raise StorageSetupError("minio:// URIs need the MinIO endpoint; set "
                                    "AWS_ENDPOINT_URL_S3 (e.g. http://minio-service.kubeflow:9000)")
        return self.client()

    @staticmethod
    @lru_cache(maxsize=1)
    def client():
        import boto3
        from botocore.config import Config

        # MinIO and most S3-compatible servers want path-style addressing.
        addressing = {"addressing_style": "path"} if s3_endpoint() else {}
        config = Config(s3=addressing, retries={"mode": "standard"})
        return boto3.session.Session().client("s3", config=config)

    @contextlib.contextmanager
    def _errors(self, bucket: str, key: str):
        from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        uri = f"{self.scheme}://{bucket}/{key}"
        try:
            yield
        except NoCredentialsError as err:
            raise StorageSetupError(
                f"{uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or give the pod an IAM role)") from err
        except (BotoConnectionError, HTTPClientError) as err:
            raise StorageUnreachable(
                f"{uri}: lost the S3 endpoint {s3_endpoint() or 'of AWS'} "
                f"({type(err).__name__}); check that it is up and that AWS_ENDPOINT_URL_S3 "
                "names it (e.g. http://minio-service.kubeflow:9000), then re-run") from err
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(f"no such object: {uri}") from err
            if code == "NoSuchBucket":
                raise FileNotFoundError(f"no such bucket: {self.scheme}://{bucket}") from err
            if code in ("PreconditionFailed", "412"):
                raise AlreadyExists(uri) from err
            if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise PermissionError(f"{uri}: {code}; check the S3 credentials and that "
                                      "they may use this bucket (without s3:ListBucket a "
                                      "missing object also reads as 403)") from err
            raise

    def read_bytes(self, bucket: str, key: str) -> bytes:
        with self._errors(bucket, key):
            return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_bytes(self, bucket: str, key: str, data: bytes, create_only: bool) -> None:
        kwargs = {"IfNoneMatch": "*"} if create_only else {}
        with self._errors(bucket, key):
            self._client().put_object(Bucket=bucket, Key=key, Body=data, **kwargs)

    def upload_file(self, local: str, bucket: str, key: str) -> None:
        with self._errors(bucket, key):
            self._client().upload_file(local, bucket, key)

    def download_file(self, bucket: str, key: str, local: str) -> None:
        with self._errors(bucket, key):
            self._client().download_file(bucket, key, local)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.stat(bucket, key)
        except FileNotFoundError:
            return False
        return True

    def is_dir(self, bucket: str, key: str) -> bool:
        prefix = key.rstrip("/") + "/" if key else ""
        with self._errors(bucket, key):
            page = self._client().list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        return page.get("KeyCount", 0) > 0

    def stat(self, bucket: str, key: str) -> Entry:
        with self._errors(bucket, key):
            head = self._client().head_object(Bucket=bucket, Key=key)
        return Entry(key, int(head["ContentLength"]), _etag(head['ETag']))

    def list(self, bucket: str, key: str, with_checksum: bool) -> list[Entry]:
        prefix = key.rstrip("/") + "/" if key else ""
        entries = []
        with self._errors(bucket, key):
            for page in self._client().get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix=prefix):
                entries += [Entry(o["Key"], int(o["Size"]), _etag(o['ETag']))
                            for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        return entries

    def delete(self, bucket: str, key: str) -> None:
        with self._errors(bucket, key):
            self._client().delete_object(Bucket=bucket, Key=key)
