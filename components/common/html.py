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
    "td{font-variant-numeric:tabular-nums}code{background:#f4f4f4;padding:0 3px}"
    ".outcome{border-left:8px solid #5f6368;background:#f1f3f4;padding:4px 16px;margin:8px 0}"
    ".outcome .decision{font-size:22px;font-weight:bold;margin:8px 0}"
    ".outcome.promote{border-color:#1e8e3e;background:#e6f4ea}"
    ".outcome.promote .decision{color:#1e8e3e}"
    ".outcome.reject,.outcome.failed{border-color:#d93025;background:#fce8e6}"
    ".outcome.reject .decision,.outcome.failed .decision{color:#d93025}"
    "table.confusion td{text-align:right;min-width:3em}"
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
