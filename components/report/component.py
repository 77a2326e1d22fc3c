"""Kubeflow wrapper of the run report: the same page run-local writes, in the UI."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def run_report(
    examples: Input[Dataset],
    trained_model: Input[Model],
    evaluation: Input[Artifact],
    report: Output[HTML],
    registry_uri: str,
    model_name: str,
):
    """One self-contained page: data, augmentation, training curves, the gate with its
    statistics, metrics, worst mistakes and the registry (as before any promotion)."""
    from components.report.run_report import write_for_artifacts

    write_for_artifacts(report.path, examples.path, trained_model.path, evaluation.path,
                        registry_uri, model_name)
