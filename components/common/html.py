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


def line_chart(title: str, series: dict[str, list[float]], width: int = 420,
               height: int = 220) -> str:
    """An inline SVG line chart of one or more series over epochs (NaN points skipped)."""
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    values = [v for vs in series.values() for v in vs if v == v]
    if not values:
        return f"<p>{html.escape(title)}: no data</p>"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    longest = max(len(vs) for vs in series.values())
    pad = 30

    def point(i: int, v: float) -> str:
        x = pad + (width - 2 * pad) * (i / max(1, longest - 1))
        y = height - pad - (height - 2 * pad) * ((v - low) / span)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for color, (name, vs) in zip(colors, series.items(), strict=False):
        points = " ".join(point(i, v) for i, v in enumerate(vs) if v == v)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>'
                     f'<text x="{width - pad}" y="{pad + 14 * len(lines)}" fill="{color}" '
                     f'text-anchor="end" font-size="11">{html.escape(name)}</text>')
    return (f'<figure><svg width="{width}" height="{height}" role="img">'
            f'<text x="{pad}" y="16" font-size="13">{html.escape(title)}</text>'
            f'<text x="2" y="{pad}" font-size="10">{high:.3g}</text>'
            f'<text x="2" y="{height - pad}" font-size="10">{low:.3g}</text>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
            f'stroke="#999"/>{"".join(lines)}</svg></figure>')
