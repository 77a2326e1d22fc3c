"""Beam pipelines that fail with their worker's own one-line error.

Beam's portable runner (FnApiRunner with worker threads) wraps whatever a worker raised
in a ``RuntimeError`` that holds only the traceback's text: a lost storage endpoint or a
full disk would reach the user as hundreds of lines.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import re
import sys
import threading

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from components.common.errors import ConfigError, RunFailed

_WORKER_ERROR = re.compile(r"^(?P<type>[\w.]+): (?P<message>.*?)(?: \[while running '[^']*'\])?$")
_ERRNO = re.compile(r"^\[Errno (?P<errno>\d+)\] (?P<strerror>.*?)(?:: '(?P<filename>.*)')?$")


def _worker_error(err: RuntimeError) -> Exception | None:
    """The project's one-line error (or an ``OSError``) a worker raised, rebuilt from the
    traceback text Beam's portable runner wraps it in; None for anything else."""
    lines = str(err).strip().splitlines()
    last = lines[-1] if lines else ""
    while last.startswith("RuntimeError: "):  # wrapped once more by the runner's thread
        last = last.removeprefix("RuntimeError: ")
    match = _WORKER_ERROR.match(last)
    if not match:
        return None
    module, _, name = match["type"].rpartition(".")
    if module.startswith("components."):
        kind = getattr(importlib.import_module(module), name, None)
        if isinstance(kind, type) and issubclass(kind, (ConfigError, RunFailed)):
            return kind(match["message"])
    kind = getattr(builtins, name, None) if not module else None
    errno = _ERRNO.match(match["message"])
    if isinstance(kind, type) and issubclass(kind, OSError) and errno:
        return kind(int(errno["errno"]), errno["strerror"], errno["filename"])
    return None


class _WithoutWorkerTracebacks:
    """stderr without the tracebacks Beam's worker threads print for a failed bundle: the
    error they describe ends the pipeline, its text chained to what is raised."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if (threading.current_thread() is not threading.main_thread()
                and text.startswith("Traceback (most recent call last)")):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextlib.contextmanager
def beam_pipeline(beam_args: tuple[str, ...], defaults: tuple[str, ...]):
    """A Beam pipeline that fails with the error its worker raised, not Beam's wrapper.
    ``beam_args`` are added to the step's ``defaults`` (and win over them), unless they
    name a runner: then they replace them."""
    if not any(arg.split("=")[0] == "--runner" for arg in beam_args):
        beam_args = (*defaults, *beam_args)
    try:
        with contextlib.redirect_stderr(_WithoutWorkerTracebacks(sys.stderr)), \
                beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
            yield pipeline
    except RuntimeError as err:
        raised = _worker_error(err)
        if raised is None:
            raise
        raise raised from err
