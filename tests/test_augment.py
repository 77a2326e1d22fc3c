"""The augmentation's fast banded path against the exact projective transform."""

import numpy as np
import tensorflow as tf

from components.common.augment import _banded, _projective, augment_batch, sample_parameters
from components.common.augment_policy import AugmentPolicy


def smooth_batch(n=6, size=64):
    y, x = np.mgrid[0:size, 0:size].astype("float32")
    images = [128 + 100 * np.sin(x / (7 + i)) * np.cos(y / (9 + i)) for i in range(n)]
    return tf.constant(np.stack([np.stack([im] * 3, -1) for im in images]))


def test_banded_matches_the_exact_affine_map():
    images = smooth_batch()
    tf.random.set_seed(1)
    params = sample_parameters(AugmentPolicy(zoom_fraction=0.2, shear_degrees=10), 6)
    fast = _banded(images, params, band_rows=4).numpy()
    exact = _projective(images, params).numpy()
    inside = (exact > 0) & (fast > 0)  # both sampled inside the image
    assert inside.mean() > 0.6
    assert np.abs(fast - exact)[inside].mean() < 3.0  # of 0-255, from the sub-pixel shear


def test_flip_alone_mirrors_exactly():
    images = smooth_batch(2)
    params = {"flip": tf.constant([-1.0, 1.0]), "zoom": tf.ones([2]), "shear": tf.zeros([2]),
              "angle": tf.zeros([2])}
    out = _banded(images, params, 4).numpy()
    np.testing.assert_allclose(out[0], images.numpy()[0, :, ::-1], atol=1e-3)
    np.testing.assert_allclose(out[1], images.numpy()[1], atol=1e-3)


def test_rotation_uses_the_exact_transform_and_keeps_shape():
    out = augment_batch(smooth_batch(3, 60), AugmentPolicy(rotation_degrees=30,
                                                           contrast_fraction=0.2))
    assert out.shape == (3, 60, 60, 3)
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255
