"""The training step: examples in, the ``trained_model`` artifact out."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import tempfile
import time
import uuid

import keras
import numpy as np

from components.common import outputs, storage
from components.common.augment_policy import AugmentPolicy
from components.common.contract import read_json
from components.common.examples import AUGMENTATION_FILE, read_labels, read_stats, require_complete
from components.common.publish import Published
from components.common.settings import flatten
from components.train import model as model_lib
from components.train import workers
from components.train.callbacks import (
    ClipStatsLogger,
    EpochProgress,
    HistoryLog,
    MirrorBackup,
    WorkerScores,
    WorkerValidation,
    read_history,
)
from components.train.clipping import clipping_optimizer
from components.train.config import OptimizerConfig, Phase, TrainConfig
from components.train.contract import (
    CONFIG_FILE,
    CURVES_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    TENSORBOARD_DIR,
    model_facts,
)
from components.train.data import make_dataset
from components.train.loss_scale import AgreedLossScaleOptimizer
from components.train.report import curves_html
from components.train.runtime import Runtime, resolve_runtime
from components.train.workers import Cluster

log = logging.getLogger(__name__)
OPTIMIZER_CLASSES = {"adamw": keras.optimizers.AdamW, "sgd": keras.optimizers.SGD}
# Decoupled weight decay shrinks kernels only: decaying BN's scale/shift or a bias pulls
# them to zero with no regularising effect (the exclusions of timm and BiT's recipes).
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


def config_hash(cfg: TrainConfig) -> str:
    """Equal for equal training settings, wherever the data and outputs live."""
    settings = json.dumps(cfg.training_settings(), sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def class_weights(stats: dict, labels: list[str]) -> dict[int, float] | None:
    """Inverse-frequency weights (mean 1) when the training split is imbalanced (> 1.5x)."""
    counts = np.array([stats["counts"]["train"][label] for label in labels], dtype=float)
    if counts.min() == 0 or counts.max() / counts.min() <= 1.5:
        return None
    weights = counts.sum() / (len(counts) * counts)
    return {i: float(w) for i, w in enumerate(weights)}


def _schedule(opt: OptimizerConfig, steps_per_epoch: int, epochs: int, learning_rate: float):
    if opt.schedule == "plateau":
        return learning_rate
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total - 1, int(opt.warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate if warmup == 0 else learning_rate * 0.01,
        decay_steps=total - warmup, warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup, alpha=0.01,
    )


def _optimizer(cfg: TrainConfig, schedule):
    """The clipping optimizer of a resolved ``cfg``: decoupled weight decay (Keras': times
    the learning rate) on kernels, none on BN scale/shift and biases."""
    opt, clip = cfg.optimizer, cfg.clipping
    kwargs = {"learning_rate": schedule, "weight_decay": opt.weight_decay}
    if opt.optimizer == "sgd":
        kwargs.update(momentum=opt.momentum, nesterov=True)
    optimizer = clipping_optimizer(OPTIMIZER_CLASSES[opt.optimizer], clip.clip,
                                   clip.clip_threshold, clip.agc_eps,
                                   agc_exclude_names=(model_lib.HEAD_NAME,), **kwargs)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


def _compile(model, cfg: TrainConfig, runtime, schedule):
    """Compile; returns the clipping optimizer (inside the loss scaling under float16)."""
    optimizer = _optimizer(cfg, schedule)
    model.compile(
        optimizer=AgreedLossScaleOptimizer(optimizer) if runtime.precision == "mixed_float16"
        else optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.loss.label_smoothing),
        metrics=["accuracy"], jit_compile=runtime.jit_compile,
        steps_per_execution=runtime.steps_per_execution,
    )
    return optimizer


@dataclasses.dataclass(frozen=True)
class Training:
    """What every phase's ``fit`` shares."""

    model: keras.Model
    cfg: TrainConfig
    runtime: Runtime
    train_ds: object  # tf.data.Dataset, repeated
    val_ds: object  # tf.data.Dataset: across workers, this worker's share
    steps: int
    class_weights: dict | None
    folders: Folders
    extra_callbacks: tuple
    worker_scores: WorkerScores | None  # validation across workers


