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
