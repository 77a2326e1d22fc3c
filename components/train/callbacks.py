"""Callbacks: per-epoch clipping statistics, learning rate, a resumable history, and
validation across training workers."""

from __future__ import annotations

import json
import time

import keras

from components.common import progress, storage


class ClipStatsLogger(keras.callbacks.Callback):
    """Adds grad_norm_mean/max, clip_rate and learning_rate to each epoch's logs, and
    under float16 loss scaling the steps skipped for overflow so far.

    Put it before TensorBoard and the history logger so they see the values.
    """

    def __init__(self, optimizer):
        super().__init__()
        self._optimizer = optimizer

    def on_epoch_begin(self, epoch, logs=None):
        self._optimizer.reset_clip_stats()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update(self._optimizer.read_clip_stats())
        skipped = getattr(self.model.optimizer, "skipped_steps", None)
        if skipped is not None:
            logs["overflow_skipped_steps"] = float(keras.ops.convert_to_numpy(skipped))
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self._optimizer.learning_rate))


class WorkerScores:
    """Validation loss and accuracy, as Keras' ``evaluate`` gives them, when ``batches``
    is this worker's share of the split: each worker scores its own images with the
    model's weights and the sums are all-reduced, so every worker gets the same, exact
    figures. (Keras' distributed evaluate splits each batch among the replicas, and a
    worker whose part of the last one is empty runs the model on zero images.)"""

    def __init__(self, model: keras.Model, batches, strategy, label_smoothing: float):
        import tensorflow as tf

        self.batches, self.strategy = batches, strategy

        @tf.function
        def sums(images, labels):
            predicted = model(images, training=False)
            losses = keras.losses.categorical_crossentropy(labels, predicted,
                                                           label_smoothing=label_smoothing)
            correct = tf.equal(tf.argmax(labels, axis=-1), tf.argmax(predicted, axis=-1))
            return tf.stack([tf.reduce_sum(losses),
                             tf.reduce_sum(tf.cast(correct, tf.float32)),
                             tf.cast(tf.shape(labels)[0], tf.float32)])

        self._sums = sums

    def __call__(self) -> dict:
        import tensorflow as tf

        total = tf.zeros([3])
        for images, labels in self.batches:
            total += self._sums(images, labels)
        # Each local replica holds this worker's sums; the ratios are the same however
        # many replicas a worker has.
        per_replica = self.strategy.experimental_distribute_values_from_function(
            lambda _context: total)
        loss, correct, count = self.strategy.reduce("SUM", per_replica, axis=None).numpy()
        return {"loss": float(loss / count), "accuracy": float(correct / count)}


class WorkerValidation(keras.callbacks.Callback):
    """Adds val_loss and val_accuracy from ``scores`` to each epoch's logs, in place of
    ``fit``'s validation when training across workers. Put it first."""

    def __init__(self, scores: WorkerScores):
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in self.scores().items()})


class EpochProgress(keras.callbacks.Callback):
    """Says each epoch's end (of ``total``, with loss and accuracies) and, at most every
    ``every`` seconds, the step reached within it."""

    def __init__(self, total: int, steps: int, phase: str, every: float = 10.0):
        super().__init__()
        self.total, self.steps, self.phase, self.every = total, steps, phase, every
        self._epoch, self._started, self._said = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._started, self._said = epoch, time.monotonic(), time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self._said >= self.every:
            self._said = time.monotonic()
            progress.say(f"epoch {self._epoch + 1}/{self.total}: step {batch + 1} of "
                         f"{self.steps}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        scores = ", ".join(f"{name} {logs[key]:.3f}" for key, name in (
            ("loss", "loss"), ("accuracy", "accuracy"), ("val_accuracy", "val accuracy"))
            if key in logs)
        progress.say(f"epoch {epoch + 1}/{self.total} ({self.phase}): {scores} "
                     f"({time.monotonic() - self._started:.0f} s)")


class HistoryLog(keras.callbacks.Callback):
    """Appends each finished epoch, with its wall time (validation included), to a
    JSON-lines file that survives a restarted pod."""

    def __init__(self, uri: str, phase: int):
        super().__init__()
        self.uri = uri
        self.phase = phase
        self._started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        rows = read_history(self.uri)
        rows = [r for r in rows if r["epoch"] != epoch]
        rows.append({"epoch": epoch, "phase": self.phase,
                     **{k: float(v) for k, v in (logs or {}).items()},
                     "seconds": round(time.monotonic() - self._started, 3)})
        storage.write_text(self.uri, "".join(json.dumps(r) + "\n" for r in rows))


def read_history(uri: str) -> list[dict]:
    if not storage.exists(uri):
        return []
    return [json.loads(line) for line in storage.read_text(uri).splitlines() if line]


class MirrorBackup(keras.callbacks.Callback):
    """Mirrors the local backup folder to a bucket after every epoch and at the end, for
    stores TensorFlow cannot write (``s3://``). Put it after the callbacks that write there."""

    def __init__(self, local: str, remote: str):
        super().__init__()
        self.local = local
        self.remote = remote

    def on_epoch_end(self, epoch, logs=None):
        storage.sync_tree(self.local, self.remote)

    def on_train_end(self, logs=None):
        storage.sync_tree(self.local, self.remote)