def _fit(training: Training, phase: Phase, number: int, initial_epoch: int) -> None:
    """Train phase ``number`` for ``phase.epochs`` epochs from ``initial_epoch``."""
    cfg, folders = training.cfg, training.folders
    schedule = _schedule(cfg.optimizer, training.steps, phase.epochs, phase.learning_rate)
    optimizer = _compile(training.model, cfg, training.runtime, schedule)
    across = training.worker_scores is not None
    callbacks = [
        *([WorkerValidation(training.worker_scores)] if across else []),
        # Two copies: a process killed while writing one leaves the other to resume from.
        keras.callbacks.BackupAndRestore(storage.join(folders.backup, f"phase{number}"),
                                         double_checkpoint=True),
        clip_stats := ClipStatsLogger(optimizer),
        EpochProgress(cfg.optimizer.epochs, training.steps, _phase_words(phase, number)),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", restore_best_weights=True,
                                      patience=cfg.optimizer.early_stopping_patience),
        keras.callbacks.TensorBoard(storage.join(folders.output, TENSORBOARD_DIR)),
        HistoryLog(storage.join(folders.backup, "history.jsonl"), number),
        *folders.mirror_callbacks(),
        *training.extra_callbacks,
    ]
    if cfg.optimizer.schedule == "plateau":
        callbacks.insert(callbacks.index(clip_stats) + 1,
                         keras.callbacks.ReduceLROnPlateau(factor=0.2, patience=2))
    training.model.fit(training.train_ds, validation_data=None if across else training.val_ds,
                       epochs=initial_epoch + phase.epochs, initial_epoch=initial_epoch,
                       steps_per_epoch=training.steps, class_weight=training.class_weights,
                       callbacks=callbacks, verbose=2, shuffle=False)


def _save_weights_whole(model: keras.Model, path: str) -> None:
    """Save under a temporary name, then rename: a process killed while writing leaves
    no half file at ``path`` for the retry to load (``path`` is local)."""
    partial = path.removesuffix(".weights.h5") + ".partial.weights.h5"
    model.save_weights(partial)
    os.replace(partial, path)


def _phase_words(phase: Phase, number: int) -> str:
    if phase.bn_policy == "batch_stats_head" or (phase.bn_policy == "frozen"
                                                  and not phase.unfrozen_blocks):
        return f"phase {number}: the head alone"
    blocks = f", the top {phase.unfrozen_blocks} blocks" if phase.unfrozen_blocks else ""
    return f"phase {number}: BN {phase.bn_policy}{blocks}"


@dataclasses.dataclass(frozen=True)
class Folders:
    """Local folders of one training run: TensorFlow writes only local files (no s3://)."""

    examples: str
    output: str
    backup: str
    remote_backup: str = ""  # where ``backup`` is mirrored to, when TF cannot write there

    def mirror_callbacks(self) -> tuple:
        return (MirrorBackup(self.backup, self.remote_backup),) if self.remote_backup else ()

    def sync_backup(self) -> None:
        if self.remote_backup:
            storage.sync_tree(self.backup, self.remote_backup)


def _run_backup(cfg: TrainConfig) -> str:
    backup_dir, run_id = cfg.runtime.backup_dir, cfg.runtime.run_id
    return storage.join(backup_dir, run_id or uuid.uuid4().hex) \
        if backup_dir else storage.join(cfg.output, "backup")


@contextlib.contextmanager
def _backup_folder(cfg: TrainConfig):
    """The local backup folder, and the remote one it mirrors (or ""). With ``backup_dir``
    the backup is this run's own (``backup_dir/<run id>``). It is removed once training
    finished: a retry of the run resumes, a new run starts fresh."""
    run_backup = _run_backup(cfg)
    if storage.is_local(run_backup):
        yield run_backup, ""
    else:
        with tempfile.TemporaryDirectory(prefix="backup-") as local:
            if storage.is_dir(run_backup):
                storage.copy_tree(run_backup, local)
                log.info("resuming from the backup in %s", run_backup)
            yield local, run_backup
    storage.delete_tree(run_backup)


@contextlib.contextmanager
def _folders(cfg: TrainConfig, cluster: Cluster, examples: str):
    """The chief's folders are the step's; another worker trains alike in scratch folders,
    from a copy of the chief's backup, and its files are dropped."""
    if cluster.is_chief:
        with outputs.local_output(cfg.output, keep=("backup",)) as output, \
                _backup_folder(cfg) as (backup, remote_backup):
            yield Folders(examples, output, backup, remote_backup)
        return
    with tempfile.TemporaryDirectory(prefix=f"worker{cluster.index}-") as scratch:
        backup, chief_backup = storage.join(scratch, "backup"), _run_backup(cfg)
        if storage.is_dir(chief_backup):
            storage.copy_tree(chief_backup, backup)
        yield Folders(examples, storage.join(scratch, "output"), backup)


