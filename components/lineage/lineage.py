"""Is this run's input what production was made from? Data, settings and code.

A scheduled run whose data fingerprint, training-relevant settings and code version all
equal production's ends as ``unchanged`` before any GPU is spent. Settings exclude paths,
backup folders and run ids, so the same setup always has the same lineage.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

CODE_PACKAGES = ("components", "pipeline")
DISTRIBUTION = "resnet-finetune"


def code_version() -> str:
    """The installed package's version and a hash of its Python sources (what runs):
    both packages' files, found without importing ``pipeline`` (steps never do)."""
    from importlib.util import find_spec

    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        [root] = map(Path, find_spec(package).submodule_search_locations)
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(root)}\n".encode())
            digest.update(path.read_bytes())
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"{version}+{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class Lineage:
    data_fingerprint: str
    settings: dict
    code: str

    @property
    def key(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict:
        return {**asdict(self), "key": self.key}


@dataclass(frozen=True)
class Check:
    decision: str  # "changed" or "unchanged"
    reasons: list[str]
    key: str
    production_version: int | None
    differs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compare(current: Lineage, production: dict | None, production_version: int | None,
            force: bool) -> Check:
    """``production`` is the lineage recorded with the production version (or None)."""
    def check(decision: str, reasons: list[str], differs: list[str] = ()) -> Check:
        return Check(decision, reasons, current.key, production_version, list(differs))

    if production is None or production_version is None:
        return check("changed", ["no production model with a recorded lineage yet"])
    differs = [name for name, value in (("data", current.data_fingerprint),
                                        ("settings", current.settings),
                                        ("code", current.code))
               if production.get({"data": "data_fingerprint"}.get(name, name)) != value]
    if force:
        return check("changed", ["force is set: retraining although "
                                 + (", ".join(differs) + " changed" if differs
                                    else "nothing changed")], differs)
    if differs:
        return check("changed", [f"{', '.join(differs)} differ from production "
                                 f"v{production_version}'s"], differs)
    return check("unchanged", [f"data, settings and code equal production "
                               f"v{production_version}'s: nothing to train"])
