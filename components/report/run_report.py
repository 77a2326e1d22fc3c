"""One self-contained HTML page per local run: what happened, why, and where to look.

It gathers what the steps wrote (data report, augmentation preview, training curves, the
gate with its checks and statistics, metrics and confusion matrix, worst mistakes) and
the registry's state, for every outcome: promoted, rejected, unchanged and failed.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from components.common.contract import read_json
from components.common.html import page
from components.evaluate.contract import GATE_FILE, METRICS_FILE, MISTAKES_FILE
from components.prepare_data.contract import DATA_REPORT_FILE, PREVIEW_FILE
from components.train.contract import CURVES_FILE

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
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _section(title: str, body: str) -> str:
    anchor = re.sub(r"\W+", "-", title.lower()).strip("-")
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _gate(evaluation: Path | None) -> tuple[str, str]:
    if not evaluation:
        return "", ""
    gate = read_json(evaluation, GATE_FILE)
    metrics = read_json(evaluation, METRICS_FILE)
    checks = _table(["check", "passed", "detail"],
                    [[c["check"], c["passed"], c["detail"]] for c in gate["checks"]])
    stats = gate.get("statistics") or {}
    warning = f"<p><b>{html.escape(stats['warning'])}</b></p>" if stats.get("warning") else ""
    candidate, production = metrics["candidate"], metrics["baseline"]
    keys = ("accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")
    scores = _table(["metric", "candidate", "production"],
                    [[k, f"{candidate[k]:.4f}", f"{production[k]:.4f}" if production else "-"]
                     for k in keys])
    labels = list(candidate["per_class"])
    matrix = _table(["true \\ predicted", *labels],
                    [[label, *row] for label, row in zip(labels, candidate["confusion_matrix"],
                                                          strict=True)])
    gate_html = (f"<p>Mode: {html.escape(gate['mode'])}</p>{warning}{checks}"
                 + (_table(["statistic", "value"], [[k, v] for k, v in stats.items()
                                                     if k not in ("paired", "classes",
                                                                  "warning")])
                    if stats else ""))
    return gate_html, scores + "<h3>Confusion matrix (candidate)</h3>" + matrix


def write(path: Path, summary: dict, steps: list[list], registry, failure: str = "") -> Path:
    """The report of one run at ``path``; ``summary`` is run-local's, ``steps`` the
    progress rows, ``registry`` the run's Registry."""
    artifacts = {k: Path(v) for k, v in summary.get("artifacts", {}).items() if v}
    examples, evaluation = artifacts.get("examples"), artifacts.get("evaluation")
    trained = artifacts.get("trained_model")
    decision = "failed" if failure else summary["gate"]["decision"]
    gate_html, scores_html = _gate(evaluation)
    runs = registry.runs()
    sections = [
        _section("Outcome", f"<p class='decision'><b>{html.escape(decision.upper())}</b></p>"
                 + "".join(f"<p>{html.escape(r)}</p>" for r in summary.get("gate", {}).get(
                     "reasons", []))
                 + (_pre(failure) if failure else "")
                 + f"<p>Production: version {summary.get('production_version')} in "
                   f"{html.escape(str(registry.base))}</p>"),
        _section("Steps", _table(["step", "status", "seconds"], steps)
                 if steps else "<p>see the run's graph in the Kubeflow UI</p>"),
        _section("Data", _pre((examples / DATA_REPORT_FILE).read_text())
                 if examples and (examples / DATA_REPORT_FILE).exists()
                 else "<p>not produced by this run</p>"),
        _section("Augmentation preview",
                 _embedded(examples / PREVIEW_FILE if examples else None)),
        _section("Training curves",
                 _embedded(trained / CURVES_FILE if trained else None)),
        _section("Gate", gate_html or "<p>not evaluated in this run</p>"),
        _section("Evaluation", scores_html or "<p>not evaluated in this run</p>"),
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
    from components.promote.registries import open_registry

    registry = open_registry(registry_uri, model_name)
    gate = read_json(evaluation, GATE_FILE)
    summary = {"gate": gate, "production_version": registry.current(),
               "artifacts": {"examples": examples, "trained_model": trained_model,
                             "evaluation": evaluation}}
    return write(Path(path), summary, [], registry)
