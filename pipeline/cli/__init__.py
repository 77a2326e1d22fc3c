"""The ``finetune`` command: every pipeline step by hand, the registry, the local run, and
compile, submit and schedule for a cluster; one module per job."""

from pipeline.cli import cluster, local, registry, steps  # noqa: F401  (they add commands)
from pipeline.cli.base import main

__all__ = ["main"]
