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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_tensorflow_decode_turns_photos_upright_as_the_data_step_does(fmt, orientation):
    """Serving decodes raw uploads; training saw the data step's upright copies."""
    from components.common.preprocess import decode_resize, exif_orientation
    from tests.images_factory import photo, with_orientation

    data = with_orientation(photo(64, 40, orientation), orientation, fmt)
    assert int(exif_orientation(tf.constant(data))) == orientation
    served = decode_resize(tf.constant(data), 32).numpy()
    trained = decode_resize(tf.constant(normalize_image(data, MAX_PIXELS)), 32).numpy()
    assert abs(served - trained).mean() < 1.5
    if orientation != 1:
        plain = tf.image.resize(tf.io.decode_image(data, channels=3), [32, 32]).numpy()
        assert abs(plain - trained).mean() > 10, "the photo must look different unrotated"


@pytest.mark.parametrize("name", ["rgba.png", "gray.png", "palette.gif", "bitmap.bmp"])
def test_the_tensorflow_decode_composites_alpha_as_the_data_step_does(name):
    from components.common.preprocess import decode_resize

    data = valid_variants()[name]
    served = decode_resize(tf.constant(data), 32).numpy()
    trained = decode_resize(tf.constant(normalize_image(data, MAX_PIXELS)), 32).numpy()
    assert abs(served - trained).max() < 1e-3


def test_exif_orientation_of_other_bytes_is_upright():
    from components.common.preprocess import exif_orientation

    for data in (valid_variants()["rgb.jpg"], b"GIF89a", b"\xff\xd8\xff\xe1\x00", b""):
        assert int(exif_orientation(tf.constant(data))) == 1


def test_a_corrupt_exif_offset_reads_as_upright():
    """Offsets past the end (or negative) in the TIFF block must not fail serving."""
    from components.common.preprocess import exif_orientation

    app1 = b"Exif\0\0" + b"MM\0*" + b"\xff\xff\xff\xf0"
    data = b"\xff\xd8\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    assert int(exif_orientation(tf.constant(data))) == 1
    app1 = b"Exif\0\0" + b"II*\0" + (10**6).to_bytes(4, "little")
    data = b"\xff\xd8\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    assert int(exif_orientation(tf.constant(data))) == 1
