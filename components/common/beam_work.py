"""Where a Beam step's workers leave what the step reads back.

Under Beam's own ``--temp_location`` when the step's Beam arguments give one (any storage
URI: workers on other machines write there, and the step deletes its folder afterwards),
else in a local temporary folder (workers beside the step: the default runner, or a
worker pool in the step's pod). Rows go through the storage API, one object per bundle,
so every scheme behaves the same; a retried bundle may leave its failed attempt's object
too, so readers keep one row per key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from components.common import storage
from components.common.errors import RunFailed

log = logging.getLogger(__name__)


def temp_location(beam_args: tuple[str, ...]) -> str:
    """Beam's ``--temp_location`` in ``beam_args`` ('' when none), checked as a storage URI."""
    location = PipelineOptions(list(beam_args)).view_as(GoogleCloudOptions).temp_location or ""
    if location:
        storage.check_uri(location, "Beam's --temp_location")
    return location


@contextlib.contextmanager
def work_folder(beam_args: tuple[str, ...], name: str) -> Iterator[str]:
    """A fresh folder for one step's Beam work, deleted when the step is done with it (a
    failed delete is a warning: the step's own result or error matters more)."""
    location = temp_location(beam_args)
    if not location:
        with tempfile.TemporaryDirectory(prefix=f"{name}-") as folder:
            yield folder
        return
    folder = storage.join(location, f"{name}-{uuid.uuid4().hex[:12]}")
    try:
        yield folder
    finally:
        try:
            storage.delete_tree(folder)
        except (OSError, storage.StorageUnreachable, storage.StorageSetupError) as err:
            log.warning("could not delete the Beam work in %s: %s", folder, err)


class WriteRows(beam.DoFn):
    """Writes each bundle's rows (JSON-able dicts) as one ``PREFIX-<id>.jsonl`` object."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._lines: list[str] = []

    def start_bundle(self) -> None:
        self._lines = []

    def process(self, row: dict) -> None:
        self._lines.append(json.dumps(row) + "\n")

    def finish_bundle(self) -> None:
        if self._lines:
            storage.write_text(f"{self.prefix}-{uuid.uuid4().hex}.jsonl", "".join(self._lines))


def read_rows(prefix: str, key: str, expected: int) -> list[dict]:
    """The ``expected`` rows ``WriteRows(prefix)`` wrote, one per ``row[key]``, sorted by
    it; fewer means the workers wrote where this process cannot read."""
    rows = [row for _, row in sorted({row[key]: row for row in storage.read_jsonl(prefix)}
                                     .items())]
    if len(rows) < expected:
        raise RunFailed(f"the Beam workers left {len(rows)} of {expected} rows in {prefix}: "
                        "workers on other machines share no local folder with the step; give "
                        "Beam's --temp_location a URI on storage both reach (e.g. "
                        "gs://BUCKET/tmp)")
    return rows
