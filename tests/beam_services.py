"""Beam's own portable services on loopback: the local job service (the Job API that
Flink's and Spark's job servers also speak) and an SDK worker pool that starts each SDK
worker as its own ``python`` process (the EXTERNAL environment a Flink or Spark cluster on
Kubernetes gives its task managers as a sidecar)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.mlflow_server import _free_port, stop

REPO = Path(__file__).resolve().parents[1]


def _start(module: str, port_flag: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO),  # the workers import components/
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen([sys.executable, "-m", module, f"{port_flag}={port}"],
                               cwd=REPO, env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{module} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"{module} not listening after 60 s: {log.read_text()[-2000:]}")


class PortableBeam:
    """Both services, started in ``folder``; ``args`` are a step's Beam arguments for
    them with ``workers`` SDK worker processes."""

    def __init__(self, folder: Path, workers: int = 2):
        self.pool_log, self.job_log = folder / "worker-pool.log", folder / "job-service.log"
        self.job, job_port = _start("apache_beam.runners.portability.local_job_service_main",
                                    "--port", self.job_log)
        self.pool, pool_port = _start("apache_beam.runners.worker.worker_pool_main",
                                      "--service_port", self.pool_log)
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
        stop(self.pool)
        stop(self.job)
