"""Processes of this machine standing in for a cluster's training pods or replicas (the
stand-ins of the Kubernetes and Vertex AI APIs start them): each runs the command the job
asked for, with the variables the platform would give it, and keeps its output lines with
the time each came."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from components.train.workers import free_ports

ROOT = Path(__file__).resolve().parents[1]
# What a pod has of its own besides the job's variables (an image's PATH, HOME, ...): not
# this test process's credentials or endpoints, which a real pod would not have.
BASE_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL",
            "KERAS_BACKEND")


class Node:
    def __init__(self, command: list[str], env: dict[str, str]):
        # The image's `python` is this interpreter here.
        command = [sys.executable if command[0] == "python" else command[0], *command[1:]]
        self.lines: list[tuple[str, str]] = []  # (RFC 3339 time, line)
        own = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        self.process = subprocess.Popen(command, env={**own, **env}, cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.lines.append((stamp, line.rstrip("\n")))

    @property
    def phase(self) -> str:
        code = self.process.poll()
        return "Running" if code is None else "Succeeded" if code == 0 else "Failed"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join(timeout=5)


def loopback_tf_configs(kinds: list[str]) -> list[dict]:
    """One TF_CONFIG per process of ``kinds`` (each ``chief`` or ``worker``, in rank
    order), every address a free port of 127.0.0.1."""
    ports = free_ports(len(kinds))
    cluster: dict[str, list[str]] = {}
    tasks = []
    for kind, port in zip(kinds, ports, strict=True):
        tasks.append({"type": kind, "index": len(cluster.get(kind, []))})
        cluster.setdefault(kind, []).append(f"127.0.0.1:{port}")
    return [{"cluster": cluster, "task": task} for task in tasks]
