"""The ablation report: one row per (BN policy, clip mode), curves overlaid, and McNemar's
exact test of each run against the best one, so that a difference that is noise says so."""

from __future__ import annotations

import html
import json
import statistics
from dataclasses import dataclass

import numpy as np

from components.ablation.contract import HTML_FILE, MARKDOWN_FILE, ROWS_FILE
from components.common import storage
from components.common.charts import line_chart
from components.common.contract import read_json
from components.common.html import page
from components.common.publish import Published
from components.evaluate.contract import GATE_FILE, METRICS_FILE
from components.evaluate.metrics import mcnemar_exact
from components.train.contract import CONFIG_FILE, HISTORY_FILE

ALPHA = 0.05
COLUMNS = ("val_accuracy", "test_accuracy", "log_loss", "ece", "grad_norm_mean",
           "grad_norm_max", "clip_rate", "train_seconds")
HEADERS = ("val acc", "test acc", "log loss", "ECE", "grad norm mean", "grad norm max",
           "clip rate", "train s")


@dataclass(frozen=True)
class Run:
    bn_policy: str
    clip: str
    seed: int
    values: dict[str, float]
    correct: np.ndarray  # per test example, in the evaluation's (sha256) order
    val_curve: list[float]
    loss_curve: list[float]

    @property
    def cell(self) -> str:
        return f"{self.bn_policy} / {self.clip}"


def _over_epochs(history: list[dict], key: str, reduce) -> float:
    values = [r[key] for r in history if r.get(key, float("nan")) == r.get(key)]
    return float(reduce(values)) if values else float("nan")


def collect(trained_models: list[str], evaluations: list[str]) -> list[Run]:
    """Pair each trained model with its evaluation by training config hash."""
    by_hash = {read_json(e, GATE_FILE).get("candidate_config_hash"): e for e in evaluations}
    runs = []
    for folder in trained_models:
        config, history = read_json(folder, CONFIG_FILE), read_json(folder, HISTORY_FILE)
        evaluation = by_hash.get(config["config_hash"])
        if evaluation is None:
            raise ValueError(f"no evaluation of the model in {folder} (config hash "
                             f"{config['config_hash']})")
        candidate = read_json(evaluation, METRICS_FILE)["candidate"]
        rows = [json.loads(line) for line in storage.read_text(
            storage.join(evaluation, "predictions_candidate.jsonl")).splitlines() if line]
        correct = np.array([int(np.argmax(r["probabilities"])) == r["label"] for r in rows])

        runs.append(Run(config["bn_policy"], config["clip"], config["seed"], {
            "val_accuracy": history[-1]["val_accuracy"] if history else float("nan"),
            "test_accuracy": candidate["accuracy"], "log_loss": candidate["log_loss"],
            "ece": candidate["ece"],
            "grad_norm_mean": _over_epochs(history, "grad_norm_mean", np.mean),
            "grad_norm_max": _over_epochs(history, "grad_norm_max", max),
            "clip_rate": _over_epochs(history, "clip_rate", np.mean),
            "train_seconds": config.get("train_seconds", float("nan"))},
            correct, [r.get("val_accuracy", float("nan")) for r in history],
            [r.get("loss", float("nan")) for r in history]))
    return sorted(runs, key=lambda r: (r.bn_policy, r.clip, r.seed))


def best_run(runs: list[Run]) -> Run:
    """Best by validation accuracy among the first seed's runs (test accuracy breaks ties
    only through the order of the grid, never through the test set)."""
    first = [r for r in runs if r.seed == min(x.seed for x in runs)]
    return max(first, key=lambda r: r.values["val_accuracy"])


def significance(run: Run, best: Run) -> dict:
    """McNemar's exact test of ``run`` against ``best`` on the same test images."""
    if run is best:
        return {"p_value": None, "verdict": "best"}
    better = int(np.sum(run.correct & ~best.correct))
    worse = int(np.sum(~run.correct & best.correct))
    p = mcnemar_exact(better, worse)
    verdict = "noise" if p >= ALPHA else ("better" if better > worse else "worse")
    return {"p_value": p, "verdict": verdict, "discordant": [better, worse]}


def table(runs: list[Run]) -> list[dict]:
    """One row per cell: means (and standard deviations with several seeds), and the
    significance of the cell's first-seed run against the best run."""
    best = best_run(runs)
    cells: dict[str, list[Run]] = {}
    for run in runs:
        cells.setdefault(run.cell, []).append(run)
    rows = []
    for members in cells.values():
        row = {"bn_policy": members[0].bn_policy, "clip": members[0].clip,
               "seeds": len(members), **significance(members[0], best)}
        for key in COLUMNS:
            values = [m.values[key] for m in members]
            row[key] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    return rows


def _cell(row: dict, key: str) -> str:
    value, std = row[key], row[f"{key}_std"]
    text = f"{value:.0f}" if key == "train_seconds" else f"{value:.3f}"
    return text + (f" ± {std:.3f}" if std is not None else "")


def _verdict(row: dict) -> str:
    if row["p_value"] is None:
        return "best"
    return f"{row['verdict']} (p={row['p_value']:.3f})"


def markdown(rows: list[dict]) -> str:
    lines = ["# Ablation: BN policy x gradient clipping", "",
             "Best run: highest validation accuracy (first seed). Significance: McNemar's "
             f"exact test on the test split against the best run; p >= {ALPHA} is noise.", "",
             "| BN policy | clip | " + " | ".join(HEADERS) + " | vs best |",
             "|---|---|" + "---|" * (len(HEADERS) + 1)]
    for row in rows:
        lines.append(f"| {row['bn_policy']} | {row['clip']} | "
                     + " | ".join(_cell(row, k) for k in COLUMNS) + f" | {_verdict(row)} |")
    return "\n".join(lines) + "\n"


def html_page(rows: list[dict], runs: list[Run]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("BN policy", "clip", *HEADERS,
                                                          "vs best"))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            row["bn_policy"], row["clip"], *(_cell(row, k) for k in COLUMNS), _verdict(row)))
        + "</tr>" for row in rows)
    first = [r for r in runs if r.seed == min(x.seed for x in runs)]
    charts = (line_chart("validation accuracy", {r.cell: r.val_curve for r in first},
                         "accuracy (fraction)", y_range=(0.0, 1.0))
              + line_chart("training loss", {r.cell: r.loss_curve for r in first},
                           "cross-entropy loss"))
    return page("Ablation: BN policy x gradient clipping",
                f"<p>Best run: highest validation accuracy (first seed). McNemar's exact test "
                f"against it on the test split; p &ge; {ALPHA} is labelled noise.</p>"
                f"<table><tr>{head}</tr>{body}</table>{charts}")


def published(output: str) -> Published:
    """The report's pages for the UI."""
    return Published(pages={"report": storage.join(output, MARKDOWN_FILE),
                            "report_html": storage.join(output, HTML_FILE)})


def write(output: str, trained_models: list[str], evaluations: list[str]) -> list[dict]:
    """The Markdown and HTML reports and the rows (ablation/contract.py) in ``output``."""
    runs = collect(trained_models, evaluations)
    rows = table(runs)
    storage.write_text(storage.join(output, MARKDOWN_FILE), markdown(rows))
    storage.write_text(storage.join(output, HTML_FILE), html_page(rows, runs))
    storage.write_text(storage.join(output, ROWS_FILE), json.dumps(rows, indent=2))
    return rows
