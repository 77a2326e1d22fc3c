"""Gradient clipping on the aggregated gradient, measured every step.

``clip_gradients`` is pure ``keras.ops`` (any Keras backend). ``ClippingMixin`` puts it
in an optimizer's update step: after the TensorFlow replica all-reduce (Keras' own
``clipnorm`` clips each replica's partial gradient before aggregation), after
loss-scale unscaling (``loss_scale.AgreedLossScaleOptimizer`` calls it only when the
gradients are finite on every replica, so overflow steps never reach it), and it records
the pre-clip global norm, whether the step was clipped and the threshold used in
optimizer variables, so the numbers survive XLA compilation.

``autoclip`` (Seetharaman et al. 2020, AutoClip) clips the global norm at a percentile of
the pre-clip norms this optimizer has seen (the last ``AUTOCLIP_WINDOW`` steps), once it
has seen ``AUTOCLIP_MIN_STEPS``: at a high percentile it cuts the outlier step, not every
step, whatever the model's gradient scale.
"""

from __future__ import annotations

import keras
from keras import ops

from components.train.config import CLIP_MODES as MODES

TESTED_KERAS = "3.15."


def require_tested_keras(version: str) -> None:
    """The mixin re-implements ``_backend_update_step`` and calls Keras' private
    ``_all_reduce_sum_gradients``: if Keras moved its aggregation, gradients could be
    all-reduced twice. Refuse any Keras this was not verified against."""
    if not version.startswith(TESTED_KERAS):
        raise ImportError(f"components.train.clipping relies on Keras {TESTED_KERAS}x internals "
                          f"(optimizer aggregation); found Keras {version}. Install "
                          f"keras=={TESTED_KERAS}* (pyproject pins it) or re-verify "
                          "clipping after the all-reduce on the new version")


require_tested_keras(keras.__version__)

# stats vector: [sum of pre-clip global norms, max norm, steps, clipped steps,
#                sum of the thresholds applied, steps a threshold applied to]
STAT_FIELDS = 6
AUTOCLIP_WINDOW = 1000
AUTOCLIP_MIN_STEPS = 5


def global_norm(grads) -> keras.KerasTensor:
    return ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads))


def unitwise_norm(x):
    """Norm per output unit: over all axes but the last. Vectors and scalars (biases, BN
    scale and shift) are one unit, as in the NFNets reference (``axis=None``): an
    element-wise norm would all but freeze their near-zero entries."""
    x = ops.cast(x, "float32")
    if len(x.shape) <= 1:
        return ops.sqrt(ops.sum(ops.square(x)))
    axes = tuple(range(len(x.shape) - 1))
    return ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True))


def clip_gradients(grads, variables, mode: str, threshold: float, agc_eps: float = 1e-3,
                   agc_exclude: frozenset[int] = frozenset()):
    """Returns ``(clipped_grads, pre_clip_global_norm, was_clipped)``.

    ``agc``: adaptive gradient clipping (Brock et al. 2021): each unit's gradient is
    scaled down to ``threshold * max(|w_unit|, agc_eps)`` when larger; ``agc_exclude``
    holds indices of variables left unclipped (the final classifier layer).
    """
    norm = global_norm(grads)
    if mode == "none":
        return list(grads), norm, ops.convert_to_tensor(False)
    if mode == "global_norm":
        scale = ops.minimum(1.0, threshold / ops.maximum(norm, 1e-12))
        return [g * ops.cast(scale, g.dtype) for g in grads], norm, norm > threshold
    if mode == "value":
        clipped = [ops.clip(g, -threshold, threshold) for g in grads]
        hit = ops.any(ops.stack([ops.max(ops.abs(g)) > threshold for g in grads]))
        return clipped, norm, hit
    if mode == "norm":
        norms = [ops.sqrt(ops.sum(ops.square(ops.cast(g, "float32")))) for g in grads]
        clipped = [g * ops.cast(ops.minimum(1.0, threshold / ops.maximum(n, 1e-12)), g.dtype)
                   for g, n in zip(grads, norms, strict=True)]
        return clipped, norm, ops.any(ops.stack([n > threshold for n in norms]))
    if mode == "agc":
        clipped, hits = [], []
        for i, (g, v) in enumerate(zip(grads, variables, strict=True)):
            if i in agc_exclude:
                clipped.append(g)
                continue
            max_norm = threshold * ops.maximum(unitwise_norm(v), agc_eps)
            g_norm = unitwise_norm(g)
            trigger = g_norm > max_norm
            scaled = ops.cast(g, "float32") * (max_norm / ops.maximum(g_norm, 1e-6))
            clipped.append(ops.cast(ops.where(trigger, scaled, ops.cast(g, "float32")), g.dtype))
            hits.append(ops.any(trigger))
        hit = ops.any(ops.stack(hits)) if hits else ops.convert_to_tensor(False)
        return clipped, norm, hit
    raise ValueError(f"unknown clip mode {mode!r}; use one of {MODES}")


def percentile_threshold(history, seen, percentile: float,
                         min_steps: int = AUTOCLIP_MIN_STEPS):
    """The nearest-rank ``percentile`` of the first ``min(seen, len(history))`` entries
    of ``history`` (a ring buffer of norms); infinite (no clipping) before ``min_steps``."""
    size = history.shape[0]
    filled = ops.minimum(ops.cast(seen, "float32"), float(size))
    ordered = ops.sort(ops.where(ops.arange(size, dtype="float32") < filled, history,
                                 float("inf")))
    rank = ops.clip(ops.cast(ops.ceil(percentile / 100.0 * filled), "int32") - 1, 0, size - 1)
    return ops.where(filled >= min_steps, ops.take(ordered, rank), float("inf"))


