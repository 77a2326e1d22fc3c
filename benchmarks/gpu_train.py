"""Training images/s through our model-building and clipping-optimizer code on Keras' JAX
backend, with synthetic in-memory 224-px batches: float32 vs mixed bfloat16 (XLA: JAX
always compiles the train step), BN policies ``full`` and ``bn_only``, ``global_norm``
clipping on. The JAX run uses Keras' own JAX train step (our TF BackupAndRestore and
tf.data are not involved); the clipping runs in the optimizer mixin's non-TF branch.
Runs on CPU (small defaults); on a GPU machine pass e.g. ``--batch 256 --steps 30``.
Reports the fraction of an H100's 989 TFLOP/s bf16 peak (training ~23.2 GFLOP/image).
Usage: python -m benchmarks.gpu_train [--batch 8 --steps 3 --size 224]
"""

import argparse
import json
import os
import statistics
import time

os.environ["KERAS_BACKEND"] = "jax"

GFLOP_PER_IMAGE = 23.2
H100_BF16_TFLOPS = 989.0


def measure(policy: str, precision: str, batch: int, steps: int, size: int) -> float:
    import keras
    import numpy as np

    from components.train import model as model_lib
    from components.train.clipping import clipping_optimizer

    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = model_lib.build_model(10, size, "none", 0.2)
    model_lib.apply_bn_policy(model, policy)
    model.compile(optimizer=clipping_optimizer(keras.optimizers.Adam, "global_norm", 1.0,
                                               learning_rate=1e-3),
                  loss="categorical_crossentropy", jit_compile=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch * steps, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, batch * steps), 10)
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        times.append(time.perf_counter() - start)
    stats = model.optimizer.read_clip_stats() if hasattr(model.optimizer, "read_clip_stats") \
        else model.optimizer.inner_optimizer.read_clip_stats()
    assert stats["optimizer_steps"] > 0, "clipping statistics were not recorded"
    return batch * steps / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    import jax
    import keras

    devices = [d.device_kind for d in jax.devices()]
    print(f"Keras {keras.__version__} on JAX {jax.__version__}, devices {devices}, batch "
          f"{args.batch}, {args.size} px")
    results = {}
    for policy in ("full", "bn_only"):
        for precision in ("float32", "mixed_bfloat16"):
            rate = measure(policy, precision, args.batch, args.steps, args.size)
            peak = rate * GFLOP_PER_IMAGE / (H100_BF16_TFLOPS * 1000)
            results[f"{policy}/{precision}"] = rate
            print(f"  {policy:<8} {precision:<15} {rate:>9.1f} img/s   "
                  f"{100 * peak:6.3f}% of H100 bf16 peak")
        print(f"  {policy:<8} bf16 / float32 speed-up "
              f"{results[f'{policy}/mixed_bfloat16'] / results[f'{policy}/float32']:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
