"""A run that cannot finish ends in one line naming the cause and the fix: exit code 1 for
a lost service or a full disk, 2 for an output it can never write (found before the
inspection pass). ``--verbose`` shows the traceback. Real processes throughout: the S3
server is killed with SIGKILL, the full and read-only disks are real tmpfs mounts in a
private mount namespace (``unshare -m``)."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests import s3_server
from tests.gcs_emulator import free_port

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


def _finetune(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", *args]


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _can_mount() -> bool:
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"],
                           capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and tmpfs mounts")


def _on_tmpfs(options: str, target: Path, command: list[str]) -> subprocess.CompletedProcess:
    """``command`` with a fresh tmpfs mounted at ``target`` (seen by it alone)."""
    target.mkdir(parents=True, exist_ok=True)
    script = f'mount -t tmpfs -o {options} none "$0" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, str(target), *command],
                          capture_output=True, text=True, env=ENV, timeout=600)


def _start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto server did not start")


def test_s3_lost_mid_run_is_one_line_and_leaves_no_complete_artifact(demo_dir, tmp_path):
    import boto3

    server, endpoint = _start_moto()
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="k", aws_secret_access_key="s")
        client.create_bucket(Bucket="photos")
        for path in sorted(p for p in demo_dir.rglob("*") if p.is_file()):
            client.upload_file(str(path), "photos", f"images/{path.relative_to(demo_dir)}")
        env = {**ENV, **s3_server.CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint}
        step = subprocess.Popen(_finetune("prepare-data", "--source", "s3://photos/images",
                                          "--output", str(tmp_path / "out")),
                                stderr=subprocess.PIPE, text=True, env=env)
        seen = []
        for line in step.stderr:
            seen.append(line)
            if "listed 60 files" in line:
                server.send_signal(signal.SIGKILL)  # the store dies once the files are listed
                break
        stderr = "".join(seen) + step.stderr.read()
        step.wait(timeout=300)
    finally:
        server.kill()
        server.wait()
    assert step.returncode == 1, stderr
    assert "Traceback" not in stderr
    [error] = _errors(stderr)
    assert f"lost the S3 endpoint {endpoint}" in error and "then re-run" in error
    assert not (tmp_path / "out" / "_SUCCESS").exists()


@needs_mounts
def test_a_full_disk_is_one_line_and_leaves_no_complete_artifact(demo_dir, tmp_path):
    disk = tmp_path / "small-disk"
    result = _on_tmpfs("size=16k", disk, _finetune(
        "prepare-data", "--source", str(demo_dir), "--output", str(disk / "examples")))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [error] = _errors(result.stderr)
    assert "no space left on the device; free space or write to a larger disk" in error


@needs_mounts
def test_a_read_only_output_is_refused_before_the_inspection_pass(demo_dir, tmp_path):
    disk = tmp_path / "read-only"
    command = ["prepare-data", "--source", str(demo_dir), "--output", str(disk / "examples")]
    result = _on_tmpfs("ro", disk, _finetune(*command))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "listed 60 files" in lines[-2]  # nothing ran between the listing and the refusal
    assert lines[-1] == (f"error: --output {disk / 'examples'}: {disk} is on a read-only file "
                         "system; choose a writable folder")
    verbose = _on_tmpfs("ro", disk, _finetune("--verbose", *command))
    assert "Traceback" in verbose.stderr and "PermissionError" in verbose.stderr