def published(summary: dict, output: str) -> Published:
    """What the UI shows of a run that returned ``summary`` and wrote ``output``."""
    resolved = read_json(output, CONFIG_FILE)
    return Published(
        metadata={**model_facts(resolved), "image_size": resolved["image_size"],
                  "labels": resolved["labels"],
                  "tensorboard_logdir": storage.join(output, TENSORBOARD_DIR)},
        metrics={**{k: v for k, v in summary.items() if isinstance(v, float)},
                 "epochs_run": summary["epochs_run"]},
        pages={"training_curves": storage.join(output, CURVES_FILE)})


def run(cfg: TrainConfig, extra_callbacks: tuple = ()) -> dict:
    """Fine-tune ResNet50 on ``cfg.examples``; write the model, history and reports. With
    ``workers`` above 1 this process is one of ``TF_CONFIG``'s, or without one it starts
    that many on this machine."""
    cfg = cfg.validate().resolved()
    require_complete(cfg.examples)
    cluster = Cluster.from_env()
    if cluster is None and cfg.runtime.workers > 1:
        outputs.check_writable(cfg.output)
        return workers.run_local(cfg)
    cluster = (cluster or Cluster()).expecting(cfg.runtime.workers)
    with storage.local_copy(cfg.examples) as examples, \
            _folders(cfg, cluster, examples) as folders:
        return _train(cfg, folders, cluster, extra_callbacks)


