"""Reading an artifact's JSON files by their contract names (``*/contract.py``)."""

from __future__ import annotations

import json

from components.common import storage


def read_json(folder, name: str):
    """The JSON file ``name`` of the artifact at ``folder`` (a path or a storage URI)."""
    return json.loads(storage.read_text(storage.join(str(folder), name)))
