"""The evaluation report (Markdown) and the gallery of worst mistakes (HTML)."""

from __future__ import annotations

import numpy as np

from components.common import html as html_page
from components.common.markdown import cell, text
from components.evaluate.gate import next_step

SCALARS = ("accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")


def markdown(candidate: dict, baseline: dict | None, gate: dict, labels: list[str]) -> str:
    lines = [f"# Evaluation: **{gate['decision'].upper()}**", "", f"Gate mode: {gate['mode']}",
             ""]
    lines += [f"- {text(reason)}" for reason in gate["reasons"]]
    lines += ["", f"**Next step:** {text(next_step(gate))}."]
    lines += _operating_characteristics(gate.get("statistics") or {})
    lines += ["", "| metric | candidate | production | delta |", "|---|---|---|---|"]
    for key in SCALARS:
        base = f"{baseline[key]:.4f}" if baseline else "-"
        delta = f"{candidate[key] - baseline[key]:+.4f}" if baseline else "-"
        lines.append(f"| {key} | {candidate[key]:.4f} | {base} | {delta} |")
    lines += ["", "| class | recall | production recall | precision |", "|---|---|---|---|"]
    for label in labels:
        c = candidate["per_class"][label]
        b = baseline["per_class"].get(label, {}).get("recall") if baseline else None
        lines.append(f"| {cell(label)} | {c['recall']:.3f} | {'-' if b is None else f'{b:.3f}'} "
                     f"| {c['precision']:.3f} |")
    lines += ["", "## Checks", "", "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {c['check']} | {'yes' if c['passed'] else '**no**'} | {cell(c['detail'])} |"
              for c in gate["checks"]]
    return "\n".join(lines) + "\n"


def _operating_characteristics(stats: dict) -> list[str]:
    """What this test split can see: the paired interval, the detectable difference, and
    the split size an equally good candidate needs."""
    if not stats:
        return []
    paired = stats["paired"]
    lines = ["", "## What this test split can see", ""]
    if stats.get("warning"):
        lines += [f"**Warning: {stats['warning']}.**", ""]
    detectable = stats["detectable_difference"]
    lines += [
        f"Assuming {text(stats['assumption'])} (as on this split), simulated "
        "through the gate's own bound:", "",
        "| | |", "|---|---|",
        f"| paired test images | {paired['n']} |",
        f"| discordant pairs (candidate-only right / production-only right) | "
        f"{paired['candidate_only']} / {paired['production_only']} |",
        f"| accuracy difference | {paired['difference']:+.4f} |",
        f"| {stats['confidence']:.0%} confidence bounds | {stats['difference_lower_bound']:+.4f} "
        f".. {stats['difference_upper_bound']:+.4f} |",
        "| smallest improvement detectable (80% of the time) | "
        + (f"{detectable:.4f} |" if detectable is not None else "none at this size |"),
    ]
    if "required_test_size" in stats:
        required = stats["required_test_size"]
        lines += [f"| chance an equally good candidate passes at this size | "
                  f"{stats['pass_rate_if_equal']:.1%} |",
                  f"| test size at which it passes 80% of the time | "
                  f"{required if required else 'over 10,000,000'} |",
                  f"| margin at which it passes 80% of the time at this size | "
                  f"{stats['required_margin']:.4f} |"]
    return lines


def worst_mistakes_html(rows: list[dict], images: dict[str, np.ndarray], labels: list[str],
                        limit: int = 24) -> str:
    wrong = [r for r in rows if int(np.argmax(r["probabilities"])) != r["label"]]
    wrong.sort(key=lambda r: -max(r["probabilities"]))
    figures = []
    for r in wrong[:limit]:
        predicted = int(np.argmax(r["probabilities"]))
        caption = (f"true {labels[r['label']]}, predicted {labels[predicted]} "
                   f"({r['probabilities'][predicted]:.2f})")
        figures.append(html_page.figure(images[r["sha256"]], caption))
    body = "".join(figures) or "<p>No misclassified test images.</p>"
    return html_page.page("Worst misclassified test images (most confident first)", body)
