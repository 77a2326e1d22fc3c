"""Gradient clipping against a NumPy reference, and its measurement in real fits."""

import numpy as np
import pytest
from keras import ops

from components.train.clipping import clip_gradients

RNG = np.random.default_rng(0)
GRADS = [RNG.normal(size=(3, 3, 4, 5)).astype("float32") * 3, RNG.normal(size=(5,)).astype(
    "float32"), RNG.normal(size=(5, 2)).astype("float32")]
VARS = [RNG.normal(size=g.shape).astype("float32") * 0.1 for g in GRADS]


def reference(mode, t, eps=1e-3, exclude=()):
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in GRADS))
    if mode == "global_norm":
        return [g * min(1, t / norm) for g in GRADS], norm > t
    if mode == "norm":
        return [g * min(1, t / np.linalg.norm(g)) for g in GRADS], any(
            np.linalg.norm(g) > t for g in GRADS)
    if mode == "value":
        return [np.clip(g, -t, t) for g in GRADS], any(np.abs(g).max() > t for g in GRADS)
    out, hit = [], False
    for i, (g, w) in enumerate(zip(GRADS, VARS, strict=True)):
        if i in exclude:
            out.append(g)
            continue
        def unit(x):
            """Brock et al. 2021 (NFNets' optim.py): a vector is one unit (axis=None)."""
            if x.ndim <= 1:
                return np.sqrt((x**2).sum())
            return np.sqrt((x**2).sum(axis=tuple(range(x.ndim - 1)), keepdims=True))

        max_norm = t * np.maximum(unit(w), eps)
        g_norm = unit(g)
        trigger = g_norm > max_norm
        hit |= bool(trigger.any())
        out.append(np.where(trigger, g * max_norm / np.maximum(g_norm, 1e-6), g))
    return out, hit


@pytest.mark.parametrize("mode,threshold", [("global_norm", 5.0), ("global_norm", 1e6),
                                            ("norm", 2.0), ("value", 0.5), ("agc", 0.01)])
def test_matches_numpy(mode, threshold):
    exclude = frozenset({2}) if mode == "agc" else frozenset()
    clipped, norm, hit = clip_gradients([ops.convert_to_tensor(g) for g in GRADS],
                                        [ops.convert_to_tensor(v) for v in VARS], mode,
                                        threshold, agc_exclude=exclude)
    expected, expected_hit = reference(mode, threshold, exclude=exclude)
    for got, want in zip(clipped, expected, strict=True):
        np.testing.assert_allclose(ops.convert_to_numpy(got), want, rtol=1e-5, atol=1e-6)
    assert bool(ops.convert_to_numpy(hit)) == expected_hit
    np.testing.assert_allclose(float(norm), reference("global_norm", 1e9)[0] and np.sqrt(
        sum((g.astype(np.float64) ** 2).sum() for g in GRADS)), rtol=1e-5)


def test_agc_leaves_the_excluded_head_alone():
    clipped, _, _ = clip_gradients(GRADS, VARS, "agc", 1e-6, agc_exclude=frozenset({2}))
    np.testing.assert_array_equal(ops.convert_to_numpy(clipped[2]), GRADS[2])
    assert np.abs(ops.convert_to_numpy(clipped[0])).max() < np.abs(GRADS[0]).max()


def test_agc_scales_a_near_zero_vector_as_one_unit():
    """Element-wise, the zero entries of a bias would be clipped to threshold * eps (frozen);
    as one unit the whole gradient is scaled alike and keeps its direction."""
    bias, grad = np.array([0.0, 0.0, 0.5], "float32"), np.full(3, 0.1, "float32")
    [clipped], _, hit = clip_gradients([grad], [bias], "agc", 0.01)
    clipped = ops.convert_to_numpy(clipped)
    assert bool(ops.convert_to_numpy(hit))
    np.testing.assert_allclose(clipped, clipped[2], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(clipped), 0.01 * 0.5, rtol=1e-5)


def test_agc_exclusion_follows_the_path_when_a_variable_has_no_gradient():
    """The head is found by its path at clip time, not by an index taken at build time."""
    import keras

    from components.train.clipping import clipping_optimizer

    body, head = keras.layers.Dense(4, name="body"), keras.layers.Dense(2, name="classifier")
    head(body(np.ones((1, 3), "float32")))
    optimizer = clipping_optimizer(keras.optimizers.SGD, "agc", 1e-6,
                                   agc_exclude_names=("classifier",))
    optimizer.build(body.trainable_variables + head.trainable_variables)
    grads = [np.ones(v.shape, "float32") for v in head.trainable_variables]
    clipped = optimizer._clip_and_record(grads, head.trainable_variables)
    for got, want in zip(clipped, grads, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(got), want)


def test_autoclip_threshold_is_the_nearest_rank_percentile_of_the_norms_seen():
    from components.train.clipping import AUTOCLIP_MIN_STEPS, percentile_threshold

    history = np.zeros(8, "float32")
    history[:6] = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0]
    for seen, percentile, expected in ((6, 50, 3.0), (6, 95, 6.0), (6, 1, 1.0), (5, 95, 5.0)):
        assert float(percentile_threshold(history, seen, percentile)) == expected
    assert float(percentile_threshold(history, AUTOCLIP_MIN_STEPS - 1, 95)) == float("inf")
    full = np.arange(1, 9, dtype="float32")  # a full ring buffer: every entry counts
    assert float(percentile_threshold(full, 20, 50)) == 4.0


def test_autoclip_records_each_norm_and_the_threshold_it_applied():
    import keras

    from components.train.clipping import AUTOCLIP_MIN_STEPS, clipping_optimizer

    layer = keras.layers.Dense(1, use_bias=False)
    layer(np.ones((1, 1), "float32"))
    optimizer = clipping_optimizer(keras.optimizers.SGD, "autoclip", 50.0, learning_rate=0.0)
    optimizer.build(layer.trainable_variables)
    norms = [float(n) for n in range(1, AUTOCLIP_MIN_STEPS + 1)] + [100.0]
    for norm in norms:
        optimizer.apply([np.full((1, 1), norm, "float32")], layer.trainable_variables)
    stats = optimizer.read_clip_stats()
    assert stats["optimizer_steps"] == len(norms)
    assert stats["clip_rate"] == pytest.approx(1 / len(norms)), "only the outlier is clipped"
    assert stats["clip_threshold"] == 3.0, "the median of 1..5, applied once"
    assert stats["grad_norm_max"] == 100.0
    np.testing.assert_array_equal(ops.convert_to_numpy(optimizer.norm_history)[:len(norms)],
                                  norms)


@pytest.mark.parametrize("clip,keeps", [("autoclip", True), ("none", False)])
def test_one_poisoned_batch_costs_accuracy_unless_the_default_clipping_cuts_it(clip, keeps):
    """benchmarks/clipping_spike: batch 40 of 100 has rotated labels and 10,000 times the
    loss weight. Without clipping Adam takes the wrong step and then stalls (median 0.81
    against 0.98 clean); autoclip clips that one step and ends as the clean run does."""
    from benchmarks.clipping_spike import SPIKE, medians

    clean, _ = medians(clip, 3, 1.0)
    spiked, clipped = medians(clip, 3, SPIKE)
    assert clean >= 0.9
    if keeps:
        assert spiked >= clean - 0.01 and clipped <= 0.05
    else:
        assert spiked <= clean - 0.1
