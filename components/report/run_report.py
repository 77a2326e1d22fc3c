"""One self-contained HTML page per local run: what happened, why, and where to look.

It gathers what the steps wrote (the data report, augmentation preview, training settings
and curves, the gate's report, a confusion-matrix heatmap and reliability diagram, the
model card, worst mistakes) and the registry's state, for every outcome: promoted,
rejected, unchanged and failed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from components.common.charts import heatmap, reliability_diagram
from components.common.contract import read_json
from components.common.examples import DATA_REPORT_FILE, PREVIEW_FILE
from components.common.html import page
from components.common.markdown import to_html
from components.evaluate.contract import (
    GATE_FILE,
    METRICS_FILE,
    MISTAKES_FILE,
    MODEL_CARD_FILE,
    REPORT_FILE,
)
from components.train.contract import CONFIG_FILE, CURVES_FILE, recipe

BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S)


def _embedded(path: Path | None) -> str:
    """The body of one of the steps' HTML pages (its own heading dropped)."""
    if not path or not path.exists():
        return "<p>not produced by this run</p>"
    body = BODY.search(path.read_text(encoding="utf-8"))
    return re.sub(r"^<h1>.*?</h1>", "", body.group(1) if body else "", count=1)


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_number(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: object) -> str:
    """A cell's text: floats to four significant digits, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _section(title: str, body: str) -> str:
    anchor = re.sub(r"\W+", "-", title.lower()).strip("-")
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _markdown(path: Path | None) -> str:
    if not path or not path.exists():
        return "<p>not produced by this run</p>"
    return to_html(path.read_text(encoding="utf-8"))


def _settings(trained: Path | None) -> str:
    """The training settings the model was trained with (config.json), one row each."""
    if not trained or not (trained / CONFIG_FILE).exists():
        return "<p>not trained in this run</p>"
    return _table(["setting", "value"], sorted(recipe(read_json(trained, CONFIG_FILE)).items()))


def _evaluation(evaluation: Path | None) -> str:
    if not evaluation:
        return "<p>not evaluated in this run</p>"
    candidate = read_json(evaluation, METRICS_FILE)["candidate"]
    return ("<h3>Confusion matrix (candidate, test split)</h3>"
            + heatmap(list(candidate["per_class"]), candidate["confusion_matrix"])
            + reliability_diagram(candidate.get("calibration", [])))


def _outcome(decision: str, summary: dict, registry, failure: str) -> str:
    gate = summary.get("gate", {})
    production = summary.get("production_version")
    lines = [f"<p class='decision'>{html.escape(decision.upper())}</p>",
             *(f"<p>{html.escape(r)}</p>" for r in gate.get("reasons", [])),
             f"<p><b>Next step:</b> {html.escape(gate['next_step'])}</p>"
             if gate.get("next_step") else "",
             _pre(failure) if failure else "",
             f"<p>Production: {'v' + str(production) if production is not None else 'none'}"
             f" in {html.escape(str(registry.base))}</p>"]
    return f"<div class='outcome {html.escape(decision)}'>{''.join(lines)}</div>"


def write(path: Path, summary: dict, steps: list[list], registry, failure: str = "") -> Path:
    """The report of one run at ``path``; ``summary`` is run-local's, ``steps`` the
    progress rows, ``registry`` the run's registry."""
    artifacts = {k: Path(v) for k, v in summary.get("artifacts", {}).items() if v}
    examples, evaluation = artifacts.get("examples"), artifacts.get("evaluation")
    trained = artifacts.get("trained_model")
    decision = "failed" if failure else summary["gate"]["decision"] or "unchanged"
    runs = registry.runs()
    sections = [
        _section("Outcome", _outcome(decision, summary, registry, failure)),
        _section("Steps", _table(["step", "status", "seconds"], steps)
                 if steps else "<p>see the run's graph in the Kubeflow UI</p>"),
        _section("Data", _markdown(examples / DATA_REPORT_FILE if examples else None)),
        _section("Augmentation preview",
                 _embedded(examples / PREVIEW_FILE if examples else None)),
        _section("Settings", _settings(trained)),
        _section("Training curves",
                 _embedded(trained / CURVES_FILE if trained else None)),
        _section("Gate", _markdown(evaluation / REPORT_FILE if evaluation else None)),
        _section("Evaluation", _evaluation(evaluation)),
        _section("Model card", _markdown(evaluation / MODEL_CARD_FILE if evaluation
                                         else None)),
        _section("Worst mistakes",
                 _embedded(evaluation / MISTAKES_FILE if evaluation else None)),
        _section("Registry", _table(
            ["version", "run", "accuracy", "production"],
            [[v["version"], v["run_id"], v.get("metrics", {}).get("accuracy", "-"),
              "yes" if v["version"] == registry.current() else ""]
             for v in registry.list_versions()])
            + "<h3>Run log</h3>" + _table(
                ["run", "status", "decision", "promoted"],
                [[r["run_id"], r["status"], r["decision"] or "-", r["promoted_version"] or "-"]
                 for r in runs])),
    ]
    path.write_text(page(f"resnet-finetune run: {decision}", "".join(sections)),
                    encoding="utf-8")
    return path


def write_for_artifacts(path: str, examples: str, trained_model: str, evaluation: str,
                        registry_uri: str, model_name: str) -> Path:
    """The report of a pipeline run from its artifacts (the pipeline's report step)."""
    from components.registry.schemes import open_registry

    registry = open_registry(registry_uri, model_name)
    gate = read_json(evaluation, GATE_FILE)
    summary = {"gate": gate, "production_version": registry.current(),
               "artifacts": {"examples": examples, "trained_model": trained_model,
                             "evaluation": evaluation}}
    return write(Path(path), summary, [], registry)
