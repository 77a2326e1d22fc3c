"""The evaluate step: candidate and production scored on the same test split, then gated."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass

import tensorflow as tf

from components.common import beam_work, outputs, progress, storage
from components.common.contract import read_json
from components.common.examples import (
    ENCODED,
    SHA256,
    parse,
    read_labels,
    read_stats,
    require_complete,
)
from components.common.examples import shard_files as list_shards
from components.common.preprocess import decode_resize
from components.common.publish import Published
from components.evaluate import inference, model_card, report
from components.evaluate.contract import (
    GATE_FILE,
    METRICS_FILE,
    MISTAKES_FILE,
    MODEL_CARD_FILE,
    MODEL_CARD_JSON,
    REPORT_FILE,
)
from components.evaluate.gate import UNCHANGED, GateConfig, GateResult, decide, split_statistics
from components.evaluate.metrics import classification_metrics
from components.evaluate.paired import Paired
from components.export.contract import DESCRIPTIONS, METADATA_FILE

log = logging.getLogger(__name__)


def saved_model_labels(saved_model: str) -> list[str]:
    return storage.read_text(storage.join(saved_model, "assets", "labels.txt")).splitlines()


def identical(candidate: str, baseline: str) -> bool:
    """Byte-identical SavedModels (the files about them aside: export's metadata, the
    model card): nothing to promote."""
    return outputs.content_sha256(candidate, exclude=DESCRIPTIONS) == \
        outputs.content_sha256(baseline, exclude=DESCRIPTIONS)


def resolve_baseline(baseline: str = "", registry: str = "",
                     model_name: str = "") -> tuple[str | None, int | None]:
    """The production SavedModel and its registry version: an explicit folder (no
    version), the registry's production, or ``(None, None)`` on a first run."""
    if baseline:
        return baseline, None
    if registry and model_name:
        from components.registry.schemes import open_registry

        reg = open_registry(registry, model_name)
        version = reg.current()
        return (None, None) if version is None else (reg.get_version(version)["uri"], version)
    return None, None


def _thumbnails(shards: list[str], size: int = 96) -> dict[str, object]:
    thumbs = {}
    for record in tf.data.TFRecordDataset(shards).map(parse):
        thumbs[record[SHA256].numpy().decode()] = decode_resize(record[ENCODED], size).numpy()
    return thumbs


@dataclass(frozen=True)
class Baseline:
    """The production model: its local copy, and what the report and promotion cite."""

    local: str
    uri: str
    version: int | None


def published(result: dict, output: str) -> Published:
    """What the UI shows of a run that returned ``result`` and wrote ``output``."""
    gate = read_json(output, GATE_FILE)
    models = {"candidate": result["candidate"], "production": result["baseline"]}
    return Published(
        metadata={"decision": result["decision"], "reasons": result["reasons"],
                  "baseline": gate["baseline"] or "", "baseline_version": gate["baseline_version"]},
        metrics={f"{model}_{key}": scores[key] for model, scores in models.items() if scores
                 for key in ("accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")},
        pages={"evaluation_report": storage.join(output, REPORT_FILE),
               "worst_mistakes": storage.join(output, MISTAKES_FILE)},
        confusion_matrix=(result["labels"], result["candidate"]["confusion_matrix"]))


