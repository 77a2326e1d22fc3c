"""Decoding and validation of single files (real Pillow and TensorFlow decoding)."""

import io

import numpy as np
import pytest
import tensorflow as tf

from components.common.images import InvalidImage, inspect_image, stored_image
from components.common.preprocess import decode_resize
from tests.images_factory import encode, invalid_variants, valid_variants

MAX_PIXELS = 4_000_000


@pytest.mark.parametrize("name,data", valid_variants().items())
def test_every_accepted_format_is_stored_as_it_came_and_tensorflow_decodes_it(name, data):
    """Training decodes the stored bytes with the decode serving uses: the same bytes,
    the same pixels (a JPEG-95 re-encode moved them by up to 55 levels)."""
    info = inspect_image(data, min_side=32, max_pixels=MAX_PIXELS)
    assert stored_image(data, MAX_PIXELS) == data == stored_image(data, MAX_PIXELS, 404)
    decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
    assert decoded.dtype == tf.uint8 and decoded.shape[:2] in ((info.height, info.width),
                                                               (info.width, info.height))


def _enlarged(data: bytes, factor: int = 10) -> bytes:
    """The same kind of file (format, mode, EXIF) ``factor`` times larger, so that the
    data step reduces it."""
    from PIL import Image

    small = Image.open(io.BytesIO(data))
    exif = small.info.get("exif")
    big = small.resize((small.width * factor, small.height * factor), Image.Resampling.BICUBIC)
    return encode(big, small.format, **({"exif": exif} if exif else {}))


@pytest.mark.parametrize("name", sorted(valid_variants()))
def test_a_reduced_copy_trains_on_what_serving_sees(name):
    """Every accepted format reduced by the data step (EXIF turned, alpha on white, 16-bit
    by its high byte as TensorFlow decodes it): its 32-px pixels are those served from the
    original file, within JPEG's rounding."""
    raw = _enlarged(valid_variants()[name])
    stored = stored_image(raw, MAX_PIXELS, 100)
    assert stored != raw and max(tf.io.decode_image(stored).shape[:2]) == 100
    served = decode_resize(tf.constant(raw), 32).numpy()
    trained = decode_resize(tf.constant(stored), 32).numpy()
    assert abs(served - trained).mean() < 1.5, name


def test_exif_orientation_is_applied():
    data = valid_variants()["rotated.jpg"]
    info = inspect_image(data, 32, MAX_PIXELS)
    assert (info.width, info.height) == (40, 60)


def test_a_16_bit_png_is_decoded_by_its_high_byte_as_tensorflow_does():
    from PIL import Image

    dim = Image.fromarray((np.arange(48 * 40).reshape(40, 48) % 200).astype(np.uint16))
    data = encode(dim, "PNG")
    assert tf.io.decode_image(data).numpy().max() == 0, "TensorFlow serves it black"
    assert inspect_image(data, 32, MAX_PIXELS).mode == "I;16"
    reduced = stored_image(_enlarged(data, 5), MAX_PIXELS, 100)
    assert tf.io.decode_image(reduced).numpy().max() == 0, "and so it is trained"


def test_rgba_is_composited_on_white():
    data = valid_variants()["rgba.png"]
    decoded = decode_resize(tf.constant(data), 32).numpy()
    assert decoded.min() >= 127  # 50% alpha over white can't be darker than half grey


@pytest.mark.parametrize("name,case", invalid_variants().items())
def test_every_rejected_kind_has_its_reason(name, case):
    data, reason = case
    with pytest.raises(InvalidImage, match=f"^{reason}"):
        inspect_image(data, min_side=32, max_pixels=MAX_PIXELS)


def test_resize_on_write_caps_the_longer_side():
    from tests.images_factory import rgb

    out = stored_image(rgb(200, 100, 3, "JPEG"), MAX_PIXELS, max_side=64)
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
    trained = decode_resize(tf.constant(stored_image(data, MAX_PIXELS, 48)), 32).numpy()
    assert abs(served - trained).mean() < 1.5
    if orientation != 1:
        plain = tf.image.resize(tf.io.decode_image(data, channels=3), [32, 32]).numpy()
        assert abs(plain - trained).mean() > 10, "the photo must look different unrotated"


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
