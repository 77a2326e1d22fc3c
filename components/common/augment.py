"""The augmentation policy and its batched TensorFlow implementation.

One projective transform per image (flip, zoom, shear, rotation composed into a single
matrix) applied to the whole batch by one op, plus a vectorised contrast jitter: the
data step's preview and the training input run this same code.
"""

from __future__ import annotations

import math

import tensorflow as tf

from components.common.augment_policy import AugmentPolicy


def _uniform(batch: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([batch], low, high, dtype=tf.float32)


def affine_transforms(policy: AugmentPolicy, batch: tf.Tensor, height, width) -> tf.Tensor:
    """``[batch, 8]`` transforms mapping output pixels to input pixels."""
    one = tf.ones([batch])
    zero = tf.zeros([batch])
    flip = tf.where(_uniform(batch, 0, 1) < 0.5, -one, one) if policy.horizontal_flip else one
    zoom = _uniform(batch, 1 - policy.zoom_fraction, 1 + policy.zoom_fraction)
    shear = tf.tan(_uniform(batch, -1, 1) * math.radians(policy.shear_degrees))
    angle = _uniform(batch, -1, 1) * math.radians(policy.rotation_degrees)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # L = Rotation @ Shear @ Zoom @ Flip, acting on centred output coordinates.
    a00 = (cos * 1 + -sin * 0) * zoom * flip
    a01 = (cos * shear + -sin * 1) * zoom
    a10 = (sin * 1 + cos * 0) * zoom * flip
    a11 = (sin * shear + cos * 1) * zoom
    cx = (tf.cast(width, tf.float32) - 1) / 2
    cy = (tf.cast(height, tf.float32) - 1) / 2
    a02 = cx - (a00 * cx + a01 * cy)
    a12 = cy - (a10 * cx + a11 * cy)
    return tf.stack([a00, a01, a02, a10, a11, a12, zero, zero], axis=1)


def augment_batch(images: tf.Tensor, policy: AugmentPolicy) -> tf.Tensor:
    """Augment a float ``[B, H, W, 3]`` batch of 0-255 pixels."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=affine_transforms(policy, batch, height, width),
        output_shape=tf.stack([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )
    if policy.contrast_fraction:
        factor = _uniform(batch, 1 - policy.contrast_fraction, 1 + policy.contrast_fraction)
        mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
        images = tf.clip_by_value((images - mean) * factor[:, None, None, None] + mean, 0, 255)
    return images
