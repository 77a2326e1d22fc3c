"""Self-contained HTML for the Kubeflow UI: pictures embedded as PNG data URIs."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    "figure{display:inline-block;margin:4px;text-align:center;font-size:12px}"
    "img{image-rendering:pixelated}"
)


def png_data_uri(pixels: np.ndarray) -> str:
    """uint8 (or 0-255 float) ``[H, W, 3]`` pixels -> ``data:image/png;base64,...``."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def figure(pixels: np.ndarray, caption: str, width: int = 128) -> str:
    return (f'<figure><img src="{png_data_uri(pixels)}" width="{width}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{body}</body></html>")


def _tick(value: float) -> str:
    return f"{value:.3g}"


def line_chart(title: str, series: dict[str, list[float]], y_label: str,
               x_label: str = "epoch", markers: dict[int, str] | None = None,
               width: int = 460, height: int = 250) -> str:
    """An inline SVG line chart over epochs (NaN points skipped): labelled axes, a tick per
    epoch (numbered from 1) and vertical ``markers`` (index -> label, e.g. a phase
    boundary)."""
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
              "#7f7f7f", "#bcbd22", "#17becf")
    values = [v for vs in series.values() for v in vs if v == v]
    if not values:
        return f"<p>{html.escape(title)}: no data</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    longest = max(len(vs) for vs in series.values())
    left, right, top, bottom = 64, 16, 26, 40

    def x(i: float) -> float:
        return left + (width - left - right) * (i / max(1, longest - 1))

    def y(v: float) -> float:
        return height - bottom - (height - top - bottom) * ((v - low) / span)

    parts = [f'<text x="{left}" y="16" font-size="13">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
             f'y2="{height - bottom}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
             f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="11" '
             f'text-anchor="middle">{html.escape(x_label)}</text>',
             f'<text transform="translate(12,{(top + height - bottom) / 2}) rotate(-90)" '
             f'font-size="11" text-anchor="middle">{html.escape(y_label)}</text>']
    step = max(1, round(longest / 12))
    for i in range(0, longest, step):
        parts.append(f'<line x1="{x(i):.1f}" y1="{height - bottom}" x2="{x(i):.1f}" '
                     f'y2="{height - bottom + 4}" stroke="#999"/><text x="{x(i):.1f}" '
                     f'y="{height - bottom + 15}" font-size="10" text-anchor="middle">'
                     f"{i + 1}</text>")
    for v in (low, (low + high) / 2, high):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{_tick(v)}</text>')
    for i, label in (markers or {}).items():
        parts.append(f'<line x1="{x(i - 0.5):.1f}" y1="{top}" x2="{x(i - 0.5):.1f}" '
                     f'y2="{height - bottom}" stroke="#888" stroke-dasharray="2,3"/>'
                     f'<text x="{x(i - 0.5) + 3:.1f}" y="{top + 10}" font-size="10" '
                     f'fill="#555">{html.escape(label)}</text>')
    for n, (color, (name, vs)) in enumerate(zip(colors, series.items(), strict=False)):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if v == v)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{points}"/><text x="{width - right}" y="{top + 12 + 13 * n}" '
                     f'fill="{color}" text-anchor="end" font-size="11">'
                     f"{html.escape(name)}</text>")
    return (f'<figure><svg width="{width}" height="{height}" role="img" '
            f'aria-label="{html.escape(title)}">{"".join(parts)}</svg></figure>')
