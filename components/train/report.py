"""The training curves page: loss, accuracy, learning rate and clipping per epoch."""

from __future__ import annotations

import html

from components.common.charts import line_chart
from components.common.html import page
from components.train.config import TrainConfig


def curves_html(history: list[dict], cfg: TrainConfig, reestimation: dict, logdir: str) -> str:
    def series(*keys):
        return {k: [r.get(k, float("nan")) for r in history] for k in keys}

    phases = [r.get("phase", 1) for r in history]
    markers = {phases.index(2): "fine-tuning (phase 2)"} if 2 in phases[1:] else {}
    clip = cfg.clipping
    norm_threshold = clip.clip in ("global_norm", "norm", "autoclip")
    charts = [
        line_chart("loss", series("loss", "val_loss"), "cross-entropy loss", markers=markers),
        line_chart("accuracy", series("accuracy", "val_accuracy"), "accuracy (fraction)",
                   markers=markers, y_range=(0.0, 1.0)),
        line_chart("learning rate", series("learning_rate"), "learning rate (end of epoch)",
                   markers=markers, log_y=True),
        line_chart("pre-clip global gradient norm",
                   series("grad_norm_mean", "grad_norm_max",
                          *(("clip_threshold",) if norm_threshold else ())),
                   "L2 norm of the aggregated gradient", markers=markers),
        line_chart("share of steps clipped",
                   series("clip_rate"), "fraction of steps", markers=markers,
                   y_range=(0.0, 1.0)),
    ]
    return page("Training curves", f"<p>BN policy <b>{cfg.batch_norm.policy_name()}</b>, "
                f"clipping <b>{_clipping_words(clip)}</b>, weight decay "
                f"<b>{cfg.optimizer.weight_decay:g}</b> ({cfg.optimizer.optimizer}).</p>"
                + _reestimation_html(reestimation) + "".join(charts)
                + f"<p>Every step's scalars are in TensorBoard's logs: <code>tensorboard "
                f"--logdir {html.escape(logdir)}</code>, or a TensorBoard with that logs path "
                "in Kubeflow's TensorBoards page.</p>")


def _clipping_words(clip) -> str:
    if clip.clip == "autoclip":
        return f"autoclip at the {clip.clip_threshold:g}th percentile of the norms so far"
    return clip.clip if clip.clip == "none" else f"{clip.clip}, threshold {clip.clip_threshold:g}"


def _reestimation_html(reestimation: dict) -> str:
    if not reestimation.get("batches"):
        return ""
    before, after = reestimation["before"], reestimation["after"]
    verdict = "kept" if reestimation["kept"] else "discarded (worse on validation)"
    return (f"<p>BN statistics re-estimated on {reestimation['batches']} clean batches: "
            f"validation accuracy {before['accuracy']:.3f} before, {after['accuracy']:.3f} "
            f"after (loss {before['loss']:.3f}, {after['loss']:.3f}); <b>{verdict}</b>.</p>")
