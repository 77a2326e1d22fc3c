"""Beam's own portable services on loopback: the local job service (the Job API that
Flink's and Spark's job servers also speak) and an SDK worker pool that starts each SDK
worker as its own ``python`` process (the EXTERNAL environment a Flink or Spark cluster on
Kubernetes gives its task managers as a sidecar), here or in our image."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pipeline.container import podman_env
from tests.mlflow_server import _free_port, stop

REPO = Path(__file__).resolve().parents[1]
POOL = "apache_beam.runners.worker.worker_pool_main"


def _start(command: list[str], port: int, log: Path,
           env: dict | None = None) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:3]} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"{command[:3]} not listening after 60 s: {log.read_text()[-2000:]}")


def _module(module: str, port_flag: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO),  # the workers import components/
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return _start([sys.executable, "-m", module, f"{port_flag}={port}"], port, log, env), port


def _pool_in_image(image: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """The SDK worker pool in our image, as a Flink or Spark task manager's sidecar runs
    it: nothing of this machine's files mounted, on the host's network, ``env`` set."""
    port = _free_port()
    command = ["podman", "run", "--rm", "--name", f"beam-pool-{port}", "--network", "host",
               *(f"--env={name}={value}" for name, value in env.items()),
               "--entrypoint", "python3", image, "-m", POOL, f"--service_port={port}"]
    return _start(command, port, log, podman_env()), port


class PortableBeam:
    """Both services, started in ``folder``; ``args`` are a step's Beam arguments for
    them with ``workers`` SDK worker processes."""

    def __init__(self, folder: Path, workers: int = 2, image: str = "",
                 image_env: dict[str, str] | None = None):
        self.pool_log, self.job_log = folder / "worker-pool.log", folder / "job-service.log"
        self.job, job_port = _module("apache_beam.runners.portability.local_job_service_main",
                                     "--port", self.job_log)
        self.pool, pool_port = _pool_in_image(image, image_env or {}, self.pool_log) \
            if image else _module(POOL, "--service_port", self.pool_log)
        self.container = f"beam-pool-{pool_port}" if image else ""
        self.args = ("--runner=PortableRunner", f"--job_endpoint=127.0.0.1:{job_port}",
                     "--environment_type=EXTERNAL",
                     f"--environment_config=127.0.0.1:{pool_port}",
                     f"--direct_num_workers={workers}")

    def workers_started(self) -> int:
        return self.pool_log.read_text().count("Starting worker with command")

    def jobs_done(self) -> int:
        """The jobs the job service ran to completion (each Beam pipeline is one)."""
        return self.job_log.read_text().count("with state DONE.")

    def stop(self) -> None:
        if self.container:
            subprocess.run(["podman", "rm", "--force", self.container], capture_output=True,
                           env=podman_env())
        stop(self.pool)
        stop(self.job)