class ClippingMixin:
    """Mix into a Keras optimizer class: clip the aggregated gradient and record stats.
    The clip settings are in ``get_config``, so a saved model resumes training as it was."""

    def __init__(self, *args, clip_mode: str = "none", clip_threshold: float = 1.0,
                 agc_eps: float = 1e-3, agc_exclude_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.clip_mode = clip_mode
        self.clip_threshold = clip_threshold
        self.agc_eps = agc_eps
        self.agc_exclude_names = tuple(agc_exclude_names)

    def get_config(self):
        return {**super().get_config(), "clip_mode": self.clip_mode,
                "clip_threshold": self.clip_threshold, "agc_eps": self.agc_eps,
                "agc_exclude_names": list(self.agc_exclude_names)}

    def build(self, variables):
        super().build(variables)
        self.clip_stats = self.add_variable(
            shape=(STAT_FIELDS,), initializer="zeros", dtype="float32", name="clip_stats",
            aggregation="only_first_replica",
        )
        if self.clip_mode == "autoclip":
            self.norm_history = self.add_variable(
                shape=(AUTOCLIP_WINDOW,), initializer="zeros", dtype="float32",
                name="norm_history", aggregation="only_first_replica")
            self.norms_seen = self.add_variable(
                shape=(), initializer="zeros", dtype="float32", name="norms_seen",
                aggregation="only_first_replica")

    def _clip_and_record(self, grads, variables):
        # Matched on the path of the variables of this step: indices taken at build time
        # would shift when a variable gets no gradient.
        exclude = frozenset(i for i, v in enumerate(variables)
                            if any(name in v.path for name in self.agc_exclude_names))
        if self.clip_mode == "autoclip":
            threshold = percentile_threshold(self.norm_history, self.norms_seen,
                                             self.clip_threshold)
            grads, norm, hit = clip_gradients(grads, variables, "global_norm", threshold)
            slot = ops.mod(self.norms_seen, float(AUTOCLIP_WINDOW))
            self.assign(self.norm_history, ops.where(
                ops.arange(AUTOCLIP_WINDOW, dtype="float32") == slot, norm,
                self.norm_history))
            self.assign(self.norms_seen, self.norms_seen + 1.0)
        else:
            threshold = ops.convert_to_tensor(
                self.clip_threshold if self.clip_mode != "none" else float("inf"), "float32")
            grads, norm, hit = clip_gradients(grads, variables, self.clip_mode,
                                              self.clip_threshold, self.agc_eps, exclude)
        applied = ops.isfinite(threshold)
        stats = self.clip_stats
        self.assign(stats, ops.stack([
            stats[0] + norm, ops.maximum(stats[1], norm), stats[2] + 1.0,
            stats[3] + ops.cast(hit, "float32"),
            stats[4] + ops.where(applied, threshold, 0.0),
            stats[5] + ops.cast(applied, "float32"),
        ]))
        return grads

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() != "tensorflow":
            grads = self._clip_and_record(grads, trainable_variables)
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import tensorflow as tf

        values = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        reduced = self._all_reduce_sum_gradients(list(zip(grads, values, strict=True)))
        grads = self._clip_and_record([g for g, _ in reduced], trainable_variables)
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step, self._distribution_strategy,
            list(zip(grads, values, strict=True)), learning_rate,
        )

    def read_clip_stats(self) -> dict[str, float]:
        """This epoch's mean and max pre-clip norm, share of clipped steps, and the mean
        threshold applied (NaN before autoclip has one, or with no clipping)."""
        nan = float("nan")
        if not self.built:
            return {"grad_norm_mean": nan, "grad_norm_max": nan, "clip_rate": nan,
                    "clip_threshold": nan, "optimizer_steps": 0.0}
        total, peak, steps, clipped, thresholds, applied = (
            float(x) for x in ops.convert_to_numpy(self.clip_stats))
        return {
            "grad_norm_mean": total / steps if steps else nan,
            "grad_norm_max": peak if steps else nan,
            "clip_rate": clipped / steps if steps else nan,
            "clip_threshold": thresholds / applied if applied else nan,
            "optimizer_steps": steps,
        }

    def reset_clip_stats(self) -> None:
        if self.built:
            self.clip_stats.assign(ops.zeros((STAT_FIELDS,)))


@keras.saving.register_keras_serializable(package="finetune")
class ClippedAdam(ClippingMixin, keras.optimizers.Adam):
    pass


@keras.saving.register_keras_serializable(package="finetune")
class ClippedAdamW(ClippingMixin, keras.optimizers.AdamW):
    pass


@keras.saving.register_keras_serializable(package="finetune")
class ClippedSGD(ClippingMixin, keras.optimizers.SGD):
    pass


CLIPPED = {keras.optimizers.Adam: ClippedAdam, keras.optimizers.AdamW: ClippedAdamW,
           keras.optimizers.SGD: ClippedSGD}


def clipping_optimizer(base_cls, mode: str, threshold: float, agc_eps: float = 1e-3,
                       agc_exclude_names: tuple[str, ...] = (), **kwargs):
    """An instance of the registered clipping subclass of ``base_cls`` (Adam, AdamW, SGD)."""
    if base_cls not in CLIPPED:
        raise ValueError(f"no clipping optimizer for {base_cls.__name__}; use one of "
                         f"{', '.join(c.__name__ for c in CLIPPED)}")
    return CLIPPED[base_cls](clip_mode=mode, clip_threshold=threshold, agc_eps=agc_eps,
                             agc_exclude_names=agc_exclude_names, **kwargs)
