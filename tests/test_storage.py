"""One storage contract on local disk, a real GCS emulator and a real S3 server (moto)."""

import base64
import hashlib
import threading

import google_crc32c
import pytest

from components.common import storage
from components.common.storage_backends import Local
from tests.conformance import assert_implements


def test_write_read_exists_list_delete(any_root):
    a = storage.join(any_root, "dir/a.txt")
    b = storage.join(any_root, "dir/sub/b.bin")
    storage.write_text(a, "hello")
    storage.write_bytes(b, b"\x00\x01")
    assert storage.read_text(a) == "hello"
    assert storage.exists(a) and storage.is_dir(storage.join(any_root, "dir"))
    assert not storage.exists(storage.join(any_root, "dir/none"))
    assert not storage.is_dir(storage.join(any_root, "nothing"))
    infos = storage.list_files(storage.join(any_root, "dir"), with_checksum=True)
    assert [i.uri for i in infos] == [a, b]
    assert [i.size for i in infos] == [5, 2]
    assert storage.stat(a) == infos[0]
    storage.delete(a)
    assert not storage.exists(a)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(a)
    with pytest.raises(FileNotFoundError):
        storage.stat(a)


def _expected_checksum(root: str, data: bytes) -> str:
    if root.startswith("gs://"):
        return "crc32c:" + base64.b64encode(google_crc32c.Checksum(data).digest()).decode()
    if root.startswith("s3://"):
        return "etag:" + hashlib.md5(data, usedforsecurity=False).hexdigest()  # single PUT
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_listings_carry_the_stores_own_checksum(any_root):
    uri = storage.join(any_root, "f")
    storage.write_bytes(uri, b"same bytes")
    [info] = storage.list_files(any_root, with_checksum=True)
    assert info.checksum == _expected_checksum(any_root, b"same bytes")
    storage.write_bytes(uri, b"other bytes")
    assert storage.list_files(any_root, with_checksum=True)[0].checksum != info.checksum


def test_create_only_refuses_an_existing_object(any_root):
    uri = storage.join(any_root, "pointer")
    storage.write_text(uri, "first", create_only=True)
    with pytest.raises(storage.AlreadyExists):
        storage.write_text(uri, "second", create_only=True)
    assert storage.read_text(uri) == "first"


def test_racing_create_only_has_exactly_one_winner(any_root):
    uri = storage.join(any_root, "race")
    start = threading.Barrier(8)
    winners = []

    def attempt(i):
        start.wait()
        try:
            storage.write_text(uri, f"writer {i}", create_only=True)
            winners.append(i)
        except storage.AlreadyExists:
            pass

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    assert storage.read_text(uri) == f"writer {winners[0]}"


def test_upload_and_download_whole_files(any_root, tmp_path):
    local = tmp_path / "big.bin"
    local.write_bytes(bytes(range(256)) * 40_000)
    uri = storage.join(any_root, "big.bin")
    storage.upload_file(str(local), uri)
    storage.download_file(uri, str(tmp_path / "back" / "big.bin"))
    assert (tmp_path / "back" / "big.bin").read_bytes() == local.read_bytes()


