"""Image files of every kind the data step must accept or reject, made on the fly."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageFile


def pixels(w: int, h: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)


def photo(w: int, h: int, seed: int) -> np.ndarray:
    """Smooth, photo-like pixels (JPEG keeps them close, unlike noise), no symmetry."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(x * rng.uniform(2, 6) + y * rng.uniform(1, 3) + rng.uniform(0, 3))
                + 2 * x * rng.uniform(-1, 1) for _ in range(3)]
    image = np.stack(channels, -1)
    image[: h // 3, : w // 4] += 1.5  # a bright corner: rotations and flips move it
    return np.clip((image - image.min()) / np.ptp(image) * 255, 0, 255).astype(np.uint8)


def with_orientation(pixels_: np.ndarray, orientation: int, fmt: str = "JPEG") -> bytes:
    """``pixels_`` stored with an EXIF orientation tag (as a phone stores a photo)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(pixels_), fmt, exif=exif.tobytes(), **(
        {"quality": 95} if fmt == "JPEG" else {}))


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kwargs)
    return out.getvalue()


def rgb(w=48, h=40, seed=0, fmt="PNG") -> bytes:
    return encode(Image.fromarray(pixels(w, h, seed)), fmt)


def valid_variants(seed: int = 100) -> dict[str, bytes]:
    """File name -> bytes for every colour mode and format that must be accepted."""
    base = Image.fromarray(pixels(48, 40, seed))
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    exif = Image.Exif()
    exif[0x0112] = 6
    sixteen = Image.fromarray(pixels(48, 40, seed + 1)[..., 0].astype(np.uint16) * 257)
    return {
        "rgb.jpg": encode(base, "JPEG"),
        "gray.png": encode(base.convert("L"), "PNG"),
        "rgba.png": encode(rgba, "PNG"),
        "cmyk.jpg": encode(Image.fromarray(pixels(48, 40, seed + 2)).convert("CMYK"), "JPEG"),
        "sixteen.png": encode(sixteen, "PNG"),
        "palette.gif": encode(Image.fromarray(pixels(48, 40, seed + 3)).convert("P"), "GIF"),
        "bitmap.bmp": encode(Image.fromarray(pixels(48, 40, seed + 4)), "BMP"),
        "lossy.webp": encode(Image.fromarray(pixels(48, 40, seed + 5)), "WEBP"),
        "rotated.jpg": encode(Image.fromarray(pixels(60, 40, seed + 6)), "JPEG", exif=exif),
    }


def png_with_chunk(png: bytes, kind: bytes, payload: bytes) -> bytes:
    """``png`` with one more chunk right after its header (where text and ICC chunks sit)."""
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(
        ">I", zlib.crc32(kind + payload))
    return png[:33] + chunk + png[33:]


def text_bomb_png() -> bytes:
    """A 14 KB PNG whose zTXt chunk inflates to twice Pillow's text-chunk limit."""
    payload = b"Comment\x00\x00" + zlib.compress(b"\x00" * (2 * ImageFile.SAFEBLOCK))
    return png_with_chunk(rgb(64, 64, 3, "PNG"), b"zTXt", payload)


def invalid_variants() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, expected start of the skip reason)."""
    full = rgb(64, 64, 7, "JPEG")
    return {
        "empty.jpg": (b"", "empty file"),
        "notes.jpg": (b"this is text, not pixels\n" * 4, "not an image"),
        "truncated.jpg": (full[: len(full) // 2], "truncated or corrupt"),
        "tiny.png": (rgb(16, 16, 8), "too small"),
        "huge.png": (encode(Image.new("L", (3000, 3000)), "PNG"), "too many pixels"),
        "scan.tiff": (encode(Image.fromarray(pixels(48, 40, 9)), "TIFF"), "unsupported format"),
        "text-bomb.png": (text_bomb_png(), "corrupt or hostile image header"),
    }

