"""Progress lines a step prints for the person waiting on it: ``finetune run-local`` echoes
them under the step's name, and the Kubeflow UI shows them in the step's log."""

from __future__ import annotations

import threading
import time

MARK = "progress:"


def say(text: str) -> None:
    print(f"{MARK} {text}", flush=True)


class Counter:
    """Counts finished items of ``total`` across threads and says so at most every
    ``every`` seconds, and at the last one."""

    def __init__(self, verb: str, total: int, noun: str, every: float = 5.0):
        self.verb, self.total, self.noun, self.every = verb, total, noun, every
        self.done = 0
        self._lock = threading.Lock()
        self._said = time.monotonic()

    def tick(self) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if self.done == self.total or now - self._said >= self.every:
                self._said = now
                say(f"{self.verb} {self.done} of {self.total} {self.noun}")
