"""Classification metrics and McNemar's exact test (pure NumPy)."""

from __future__ import annotations

from math import comb

import numpy as np

ECE_BINS = 15


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def calibration_bins(probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """The non-empty confidence bins (of ``bins`` equal ones): their edges, image count,
    mean confidence and accuracy: the reliability diagram's bars."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            rows.append({"low": float(low), "high": float(high), "count": int(in_bin.sum()),
                         "confidence": float(confidence[in_bin].mean()),
                         "accuracy": float(correct[in_bin].mean())})
    return rows


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = ECE_BINS):
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"])
                     for b in calibration_bins(probs, y_true, bins)) / max(1, len(y_true)))


def classification_metrics(probs: np.ndarray, y_true: np.ndarray, labels: list[str],
                           top_k: int = 3) -> dict:
    n = len(labels)
    y_pred = probs.argmax(axis=1)
    matrix = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = np.divide(tp, predicted, out=np.zeros(n), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(n), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n), where=denom > 0)
    k = min(top_k, n)
    top = np.argsort(-probs, axis=1)[:, :k]
    eps = 1e-12
    return {
        "examples": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()),
        f"top_{k}_accuracy": float((top == y_true[:, None]).any(axis=1).mean()),
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * support).sum() / max(1.0, support.sum())),
        "log_loss": float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1)).mean()),
        "ece": expected_calibration_error(probs, y_true),
        "calibration": calibration_bins(probs, y_true),
        "per_class": {label: {"precision": float(precision[i]), "recall": float(recall[i]),
                              "f1": float(f1[i]), "support": int(support[i])}
                      for i, label in enumerate(labels)},
        "confusion_matrix": matrix.tolist(),
    }


def mcnemar_exact(candidate_only: int, baseline_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (binomial, p=0.5)."""
    n = candidate_only + baseline_only
    if n == 0:
        return 1.0
    k = min(candidate_only, baseline_only)
    tail = sum(comb(n, i) for i in range(k + 1)) / 2**n
    return float(min(1.0, 2 * tail))
