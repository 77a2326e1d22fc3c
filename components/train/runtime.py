"""Devices, precision, XLA and the distribution strategy, resolved once at start-up."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass

from components.common.errors import ConfigError

log = logging.getLogger(__name__)
GPU_STEPS_PER_EXECUTION = 8


@dataclass(frozen=True)
class Runtime:
    strategy: object
    replicas: int
    gpus: list[str]
    precision: str
    jit_compile: bool
    deterministic: bool
    steps_per_execution: int
    workers: int = 1

    def describe(self) -> dict:
        import keras
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": keras.__version__,
                "python": platform.python_version(), "gpus": self.gpus,
                "replicas": self.replicas, "precision": self.precision,
                "xla": self.jit_compile, "deterministic": self.deterministic,
                "steps_per_execution": self.steps_per_execution, "workers": self.workers}


def _gpu_precision(gpus) -> str:
    import tensorflow as tf

    capabilities = [tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0))
                    for g in gpus]
    return "mixed_bfloat16" if min(capabilities) >= (8, 0) else "mixed_float16"


def use_xla(xla: str, gpus: int, workers: int = 1) -> bool:
    """XLA on one GPU of one process. With several devices, Keras jits the whole
    distributed step, which fails across them (Keras' own "auto" turns XLA off with
    tf.distribute)."""
    if xla == "on" and (gpus > 1 or workers > 1):
        raise ConfigError(f"--xla on with {gpus} GPUs and {workers} workers: Keras would jit "
                          "the whole distributed step, which fails across devices; use --xla "
                          "auto (off with several GPUs or workers) or --xla off")
    return xla == "on" or (xla == "auto" and gpus == 1 and workers == 1)


def resolve_runtime(precision: str = "auto", xla: str = "auto", deterministic: bool = True,
                    steps_per_execution: int = -1, workers: int = 1) -> Runtime:
    """Devices, precision, XLA and steps per execution (-1: ``GPU_STEPS_PER_EXECUTION`` on
    a GPU, where each compiled call costs a host round trip, 1 on a CPU). With ``workers``
    above 1 the strategy is ``MultiWorkerMirroredStrategy`` over ``TF_CONFIG``'s cluster,
    created after the devices are configured and before any op runs, as TensorFlow
    requires.
    ``deterministic`` turns TensorFlow's op determinism on for this process (it cannot be
    turned off again): same seed, same weights; on a GPU it costs speed, as some kernels
    have slower deterministic variants."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    if workers > 1:
        from components.train.workers import fix_keras_multi_worker_fit

        fix_keras_multi_worker_fit()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = (tf.distribute.MirroredStrategy() if len(gpus) > 1
                    else tf.distribute.get_strategy())
    if precision == "auto":
        precision = _gpu_precision(gpus) if gpus else "float32"
    keras.mixed_precision.set_global_policy(precision)
    jit = use_xla(xla, len(gpus), workers)
    if steps_per_execution == -1:
        steps_per_execution = GPU_STEPS_PER_EXECUTION if gpus else 1
    runtime = Runtime(strategy, strategy.num_replicas_in_sync, [g.name for g in gpus],
                      precision, jit, deterministic, steps_per_execution, workers)
    log.info("runtime: %s", runtime.describe())
    return runtime