def _train(cfg: TrainConfig, folders: Folders, cluster: Cluster, extra_callbacks: tuple) -> dict:
    started = time.perf_counter()
    examples, output, backup = folders.examples, folders.output, folders.backup
    labels, stats = read_labels(examples), read_stats(examples)
    policy = AugmentPolicy.from_dict(json.loads(
        storage.read_text(storage.join(examples, AUGMENTATION_FILE))))
    net, opt, bn, seed = cfg.model, cfg.optimizer, cfg.batch_norm, cfg.runtime.seed
    runtime = resolve_runtime(cfg.runtime.precision, cfg.runtime.xla, cfg.runtime.deterministic,
                              cfg.runtime.steps_per_execution, cluster.workers)
    if cluster.workers > 1:
        workers.check_across_workers(cfg.optimizer.batch_size, runtime, folders.backup,
                                     len(cfg.phases()))
    keras.utils.set_random_seed(seed)
    batch_warning = model_lib.warn_small_batch(bn.bn_policy, opt.batch_size // runtime.replicas)
    with runtime.strategy.scope():
        model = model_lib.build_model(len(labels), net.image_size, net.weights, net.dropout)
    train_ds = _training_stream(examples, cfg, runtime, policy, len(labels),
                                stats["split_totals"]["train"])
    val_ds = make_dataset(examples, "val", net.image_size, opt.batch_size, len(labels),
                          examples=stats["split_totals"]["val"],
                          shard=(cluster.workers, cluster.index))
    steps = opt.steps_per_epoch or math.ceil(stats["split_totals"]["train"] / opt.batch_size)
    # Keras runs whole executions: an epoch's steps are rounded up to a multiple of them,
    # and the schedule must count the steps that run.
    steps = -(-steps // runtime.steps_per_execution) * runtime.steps_per_execution
    weights = class_weights(stats, labels) if cfg.loss.class_weights else None
    phases, first_epoch = cfg.phases(), 0
    scores = WorkerScores(model, val_ds, runtime.strategy, cfg.loss.label_smoothing) \
        if cluster.workers > 1 else None
    training = Training(model, cfg, runtime, train_ds, val_ds, steps, weights, folders,
                        extra_callbacks, scores)
    with runtime.strategy.scope():
        for number, phase in enumerate(phases, start=1):
            done = storage.join(backup, f"phase{number}.weights.h5")
            model_lib.apply_bn_policy(model, phase.bn_policy, phase.unfrozen_blocks,
                                      bn.bn_momentum, bn.sync_bn)
            if storage.exists(done):
                log.info("phase %d finished in an earlier attempt: loading %s", number, done)
                model.load_weights(done)
            else:
                _fit(training, phase, number, first_epoch)
                if number < len(phases):
                    _save_weights_whole(model, done)
                    folders.sync_backup()
            first_epoch += phase.epochs
    reestimation, batches = {"batches": 0}, bn.reestimate_batches(steps)
    if batches:
        clean = make_dataset(examples, "train", net.image_size, opt.batch_size, len(labels))
        reestimation = _reestimate_if_better(model, clean.take(batches),
                                             lambda: _validation_scores(training))
    history = read_history(storage.join(backup, "history.jsonl"))
    storage.write_text(storage.join(output, HISTORY_FILE), json.dumps(history, indent=2))
    resolved = {**flatten(cfg), "labels": labels, "runtime": runtime.describe(),
                "config_hash": config_hash(cfg), "class_weight_values": weights,
                "augmentation": policy.to_dict(), "data_fingerprint": stats["fingerprint"],
                "bn_reestimation": reestimation,
                "phases": [dataclasses.asdict(p) for p in phases],
                "train_seconds": round(time.perf_counter() - started, 1),
                "warnings": [batch_warning] if batch_warning else []}
    storage.write_text(storage.join(output, CONFIG_FILE), json.dumps(resolved, indent=2))
    storage.write_text(storage.join(output, CURVES_FILE), curves_html(
        history, cfg, reestimation, storage.join(output, TENSORBOARD_DIR)))
    model.save(storage.join(output, MODEL_FILE))
    return _summary(history, reestimation, resolved["config_hash"])


def _training_stream(examples: str, cfg: TrainConfig, runtime: Runtime,
                     policy: AugmentPolicy, classes: int, count: int):
    """The shuffled, augmented training batches; across workers, each decodes its share."""
    net, opt = cfg.model, cfg.optimizer

    def stream(batch_size: int, shard: tuple[int, int] = (1, 0)):
        return make_dataset(examples, "train", net.image_size, batch_size, classes,
                            augment=policy, shuffle=True, seed=cfg.runtime.seed, examples=count,
                            shuffle_buffer_mb=cfg.runtime.shuffle_buffer_mb,
                            prefetch_batches=2 * runtime.steps_per_execution, shard=shard)

    if runtime.workers == 1:
        return stream(opt.batch_size)
    return runtime.strategy.distribute_datasets_from_function(
        lambda context: stream(context.get_per_replica_batch_size(opt.batch_size),
                               (context.num_input_pipelines, context.input_pipeline_id)))


def _summary(history: list[dict], reestimation: dict, settings_hash: str) -> dict:
    """The step's metrics: the last epoch's, the best validation accuracy, and what BN
    re-estimation did to validation accuracy."""
    last = history[-1] if history else {}
    best_val = max((r.get("val_accuracy", 0.0) for r in history), default=0.0)
    summary = {"epochs_run": len(history), "best_val_accuracy": best_val,
               **{k: last[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy",
                                       "grad_norm_mean", "grad_norm_max", "clip_rate",
                                       "clip_threshold", "overflow_skipped_steps")
                  if k in last and last[k] == last[k]},
               "config_hash": settings_hash}
    if reestimation["batches"]:
        summary.update(bn_reestimate_val_accuracy_before=reestimation["before"]["accuracy"],
                       bn_reestimate_val_accuracy_after=reestimation["after"]["accuracy"],
                       bn_reestimate_kept=float(reestimation["kept"]))
    return summary


def _validation_scores(training: Training) -> dict:
    """Validation loss and accuracy of the model as it is."""
    if training.worker_scores is not None:
        return training.worker_scores()
    return training.model.evaluate(training.val_ds, verbose=0, return_dict=True)


def _reestimate_if_better(model: keras.Model, batches, score) -> dict:
    """Re-estimate BN moving statistics on ``batches``; keep them only when validation
    accuracy (then loss), as ``score()`` gives them, is not worse than with the
    statistics training left."""
    before = score()
    trained = model_lib.bn_moving_statistics(model)
    count = model_lib.reestimate_bn_statistics(model, batches)
    after = score()
    kept = (after["accuracy"], -after["loss"]) >= (before["accuracy"], -before["loss"])
    if not kept:
        model_lib.restore_bn_moving_statistics(trained)
    log.info("BN re-estimation on %d batches: val accuracy %.4f -> %.4f, %s", count,
             before["accuracy"], after["accuracy"], "kept" if kept else "discarded")
    return {"batches": count, "kept": kept,
            **{name: {k: float(found[k]) for k in ("loss", "accuracy")}
               for name, found in (("before", before), ("after", after))}}
