"""The steps around a scheduled run: resolve production, check lineage, record the run."""

from __future__ import annotations

import logging
import time

from components.common import storage
from components.lineage.failure import cause, final_state
from components.lineage.lineage import Check, Lineage, code_version, compare
from components.registry.base import PRODUCTION
from components.registry.checks import NAME
from components.registry.schemes import open_registry

log = logging.getLogger(__name__)
NO_VERSION = -1  # KFP parameters cannot be None
ABANDONED_AFTER_S = 48 * 3600  # a run without a final record this long after it began


def resolve_production(registry_uri: str, model_name: str) -> tuple[str, int]:
    """The production SavedModel URI and version, or ``("", NO_VERSION)`` on a first run."""
    registry = open_registry(registry_uri, model_name)
    version = registry.current(PRODUCTION)
    if version is None:
        return "", NO_VERSION
    return registry.get_version(version)["uri"], version


def check(registry_uri: str, model_name: str, run_id: str, data_fingerprint: str,
          production_version: int, settings: dict, force: bool) -> dict:
    """``changed`` or ``unchanged`` against production's recorded lineage; logged."""
    registry = open_registry(registry_uri, model_name)
    close_abandoned_runs(registry, run_id, time.time())
    current = Lineage(data_fingerprint, settings, code_version())
    version = None if production_version == NO_VERSION else production_version
    recorded = registry.get_version(version).get("lineage") if version is not None else None
    result = compare(current, recorded, version, force)
    if result.decision == "changed" and not force:
        result = _already_evaluated(registry, current.key, version) or result
    registry.log_run(run_id, "lineage", {**result.to_dict(),
                                         "data_fingerprint": data_fingerprint})
    log.info("lineage: %s (%s)", result.decision, "; ".join(result.reasons))
    return {**result.to_dict(), "lineage": current.to_dict()}


def close_abandoned_runs(registry, run_id: str, now: float) -> list[str]:
    """Record as KILLED the earlier runs still without a final record two days after they
    began: the platform ended them before their exit handler ran (a terminated run, a
    deleted workflow), so `finetune registry runs` would show them running forever."""
    closed = []
    for run in registry.runs():
        if run["status"] == "running" and run["run_id"] != run_id \
                and now - run["time"] > ABANDONED_AFTER_S:
            registry.log_run(run["run_id"], "final", {
                "status": "KILLED", "error": f"no final record {ABANDONED_AFTER_S // 3600} h "
                                             "after it began: ended before its exit handler "
                                             f"ran (recorded by run {run_id})"})
            closed.append(run["run_id"])
    if closed:
        log.warning("recorded %d abandoned runs as KILLED: %s", len(closed), ", ".join(closed))
    return closed


def _already_evaluated(registry, key: str, version: int | None) -> Check | None:
    """A finished earlier run with this very lineage whose candidate the gate judged
    against this production: evaluating it again would repeat its decision."""
    for run in reversed(registry.runs()):
        if (run["lineage_key"] == key and run["status"] == "SUCCEEDED"
                and run["evaluated"] and run["production_version"] == version):
            return Check("unchanged", [f"run {run['run_id']} already trained and evaluated "
                                       f"this data, these settings and this code against "
                                       f"production v{version} (gate: {run['decision']})"],
                         key, version)
    return None


def report(result: dict) -> str:
    lineage = result["lineage"]
    lines = [f"# Lineage check: {result['decision']}", "",
             *[f"- {reason}" for reason in result["reasons"]], "",
             "| | this run |", "|---|---|",
             f"| data fingerprint | `{lineage['data_fingerprint'][:16]}` |",
             f"| code | `{lineage['code']}` |",
             f"| settings | `{lineage['key'][:16]}` (lineage key) |"]
    return "\n".join(lines) + "\n"


def record_run(registry_uri: str, model_name: str, run_id: str, state: str, error: str,
               backup_dir: str, platform_run: str = "") -> None:
    """The run's final record, with the failing step and its cause when it did not
    succeed (``components.lineage.failure``); such a run leaves no backup behind."""
    status = final_state(state)
    registry = open_registry(registry_uri, model_name)
    registry.log_run(run_id, "final", {"status": status,
                                       "error": "" if status == "SUCCEEDED" else error})
    if status == "SUCCEEDED":
        return
    step, why = cause(run_id, state, error, platform_run)
    if step or why != error:
        registry.log_run(run_id, "cause", {"step": step, "error": why})
    if backup_dir and NAME.match(run_id):
        storage.delete_tree(storage.join(backup_dir, run_id))
        log.info("removed the backups of failed run %s", run_id)
