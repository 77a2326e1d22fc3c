"""Decoding and validation of single files (real Pillow and TensorFlow decoding)."""

import pytest
import tensorflow as tf

from components.common.images import InvalidImage, inspect_image, normalize_image
from tests.images_factory import invalid_variants, valid_variants

MAX_PIXELS = 4_000_000


@pytest.mark.parametrize("name,data", valid_variants().items())
def test_every_accepted_kind_normalises_to_what_tensorflow_decodes(name, data):
    info = inspect_image(data, min_side=32, max_pixels=MAX_PIXELS)
    normalized = normalize_image(data, MAX_PIXELS)
    decoded = tf.io.decode_image(normalized, channels=3, expand_animations=False)
    assert decoded.dtype == tf.uint8
    assert decoded.shape == (info.height, info.width, 3)


def test_exif_orientation_is_applied():
    data = valid_variants()["rotated.jpg"]
    info = inspect_image(data, 32, MAX_PIXELS)
    assert (info.width, info.height) == (40, 60) and info.needs_reencode


def test_plain_rgb_jpeg_is_kept_byte_for_byte():
    assert not inspect_image(valid_variants()["rgb.jpg"], 32, MAX_PIXELS).needs_reencode


def test_rgba_is_composited_on_white():
    data = valid_variants()["rgba.png"]
    decoded = tf.io.decode_image(normalize_image(data, MAX_PIXELS), channels=3).numpy()
    assert decoded.min() >= 127  # 50% alpha over white can't be darker than half grey


@pytest.mark.parametrize("name,case", invalid_variants().items())
def test_every_rejected_kind_has_its_reason(name, case):
    data, reason = case
    with pytest.raises(InvalidImage, match=f"^{reason}"):
        inspect_image(data, min_side=32, max_pixels=MAX_PIXELS)


def test_resize_on_write_caps_the_longer_side():
    from tests.images_factory import rgb

    out = normalize_image(rgb(200, 100, 3, "JPEG"), MAX_PIXELS, max_side=64)
    assert tf.io.decode_image(out).shape[:2] == (32, 64)
