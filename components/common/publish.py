"""Write an artifact folder beside its destination, then move it there in one rename."""

from __future__ import annotations

import os
import uuid


def staging_dir(output: str) -> str:
    """A fresh sibling folder of ``output``; refuses a non-empty ``output`` up front."""
    if os.path.isdir(output) and os.listdir(output):
        raise FileExistsError(f"--output {output} exists and is not empty; choose a new folder")
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    return os.path.join(parent, f".{os.path.basename(output)}.partial-{uuid.uuid4().hex[:8]}")


def publish(staging: str, output: str) -> None:
    """Move the finished ``staging`` folder to ``output`` (an empty ``output`` is replaced)."""
    if os.path.isdir(output):
        os.rmdir(output)
    os.replace(staging, output)
