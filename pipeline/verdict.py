"""What ``finetune run-local`` says when the run ends: at most 20 lines saying what
happened, why, the next step in one sentence, and where the report, logs, model and
TensorBoard are (``--json`` prints the summary itself instead)."""

from __future__ import annotations

from components.train.contract import TENSORBOARD_DIR

HEADLINES = {
    "promote": "PROMOTED: version {production} is production",
    "reject": "REJECTED: production stays {production}",
    "unchanged": "UNCHANGED: production stays {production}; nothing was trained",
    "failed": "FAILED: production stays {production}",
}
MAX_LINES = 20


def verdict(summary: dict) -> list[str]:
    """The closing lines of a run from its summary (``local_run.summarize``)."""
    gate, artifacts = summary["gate"], summary.get("artifacts", {})
    production = summary.get("production_version")
    production = f"v{production}" if production is not None else "none (no version yet)"
    decision = gate.get("decision") or "unchanged"
    reasons = gate.get("reasons") or []
    lines = [HEADLINES.get(decision, decision.upper()).format(production=production)]
    if reasons:
        more = f" (+{len(reasons) - 1} more in the report)" if len(reasons) > 1 else ""
        lines.append(f"why:   {reasons[0]}{more}")
    if gate.get("next_step"):
        lines.append(f"next:  {gate['next_step']}")
    if "data" in summary:
        data, accuracy = summary["data"], summary["test_accuracy"]
        base = accuracy.get("production")
        lines += [f"data:  {data['accepted']} images accepted, {data['skipped']} skipped; "
                  f"splits {_splits(data['splits'])}",
                  f"test accuracy on {summary.get('test_size', '?')} images: candidate "
                  f"{accuracy['candidate']:.3f}" + (f", production {base:.3f}"
                                                    if base is not None else "")]
    lines.append(f"time:  {summary.get('wall_seconds', 0):.0f} s")
    lines += [f"{name + ':':<12} {where}" for name, where in (
        ("report", summary.get("report")), ("logs", summary.get("logs")),
        ("model", artifacts.get("saved_model")),
        ("tensorboard", f"tensorboard --logdir {artifacts['trained_model']}/{TENSORBOARD_DIR}"
         if artifacts.get("trained_model") else ""),
        ("registry", summary.get("registry"))) if where]
    return lines[:MAX_LINES]


def _splits(splits: dict) -> str:
    return " / ".join(f"{name} {count}" for name, count in splits.items())
