"""The model card of an evaluated candidate (JSON and Markdown), in the Model Card
Toolkit's sections where they fit: model details with lineage, model parameters (the
recipe and the data), the quantitative analysis (metrics with intervals, the gate) and
considerations (intended use, limitations)."""

from __future__ import annotations

from components.common.markdown import cell, text
from components.evaluate.paired import wilson

Z95 = 1.959964
INTENDED_USE = ("Classifying images into the classes listed, for images like those of the "
                "training data (same sources, cameras and framing); the model returns "
                "probabilities, and a caller decides what confidence to act on.")


def build(metadata: dict, stats: dict, metrics: dict, gate: dict) -> dict:
    """The card from the SavedModel's export metadata, the data step's ``stats.json``, the
    evaluation's metrics (``candidate``, ``baseline``) and ``gate.json``."""
    candidate, baseline = metrics["candidate"], metrics.get("baseline")
    n = candidate["examples"]
    low, high = (float(v) for v in wilson(round(candidate["accuracy"] * n), n, Z95))
    statistics = gate.get("statistics") or {}
    return {
        "model_details": {
            "name": "ResNet50 fine-tuned image classifier",
            "overview": (f"Keras ResNet50 fine-tuned on {stats['split_totals']['train']} images of "
                         f"{len(stats['labels'])} classes; a TensorFlow SavedModel that "
                         "takes raw image bytes."),
            "lineage": {"data_fingerprint": stats["fingerprint"],
                        "config_hash": metadata.get("config_hash"),
                        "content_sha256": metadata.get("content_sha256"),
                        "starting_weights": metadata.get("training", {}).get("weights"),
                        "compared_with": gate.get("baseline_version"),
                        "tensorflow": metadata.get("tensorflow"),
                        "keras": metadata.get("keras")},
        },
        "model_parameters": {
            "model_architecture": "ResNet50 (Keras applications), new softmax head",
            "input_format": f"image bytes (JPEG, PNG, GIF, BMP), resized to "
                            f"{metadata.get('input_size')} px",
            "output_format": "class probabilities and the class names, highest first",
            "recipe": metadata.get("training", {}),
            "data": {"classes": stats["labels"], "split_totals": stats["split_totals"],
                     "class_totals": stats["class_totals"], "skipped": stats["skipped"],
                     "imbalance_ratio": stats["imbalance_ratio"]},
        },
        "quantitative_analysis": {
            "performance_metrics": [
                {"type": "accuracy", "value": candidate["accuracy"], "slice": "test",
                 "confidence_interval": {"lower_bound": low, "upper_bound": high,
                                         "level": 0.95, "method": "Wilson score"}},
                *({"type": key, "value": candidate[key], "slice": "test"}
                  for key in ("macro_f1", "log_loss", "ece")),
                *({"type": "accuracy", "value": candidate["per_class"][label]["recall"],
                   "slice": label} for label in stats["labels"]
                  if label in candidate["per_class"]),
            ],
            "production_accuracy": baseline["accuracy"] if baseline else None,
            "gate": {"decision": gate["decision"], "mode": gate["mode"],
                     "reasons": gate["reasons"],
                     "difference_bounds": [statistics.get("difference_lower_bound"),
                                           statistics.get("difference_upper_bound")]
                     if statistics else None},
        },
        "considerations": {
            "intended_use": INTENDED_USE,
            "limitations": _limitations(n, stats, statistics),
        },
    }


def _limitations(n: int, stats: dict, statistics: dict) -> list[str]:
    found = [f"Measured on {n} test images: an accuracy is known to the interval given, "
             "no closer."]
    if statistics.get("detectable_difference") is None and statistics:
        found.append("At this test size the gate cannot detect any improvement over "
                     "production 80% of the time.")
    elif statistics:
        found.append(f"The gate detects an improvement of {statistics['detectable_difference']:.3f}"
                     " or more 80% of the time at this test size.")
    if stats["imbalance_ratio"] > 1.5:
        found.append(f"Classes are imbalanced ({stats['imbalance_ratio']}x largest to smallest): "
                     "per-class accuracies differ in precision.")
    found.append("Images unlike the training data (other sources, classes not listed) get a "
                 "confident answer from the listed classes all the same.")
    return found


def markdown(card: dict) -> str:
    details, params = card["model_details"], card["model_parameters"]
    analysis, considerations = card["quantitative_analysis"], card["considerations"]
    lines = [f"# Model card: {text(details['name'])}", "", text(details["overview"]), "",
             "## Intended use", "", text(considerations["intended_use"]), "",
             "## Data", "", "| split | images |", "|---|---|"]
    lines += [f"| {cell(split)} | {count} |" for split, count in
              params["data"]["split_totals"].items()]
    lines += ["", f"Classes: {', '.join(text(c) for c in params['data']['classes'])}; "
              f"{params['data']['skipped']} input files skipped.", "",
              "## Metrics (test split)", "", "| metric | slice | value | 95% interval |",
              "|---|---|---|---|"]
    for metric in analysis["performance_metrics"]:
        interval = metric.get("confidence_interval")
        bounds = (f"{interval['lower_bound']:.3f} .. {interval['upper_bound']:.3f}"
                  if interval else "")
        lines.append(f"| {metric['type']} | {cell(metric['slice'])} | {metric['value']:.4f} "
                     f"| {bounds} |")
    gate = analysis["gate"]
    lines += ["", "## Gate", "", f"Decision: **{gate['decision']}** ({gate['mode']}).", ""]
    lines += [f"- {text(reason)}" for reason in gate["reasons"]]
    lines += ["", "## Limitations", ""]
    lines += [f"- {text(item)}" for item in considerations["limitations"]]
    lines += ["", "## Training recipe", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {cell(_plain(value))} |"
              for key, value in sorted(params["recipe"].items())]
    lines += ["", "## Lineage", "", "| item | value |", "|---|---|"]
    lines += [f"| {key} | {cell(value)} |" for key, value in details["lineage"].items()
              if value is not None]
    return "\n".join(lines) + "\n"


def _plain(value: object) -> object:
    return {True: "yes", False: "no"}[value] if isinstance(value, bool) else value
