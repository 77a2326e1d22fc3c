"""What a step shows in the Kubeflow UI, built by the step's run module without kfp, and
the one helper that hands it to the step's KFP outputs (so ``component.py`` files stay
declarations)."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.common import storage


@dataclass(frozen=True)
class Published:
    """A step's result as the UI shows it."""

    metadata: dict = field(default_factory=dict)  # on the step's main output artifact
    metrics: dict[str, float] = field(default_factory=dict)  # the ``metrics`` output
    pages: dict[str, str] = field(default_factory=dict)  # UI output name -> file written
    confusion_matrix: tuple[list[str], list[list[int]]] | None = None  # labels, rows


def publish(published: Published, artifact, **outputs) -> None:
    """Put ``published`` on the step's KFP outputs: the metadata on ``artifact``, the
    metrics on ``outputs["metrics"]``, the confusion matrix on
    ``outputs["confusion_matrix"]`` and each page copied to the output of its name."""
    needed = set(published.pages) | ({"metrics"} if published.metrics else set()) | (
        {"confusion_matrix"} if published.confusion_matrix else set())
    if needed != set(outputs):
        raise TypeError(f"publish needs the outputs {sorted(needed)}, got {sorted(outputs)}")
    artifact.metadata.update(published.metadata)
    for name, value in published.metrics.items():
        outputs["metrics"].log_metric(name, value)
    if published.confusion_matrix:
        outputs["confusion_matrix"].log_confusion_matrix(*published.confusion_matrix)
    for name, source in published.pages.items():
        storage.download_file(source, outputs[name].path)
