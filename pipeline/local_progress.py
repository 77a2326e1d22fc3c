"""What a person sees during ``finetune run-local``: one line when a step starts and one
when it ends, with its wall time; the progress lines steps print between them
(``components.common.progress``), and a line after every ``HEARTBEAT`` seconds without
one; every step's full output in its own log file; and the tail of a failing step's log.
kfp.local prints everything (its task logs and the steps' output) to ``sys.stdout`` (its
warnings to ``sys.stderr``), so the run is read through a stand-in for both."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import TextIO

from components.common.errors import RunFailed
from components.common.progress import MARK

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([\w.-]+)'")
FINISHED = re.compile(r"Task '([\w.-]+)' finished with status (\w+)")
CACHED = re.compile(r"Task '?([\w.-]+)'? cache hit")
FAILED_TASK = re.compile(r"Inner task failed: '([\w.-]+)'")
PROGRESS = re.compile(rf"^\s*{MARK} (.*)$")
HEARTBEAT = 15.0
POLL = 1.0  # seconds between looks for silence
TAIL_LINES = 25
# The last line of a Python traceback: "package.module.SomeError: what happened".
RAISED = re.compile(r"^\s*(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Failed|Rejected|"
                    r"Refused|Exit)\b(?::.*)?$")


class StepLogs(io.TextIOBase):
    """A ``sys.stdout`` for the run: routes each line to the run's and the current step's
    log file and echoes progress (or, when ``verbose``, everything) to ``echo``."""

    def __init__(self, folder: Path, echo: TextIO, verbose: bool = False):
        super().__init__()
        self.folder = folder
        self.echo = echo
        self.verbose = verbose
        folder.mkdir(parents=True, exist_ok=True)
        self._run_log = open(folder / "run.log", "a", encoding="utf-8")
        self._step_logs: dict[str, TextIO] = {}
        self._current = ""
        self.failed = ("", "")  # the failing step and its error, once failure() ran
        self._started: dict[str, float] = {}
        self._rows: dict[str, list] = {}
        self._buffer = ""
        self._echo_lock = threading.Lock()
        self._last_echo = time.monotonic()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.verbose:
            self.echo.write(text)
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._line(ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        for handle in (self._run_log, *self._step_logs.values()):
            if not handle.closed:
                handle.flush()

    def _line(self, line: str) -> None:
        self._run_log.write(line + "\n")
        if started := STARTED.search(line):
            self._current = started.group(1)
            self._started[self._current] = time.perf_counter()
            self._rows[self._current] = [self._current, "running", ""]
            self._progress(f"  {self._current:<22} started")
        if self._current:
            self.step_log(self._current).write(line + "\n")
            if said := PROGRESS.match(line):
                self._progress(f"  {self._current:<22} {said.group(1)}")
        if cached := CACHED.search(line):
            self._rows[cached.group(1)] = [cached.group(1), "cached", ""]
            self._progress(f"  {cached.group(1):<22} cached")
        if finished := FINISHED.search(line):
            name, status = finished.groups()
            seconds = time.perf_counter() - self._started.get(name, time.perf_counter())
            word = {"SUCCESS": "succeeded", "FAILURE": "FAILED"}.get(status, status.lower())
            self._rows[name] = [name, word, f"{seconds:.1f}"]
            self._progress(f"  {name:<22} {word:<9} {seconds:6.1f} s")

    def _progress(self, text: str) -> None:
        if not self.verbose:
            with self._echo_lock:
                self.echo.write(text + "\n")
                self.echo.flush()
                self._last_echo = time.monotonic()

    def _heartbeat(self) -> None:
        """Every ``HEARTBEAT`` seconds of silence: the running step and its time so far."""
        while not self._stop.wait(POLL):
            step = self._current
            running = step and self._rows.get(step, [""] * 2)[1] == "running"
            if running and time.monotonic() - self._last_echo >= HEARTBEAT:
                elapsed = time.perf_counter() - self._started[step]
                self._progress(f"  {step:<22} running, {elapsed:.0f} s so far")

    def rows(self) -> list[list]:
        """``[step, status, seconds]`` for every step seen, in the order they started."""
        return list(self._rows.values())

    def step_log(self, name: str) -> TextIO:
        if name not in self._step_logs:
            self._step_logs[name] = open(self.folder / f"{name}.log", "a", encoding="utf-8")
        return self._step_logs[name]

    def close(self) -> None:
        if self.closed:
            return
        self._stop.set()
        self._beat.join()
        self.flush()
        for handle in (self._run_log, *self._step_logs.values()):
            handle.close()
        super().close()

    def failure(self, message: str) -> str:
        """The failing step, its log's tail and the log's path, for the person."""
        match = FAILED_TASK.search(ANSI.sub("", message))
        step = match.group(1) if match else self._current
        path = self.folder / f"{step}.log"
        self.flush()
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        tail = lines[-TAIL_LINES:]
        cause = next((line.strip() for line in reversed(lines) if RAISED.match(line)), "")
        self.failed = (step, _short(cause) if cause else "")
        if self._rows.get(step, [""] * 2)[1] == "running":
            self._rows[step][1] = "FAILED"
        return "\n".join([f"step {step} failed{': ' + _short(cause) if cause else ''}", "",
                          f"the last {len(tail)} lines of its log:",
                          *[f"  | {line}" for line in tail], "",
                          f"whole log: {path}", f"every step's log: {self.folder}"])


def follow(command: list[str], name: str, log: Path, echo: TextIO) -> None:
    """Run ``command`` with all its output in ``log`` and its progress lines (and a line
    after every ``HEARTBEAT`` seconds of silence) on ``echo`` under ``name``; raises
    ``RunFailed`` (the CLI's error line, no traceback) with the log's tail when it fails."""
    import subprocess

    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as handle, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace") as child:
        lines, said = queue_lines(child.stdout), time.perf_counter()
        while True:
            try:
                line = lines.get(timeout=POLL)
            except Empty:
                line = ""
            if line is None:
                break
            handle.write(line)
            progress = PROGRESS.match(line.rstrip("\n"))
            if progress or time.perf_counter() - said >= HEARTBEAT:
                elapsed = time.perf_counter() - started
                echo.write(f"  {name:<22} " + (progress.group(1) if progress else
                                               f"running, {elapsed:.0f} s so far") + "\n")
                echo.flush()
                said = time.perf_counter()
    if child.returncode:
        tail = log.read_text(encoding="utf-8").splitlines()[-TAIL_LINES:]
        raise RunFailed("\n".join([f"{name} failed (exit {child.returncode}); the end of "
                                      f"its log {log}:", *[f"  | {t}" for t in tail]]))
    echo.write(f"  {name:<22} succeeded {time.perf_counter() - started:6.1f} s\n")


def queue_lines(stream: TextIO) -> Queue:
    """The lines of ``stream`` in a queue filled by a thread, to wait on with a timeout;
    None after the last."""
    lines: Queue = Queue()

    def read() -> None:
        try:
            for line in stream:
                lines.put(line)
        finally:
            lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _short(cause: str) -> str:
    """``pkg.module.ConfigError: message`` -> ``ConfigError: message``."""
    name, _, message = cause.partition(":")
    return f"{name.rsplit('.', 1)[-1]}:{message}" if message else name.rsplit(".", 1)[-1]