def run(candidate: str, examples: str, output: str, gate: GateConfig, baseline: str | None = None,
        baseline_version: int | None = None, registry=None, examples_uri: str = "") -> dict:
    """Score ``candidate`` (and ``baseline``, when given) on the test split, gate, write
    metrics, predictions, ``gate.json``, the report and the gallery to ``output``.
    Models and examples on a bucket are read through a local copy (TF has no ``s3://``); a
    baseline with a version is copied by ``registry`` when given (MLflow's artifacts are
    no storage URI). With Beam's ``--temp_location`` in the gate's ``beam_args`` the Beam
    workers may run elsewhere: they read the test shards from ``examples_uri`` (where the
    artifact lives, when ``examples`` is a step's local copy of it; default ``examples``)
    and the models from copies placed there."""
    gate.validate()
    beam_args = gate.beam_args
    temp = beam_work.temp_location(beam_args)
    require_complete(examples)
    outputs.require_complete(candidate, "export")
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(storage.local_copy(candidate))
        examples_local = stack.enter_context(storage.local_copy(examples))
        base = None
        if baseline:
            copy = registry.saved_model_copy(baseline_version) \
                if registry is not None and baseline_version is not None \
                else storage.local_copy(baseline)
            base = Baseline(stack.enter_context(copy), baseline, baseline_version)
        work = stack.enter_context(beam_work.work_folder(beam_args, "evaluate"))
        # Workers that may be elsewhere read the test shards where the examples live.
        shards_at = (examples_uri or examples) if temp else examples_local
        scoring = inference.Scoring(list_shards(shards_at, "test"),
                                    read_stats(examples_local)["split_totals"]["test"],
                                    work, beam_args, staged=bool(temp))
        out = stack.enter_context(outputs.local_output(output))
        result = _evaluate(local, examples_local, out, gate, base, scoring)
    log.info("gate: %s (%s)", result["decision"], "; ".join(result["reasons"]))
    return result


def _evaluate(candidate: str, examples: str, output: str, gate: GateConfig,
              baseline: Baseline | None, scoring: inference.Scoring) -> dict:
    labels = read_labels(examples)
    shards = list_shards(examples, "test")
    rows = scoring.predict(candidate, "candidate")
    probs, truth = inference.as_arrays(rows)
    cand = classification_metrics(probs, truth, labels)
    progress.say(f"scored {len(rows)} test images with the candidate: accuracy "
                 f"{cand['accuracy']:.3f}")
    base, base_rows, paired, labels_match = None, None, None, True
    same_bytes = bool(baseline) and identical(candidate, baseline.local)
    if same_bytes:
        base = cand
        paired = Paired.from_predictions(truth, probs.argmax(1), probs.argmax(1), labels)
    elif baseline:
        labels_match = saved_model_labels(baseline.local) == labels
        if labels_match:
            # Rows of both models are sorted by sha256: example i is the same image in both.
            base_rows = scoring.predict(baseline.local, "baseline")
            base_probs, _ = inference.as_arrays(base_rows)
            base = classification_metrics(base_probs, truth, labels)
            progress.say(f"scored {len(base_rows)} test images with production "
                         f"v{baseline.version}: accuracy {base['accuracy']:.3f}")
            paired = Paired.from_predictions(truth, probs.argmax(1), base_probs.argmax(1),
                                             labels)
    result = (GateResult(UNCHANGED, [f"the candidate is byte-identical to production "
                                     f"v{baseline.version}: nothing to promote"],
                         mode="identical") if same_bytes
              else decide(gate, cand, base, paired, labels_match)).to_dict()
    if result["statistics"]:
        result["statistics"].update(split_statistics(gate, paired))
    metadata = json.loads(storage.read_text(storage.join(candidate, METADATA_FILE)))
    result.update(candidate_config_hash=metadata.get("config_hash"),
                  baseline=baseline.uri if baseline else None,
                  baseline_version=baseline.version if baseline else None,
                  discordant=[paired.overall.candidate_only, paired.overall.production_only]
                  if paired else None,
                  gate_config={k: v for k, v in gate.__dict__.items() if k != "beam_args"})
    card = model_card.build(metadata, read_stats(examples), {"candidate": cand, "baseline": base},
                            result)
    texts = {
        MODEL_CARD_JSON: json.dumps(card, indent=2),
        MODEL_CARD_FILE: model_card.markdown(card),
        "predictions_candidate.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        METRICS_FILE: json.dumps({"candidate": cand, "baseline": base}, indent=2),
        GATE_FILE: json.dumps(result, indent=2),
        REPORT_FILE: report.markdown(cand, base, result, labels),
        MISTAKES_FILE: report.worst_mistakes_html(rows, _thumbnails(shards), labels),
        "decision.txt": result["decision"],
    }
    if base_rows is not None:
        texts["predictions_baseline.jsonl"] = "".join(json.dumps(r) + "\n" for r in base_rows)
    for name, text in texts.items():
        storage.write_text(storage.join(output, name), text)
    return {"decision": result["decision"], "reasons": result["reasons"], "candidate": cand,
            "baseline": base, "labels": labels}
