"""The promote step: register the gated SavedModel and move ``production`` to it."""

from __future__ import annotations

import logging

from components.common import outputs, storage
from components.common.contract import read_json
from components.evaluate.contract import GATE_FILE, METRICS_FILE, MODEL_CARD_FILE, MODEL_CARD_JSON
from components.export.contract import METADATA_FILE
from components.registry.base import UNCHECKED
from components.registry.schemes import open_registry

log = logging.getLogger(__name__)


class GateRejected(RuntimeError):
    """The evaluation this promotion was given rejected the model: nothing is promoted."""


def run(saved_model: str, evaluation: str, registry_uri: str, model_name: str,
        run_id: str, lineage: dict | None = None) -> dict:
    """Idempotent per ``run_id``; refuses a rejected evaluation; the pointer moves only if
    production is still the version the gate compared against (compare-and-swap)."""
    outputs.require_complete(evaluation, "evaluate")
    outputs.require_complete(saved_model, "export")
    gate = read_json(evaluation, GATE_FILE)
    if gate["decision"] != "promote":
        raise GateRejected(f"the gate rejected this model ({'; '.join(gate['reasons'])}); "
                          "nothing is promoted")
    metadata = read_json(saved_model, METADATA_FILE)
    metrics = read_json(evaluation, METRICS_FILE)
    card = {name: storage.read_text(storage.join(evaluation, name))
            for name in (MODEL_CARD_JSON, MODEL_CARD_FILE)
            if storage.exists(storage.join(evaluation, name))}  # evaluate writes both
    registry = open_registry(registry_uri, model_name)
    record = registry.register(saved_model, run_id, {
        "data_fingerprint": metadata.get("data_fingerprint"),
        "config_hash": metadata.get("config_hash"), "labels": metadata.get("labels"),
        "metrics": {k: v for k, v in metrics["candidate"].items() if not isinstance(v, dict)},
        "gate": {k: gate[k] for k in ("decision", "reasons", "mode", "checks")},
        "lineage": lineage,
    }, attachments=card)
    # The gate compared against the registry's production (or found none): promote only
    # if that is still production. An explicit --baseline folder has no version to check.
    from_registry = not gate.get("baseline") or gate.get("baseline_version") is not None
    entry = registry.promote(record["version"], run_id, expected_version=gate.get(
        "baseline_version") if from_registry else UNCHECKED)
    log.info("promoted %s version %d (previous production: %s)", model_name, record["version"],
             entry["previous_version"])
    registry.log_run(run_id, "promote", {"version": record["version"],
                                         "previous_version": entry["previous_version"]})
    return {"version": record["version"], "uri": record["uri"],
            "previous_version": entry["previous_version"], "registry": registry.base}
