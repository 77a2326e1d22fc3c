"""Image decoding and validation with Pillow: one path for every accepted format."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SUPPORTED_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")  # all decoded by TensorFlow too
LOSSY_FORMATS = ("JPEG", "WEBP")
KEEP_AS_IS_MODES = ("RGB", "L")
JPEG_QUALITY = 95  # a resized copy of a lossy source; a lossless source stays lossless


class InvalidImage(Exception):
    """The bytes are not an image this product accepts; ``str(err)`` is the skip reason."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    mode: str
    dhash: str


def _open(data: bytes, max_pixels: int, load: bool = True) -> Image.Image:
    if not data:
        raise InvalidImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        raise InvalidImage("not an image (unrecognised format)") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise InvalidImage(f"too many pixels (decompression-bomb guard): {err}") from err
    except (OSError, SyntaxError, ValueError) as err:  # e.g. a PNG text chunk too large
        raise InvalidImage(f"corrupt or hostile image header: {err}") from err
    if img.format not in SUPPORTED_FORMATS:
        raise InvalidImage(
            f"unsupported format {img.format}; convert to one of {', '.join(SUPPORTED_FORMATS)}"
        )
    width, height = img.size
    if width * height > max_pixels:
        raise InvalidImage(
            f"too many pixels: {width}x{height} > {max_pixels} (decompression-bomb guard); "
            "raise --max-pixels if the image is genuine"
        )
    if load:
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as err:
            raise InvalidImage(f"truncated or corrupt image data: {err}") from err
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """EXIF orientation applied, then RGB (or L); alpha is composited on white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in KEEP_AS_IS_MODES:
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # TensorFlow's decoder keeps the high byte of 16-bit samples (libpng's strip_16):
        # a 16-bit grey PNG whose values stay below 256 is served nearly black, so it is
        # stored so, not stretched to look right in training only.
        pixels = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(pixels // 256, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def difference_hash(img: Image.Image) -> str:
    """64-bit dHash: robust to resizing and recompression, for near-duplicate grouping."""
    small = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Any failure of Pillow on untrusted bytes (its plugins raise many types: a bad EXIF
    block, a broken palette) becomes :class:`InvalidImage`: one file, one skip reason."""
    try:
        yield
    except InvalidImage:
        raise
    except Exception as err:  # noqa: BLE001 - untrusted input: whatever breaks, skip the file
        raise InvalidImage(f"cannot be decoded safely: {type(err).__name__}: {err}") from err


def inspect_image(data: bytes, min_side: int, max_pixels: int) -> ImageInfo:
    """Fully decode ``data`` and describe it, or raise :class:`InvalidImage` with the reason."""
    with _decoding():
        return _inspect(data, min_side, max_pixels)


def _inspect(data: bytes, min_side: int, max_pixels: int) -> ImageInfo:
    img = _open(data, max_pixels)
    source_format, source_mode = img.format, img.mode
    rgb = _to_rgb(img)
    width, height = rgb.size
    if min(width, height) < min_side:
        raise InvalidImage(f"too small: {width}x{height}, the shorter side must be >= {min_side}")
    return ImageInfo(
        width=width,
        height=height,
        format=source_format,
        mode=source_mode,
        dhash=difference_hash(rgb),
    )


def stored_image(data: bytes, max_pixels: int, max_side: int = 0) -> bytes:
    """The bytes the data step stores for an accepted image.

    An image whose longest side is at most ``max_side`` (or any, with 0) is stored as it
    came: TensorFlow decodes every accepted format, EXIF orientation, alpha, palettes, CMYK
    and 16-bit samples in training exactly as it does in serving, so the trained pixels are
    the served pixels (a re-encode at JPEG quality 95 moved them by up to 55 levels). A
    larger one is turned upright, reduced with Pillow's antialiased Lanczos (JPEG sources
    decoded at a reduced DCT scale first, as ``thumbnail`` does) and stored as JPEG (lossy
    sources, full-resolution colour: 4:2:0 moved colourful pixels 2-6 levels) or PNG
    (lossless ones)."""
    with _decoding():
        img = _open(data, max_pixels, load=False)
        if not max_side or max(img.size) <= max_side:
            return data
        return _reduced(img, max_side)


def _reduced(img: Image.Image, max_side: int) -> bytes:
    lossy = img.format in LOSSY_FORMATS
    scale = 2 * max_side / max(img.size)  # decode at no less than twice the target
    img.draft(None, (round(img.width * scale), round(img.height * scale)))
    rgb = _to_rgb(img)
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if lossy:
        rgb.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4 colour
    else:
        rgb.save(out, format="PNG")
    return out.getvalue()
