"""Statistics, the Markdown data report and the augmentation preview of the data step."""

from __future__ import annotations

import html
from collections import Counter

import numpy as np

from components.common import html as html_page
from components.common.augment_policy import AugmentPolicy
from components.common.markdown import cell
from components.prepare_data.config import SPLITS


def compute_stats(manifest: list[dict], labels: list[str], fingerprint: str) -> dict:
    accepted = [r for r in manifest if r["status"] == "accepted"]
    per_split = {s: Counter(r["label"] for r in accepted if r["split"] == s) for s in SPLITS}
    per_class = Counter(r["label"] for r in accepted)
    sizes = np.array([[r["width"], r["height"]] for r in accepted] or [[0, 0]])
    return {
        "fingerprint": fingerprint,
        "inputs": len(manifest),
        "accepted": len(accepted),
        "skipped": len(manifest) - len(accepted),
        "labels": labels,
        "counts": {s: {label: per_split[s].get(label, 0) for label in labels} for s in SPLITS},
        "split_totals": {s: sum(per_split[s].values()) for s in SPLITS},
        "class_totals": {label: per_class.get(label, 0) for label in labels},
        "imbalance_ratio": round(max(per_class.values()) / max(1, min(per_class.values())), 3),
        "skip_reasons": dict(Counter(_reason_kind(r["reason"]) for r in manifest
                                     if r["status"] == "skipped").most_common()),
        "image_size": {
            "min": sizes.min(axis=0).tolist(),
            "median": np.median(sizes, axis=0).tolist(),
            "max": sizes.max(axis=0).tolist(),
        },
    }


def _reason_kind(reason: str) -> str:
    """Group reasons by their stable prefix (before any file-specific detail)."""
    for sep in (":", " of ", " with ", " ("):
        reason = reason.split(sep)[0]
    return reason.strip()


def markdown_report(stats: dict, policy: AugmentPolicy) -> str:
    lines = [
        "# Data report",
        "",
        f"- inputs: **{stats['inputs']}**, accepted **{stats['accepted']}**, "
        f"skipped **{stats['skipped']}**",
        f"- data fingerprint: `{stats['fingerprint'][:16]}`",
        f"- class imbalance (largest / smallest class): **{stats['imbalance_ratio']}**",
        "",
        "| class | " + " | ".join(SPLITS) + " | total |",
        "|---|" + "---|" * (len(SPLITS) + 1),
    ]
    for label in stats["labels"]:
        row = [str(stats["counts"][s][label]) for s in SPLITS]
        lines.append(f"| {cell(label)} | " + " | ".join(row) +
                     f" | {stats['class_totals'][label]} |")
    lines.append("| **total** | " + " | ".join(str(stats["split_totals"][s]) for s in SPLITS)
                 + f" | {stats['accepted']} |")
    lines += ["", "## Skipped files", ""]
    if stats["skip_reasons"]:
        lines += ["| reason | files |", "|---|---|"]
        lines += [f"| {cell(reason)} | {n} |" for reason, n in stats["skip_reasons"].items()]
        lines.append("\nEvery skipped file and its full reason is in `manifest.jsonl`.")
    else:
        lines.append("None.")
    lines += ["", "## Augmentation policy (training split only)", ""]
    lines += [f"- {key}: {value}" for key, value in policy.to_dict().items()]
    return "\n".join(lines) + "\n"


def preview_html(originals: list[tuple[str, np.ndarray]], augmented: list[list[np.ndarray]],
                 policy: AugmentPolicy) -> str:
    rows = []
    for (label, original), variants in zip(originals, augmented, strict=True):
        cells = [html_page.figure(original, f"{label} (original)")]
        cells += [html_page.figure(v, f"augmented {i + 1}") for i, v in enumerate(variants)]
        rows.append("<div>" + "".join(cells) + "</div>")
    settings = ", ".join(f"{k}={html.escape(str(v))}" for k, v in policy.to_dict().items())
    return html_page.page(
        "Augmentation preview",
        f"<p>Training images through the policy training will use: {settings}. "
        "Validation and test images are never augmented.</p>" + "".join(rows),
    )