def test_copy_sync_and_local_copy_between_backends(any_root, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.txt").write_text("x")
    (src / "y.txt").write_text("y")
    remote = storage.join(any_root, "copy")
    storage.copy_tree(str(src), remote)
    with storage.local_copy(remote) as folder:
        assert sorted(storage.relative(folder, f.uri) for f in storage.list_files(folder)) == \
            ["a/x.txt", "y.txt"]
    (src / "y.txt").unlink()
    storage.sync_tree(str(src), remote)
    assert [storage.relative(remote, f.uri) for f in storage.list_files(remote)] == ["a/x.txt"]


def test_emulator_answers_412_like_gcs(bucket, gcs):
    """The fixture's enforcement: a failed ifGenerationMatch is HTTP 412, as on GCS."""
    from google.api_core.exceptions import PreconditionFailed

    blob = gcs.bucket(bucket[5:]).blob("obj")
    blob.upload_from_string(b"v1", if_generation_match=0)
    with pytest.raises(PreconditionFailed) as err:
        blob.upload_from_string(b"v2", if_generation_match=0)
    assert err.value.code == 412
    blob.reload()
    blob.upload_from_string(b"v3", if_generation_match=blob.generation)


def test_s3_server_answers_412_to_if_none_match(s3_bucket, s3_endpoint):
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=s3_bucket[5:], Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=s3_bucket[5:], Key="k", Body=b"2", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_minio_scheme_is_s3_at_the_configured_endpoint(s3_bucket):
    storage.write_text(f"{s3_bucket}/a/b.txt", "via s3")
    minio = "minio://" + s3_bucket[5:]
    assert storage.read_text(f"{minio}/a/b.txt") == "via s3"
    assert [f.uri for f in storage.list_files(minio)] == [f"{minio}/a/b.txt"]


def test_every_scheme_is_a_backend_and_the_errors_list_every_scheme():
    for backend in [Local(), *storage.SCHEMES.values()]:
        assert_implements(backend, storage.Backend)
    with pytest.raises(storage.UnsupportedURI) as err:
        storage.check_uri("hdfs://cluster/data")
    assert all(f"{scheme}://BUCKET/PATH" in str(err.value) for scheme in storage.SCHEMES)


@pytest.mark.parametrize("uri", ["hdfs://cluster/data", "gcs://bucket/x", "mlflow+http://h:5000",
                                 "file:///tmp/x", "s3:/bucket/key", "s3://"])
def test_other_schemes_are_refused_never_local_paths(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(storage.UnsupportedURI) as err:
        storage.write_text(storage.join(uri, "x"), "data")
    message = str(err.value)
    assert "\n" not in message and repr(uri) in message
    assert "s3://" in message or "no bucket" in message
    assert list(tmp_path.iterdir()) == []


def test_minio_without_an_endpoint_names_the_variable(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(storage.StorageSetupError, match="set AWS_ENDPOINT_URL_S3"):
        storage.read_text("minio://mlpipeline/x")


def test_missing_s3_credentials_are_one_line_naming_the_variables(s3_bucket, monkeypatch,
                                                                   tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    storage.reset_clients()
    try:
        with pytest.raises(storage.StorageSetupError) as err:
            storage.write_text(f"{s3_bucket}/x", "data")
    finally:
        monkeypatch.undo()
        storage.reset_clients()
    assert "\n" not in str(err.value) and "AWS_ACCESS_KEY_ID" in str(err.value)
    assert not storage.exists(f"{s3_bucket}/x")


def test_missing_google_credentials_are_one_line_naming_the_fix(monkeypatch, tmp_path):
    """No emulator, no key file, no gcloud login: one line, not DefaultCredentialsError's
    traceback. The metadata server check stays on this machine (NO_GCE_CHECK)."""
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    storage.reset_clients()
    try:
        with pytest.raises(storage.StorageSetupError) as err:
            storage.read_text("gs://some-bucket/x")
    finally:
        monkeypatch.undo()
        storage.reset_clients()
    assert "\n" not in str(err.value) and "GOOGLE_APPLICATION_CREDENTIALS" in str(err.value)


def test_an_unreachable_endpoint_names_the_variable(monkeypatch):
    from tests.gcs_emulator import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage.reset_clients()
    try:
        with pytest.raises(storage.StorageUnreachable, match="AWS_ENDPOINT_URL_S3"):
            storage.read_text("s3://bucket/x")
    finally:
        monkeypatch.undo()
        storage.reset_clients()


def test_local_files_get_the_mode_the_umask_gives_not_mkstemps_0600(tmp_path):
    """A TF Serving process running as another user must read a local registry: files
    written whole (create-only or not, uploads too) are 0644 under the usual umask 022."""
    import os
    import subprocess
    import sys

    code = ("import os, sys; os.umask(0o022); from components.common import storage; "
            "d = sys.argv[1]; storage.write_text(d + '/a.txt', 'a'); "
            "storage.write_text(d + '/b.txt', 'b', create_only=True); "
            "storage.upload_file(d + '/a.txt', d + '/c.txt')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    for name in ("a.txt", "b.txt", "c.txt"):
        assert oct(os.stat(tmp_path / name).st_mode & 0o777) == oct(0o644), name
