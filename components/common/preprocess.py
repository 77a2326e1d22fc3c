"""Decoding and resizing shared by training input and the serving signature."""

from __future__ import annotations

import tensorflow as tf


def decode_resize(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes -> float32 ``[size, size, 3]`` pixels in 0-255."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size])
    return tf.ensure_shape(image, [image_size, image_size, 3])
