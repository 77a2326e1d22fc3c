"""A deterministic, class-separable demo image set (no public data set is reachable)."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from components.common import storage
from components.common.errors import ConfigError

SHAPES = ("disc", "square", "triangle", "stripes", "ring", "cross")


def _draw(rng: np.random.Generator, class_index: int, n_classes: int, size: int) -> Image.Image:
    aspect = rng.uniform(0.75, 1.33)
    width = max(32, int(size * rng.uniform(0.8, 1.25)))
    height = max(32, int(width / aspect))
    hue = class_index / n_classes
    fg = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, rng.uniform(0.75, 1.0)))
    bg_level = rng.integers(20, 90)
    noise = rng.integers(-15, 16, size=(height, width, 3))
    background = np.clip(bg_level + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(img)
    shape = SHAPES[class_index % len(SHAPES)]
    side = min(width, height)
    r = side * rng.uniform(0.25, 0.4)
    cx = width / 2 + rng.uniform(-0.15, 0.15) * width
    cy = height / 2 + rng.uniform(-0.15, 0.15) * height
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "disc":
        draw.ellipse(box, fill=fg)
    elif shape == "square":
        draw.rectangle(box, fill=fg)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    elif shape == "stripes":
        step = max(4, int(side / 8))
        for x in range(0, width, 2 * step):
            draw.rectangle((x, 0, x + step - 1, height), fill=fg)
    elif shape == "ring":
        draw.ellipse(box, outline=fg, width=max(3, int(r / 3)))
    else:
        draw.rectangle((cx - r, cy - r / 4, cx + r, cy + r / 4), fill=fg)
        draw.rectangle((cx - r / 4, cy - r, cx + r / 4, cy + r), fill=fg)
    return img


def write_demo_data(
    out: str, classes: int = 3, per_class: int = 40, size: int = 96, seed: int = 0
) -> dict[str, int]:
    """Write ``classes`` folders of ``per_class`` JPEG/PNG images; returns counts per class."""
    if not storage.is_local(out):
        raise ConfigError(f"OUT {out}: demo data is written to a local folder; copy it to the "
                          "bucket afterwards")
    if not 2 <= classes <= len(SHAPES) * 4:
        raise ConfigError(f"--classes {classes}: use 2 to {len(SHAPES) * 4}")
    if per_class < 1:
        raise ConfigError(f"--per-class {per_class}: use at least 1")
    if size < 32:
        raise ConfigError(f"--size {size}: use at least 32 pixels")
    rng = np.random.default_rng(seed)
    counts = {}
    for c in range(classes):
        name = f"class_{c:02d}_{SHAPES[c % len(SHAPES)]}"
        folder = Path(out, name)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = _draw(rng, c, classes, size)
            if i % 3 == 2:
                img.save(folder / f"{i:05d}.png")
            else:
                img.save(folder / f"{i:05d}.jpg", quality=90)
        counts[name] = per_class
    return counts


def camera_photo(width: int = 4000, height: int = 3000, seed: int = 0) -> bytes:
    """A phone-camera-sized JPEG (12 MP by default, quality 92): a smooth scene, a fine
    texture near the pixel pitch and sensor noise, which is what a resize without
    antialiasing keeps. For tests and benchmarks of photo-size input."""
    import io

    rng = np.random.default_rng(seed)
    scene = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC)
    pixels = np.asarray(scene, dtype=np.float32)
    y, x = np.ogrid[0:height, 0:width]
    pixels += (25 * np.sin((x + 2 * y) * 1.9 + rng.uniform(0, 3))).astype(np.float32)[..., None]
    pixels += rng.normal(0, 12, (height, width, 1)).astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=92)
    return out.getvalue()
