"""One poisoned batch, with and without the default clipping (#24).

A small classifier trains for 100 steps through the training step's own optimizer
(``components.train.run._compile``: AdamW, the configured clipping, the default loss), once
on clean data and once with batch 40 poisoned: its labels rotated and its loss weighted
10,000 times (a mislabelled shard behind a loss-scale or sample-weight bug). Adam's update
barely depends on the gradient's scale, but its second moment does: the spike inflates it
for hundreds of steps, so the wrong step is taken and learning then stalls. Prints the
median test accuracy and clipped-step share over seeds for each clip mode.
Usage: python -m benchmarks.clipping_spike [SEEDS]
"""

import statistics
import sys

import numpy as np

STEPS, BATCH, SPIKE_AT, SPIKE, DIMS = 100, 16, 40, 1e4, 16


def _blobs(seed: int, draw: int) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes whose means depend on ``seed``; ``draw`` picks the sample."""
    means = np.random.default_rng(seed).normal(size=(3, DIMS))
    rng = np.random.default_rng([seed, draw])
    labels = rng.integers(0, 3, STEPS * BATCH)
    x = means[labels] + rng.normal(size=(len(labels), DIMS))
    return x.astype("float32"), np.eye(3, dtype="float32")[labels]


def trial(clip: str, seed: int, spike: float = SPIKE) -> tuple[float, float]:
    """Test accuracy and clipped-step share of one training (``spike`` 1: clean)."""
    import keras

    from components.train.config import TrainConfig
    from components.train.run import _compile
    from components.train.runtime import Runtime

    keras.utils.set_random_seed(seed)
    x, y = _blobs(seed, 0)
    weights = np.ones(len(x), "float32")
    poisoned = slice(SPIKE_AT * BATCH, (SPIKE_AT + 1) * BATCH)
    y[poisoned] = np.roll(y[poisoned], 1, axis=1)
    weights[poisoned] = spike
    model = keras.Sequential([keras.Input((DIMS,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(3, activation="softmax", name="classifier")])
    cfg = TrainConfig.of(examples="e", output="o", clip=clip).validate().resolved()
    optimizer = _compile(model, cfg, Runtime(None, 1, [], "float32", False, True, 1), 1e-2)
    model.fit(x, y, sample_weight=weights, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    test_x, test_y = _blobs(seed, 1)
    accuracy = float(np.mean(model.predict(test_x, verbose=0).argmax(1) == test_y.argmax(1)))
    return accuracy, optimizer.read_clip_stats()["clip_rate"]


def medians(clip: str, seeds: int, spike: float) -> tuple[float, float]:
    runs = [trial(clip, seed, spike) for seed in range(seeds)]
    return (statistics.median(a for a, _ in runs), statistics.median(c for _, c in runs))


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"{'clip':<12} {'clean acc':>9} {'spiked acc':>10} {'clipped (spiked)':>16}")
    for clip in ("none", "autoclip", "global_norm", "agc"):
        clean, _ = medians(clip, seeds, 1.0)
        spiked, rate = medians(clip, seeds, SPIKE)
        print(f"{clip:<12} {clean:>9.3f} {spiked:>10.3f} {rate:>16.2f}", flush=True)


if __name__ == "__main__":
    main()
