"""The evaluation report (Markdown) and the gallery of worst mistakes (HTML)."""

from __future__ import annotations

import numpy as np

from components.common import html as html_page

SCALARS = ("accuracy", "macro_f1", "weighted_f1", "log_loss", "ece")


def markdown(candidate: dict, baseline: dict | None, gate: dict, labels: list[str]) -> str:
    verdict = "PROMOTE" if gate["decision"] == "promote" else "REJECT"
    lines = [f"# Evaluation: **{verdict}**", "", f"Gate mode: {gate['mode']}", ""]
    lines += [f"- {reason}" for reason in gate["reasons"]]
    lines += ["", "| metric | candidate | production | delta |", "|---|---|---|---|"]
    for key in SCALARS:
        base = f"{baseline[key]:.4f}" if baseline else "-"
        delta = f"{candidate[key] - baseline[key]:+.4f}" if baseline else "-"
        lines.append(f"| {key} | {candidate[key]:.4f} | {base} | {delta} |")
    lines += ["", "| class | recall | production recall | precision |", "|---|---|---|---|"]
    for label in labels:
        c = candidate["per_class"][label]
        b = baseline["per_class"].get(label, {}).get("recall") if baseline else None
        lines.append(f"| {label} | {c['recall']:.3f} | {'-' if b is None else f'{b:.3f}'} "
                     f"| {c['precision']:.3f} |")
    lines += ["", "## Checks", "", "| check | passed | detail |", "|---|---|---|"]
    lines += [f"| {c['check']} | {c['passed']} | {c['detail']} |" for c in gate["checks"]]
    return "\n".join(lines) + "\n"


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
