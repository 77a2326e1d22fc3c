"""Kubeflow wrapper of the ablation report."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Model, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def ablation_report(
    trained_models: Input[list[Model]],
    evaluations: Input[list[Artifact]],
    table: Output[Artifact],
    report: Output[Markdown],
    report_html: Output[HTML],
):
    """One row per (BN policy, clip mode) cell, the curves of all runs overlaid, and
    McNemar's exact test of each run against the best (by validation accuracy)."""
    from components.ablation.report import published, write
    from components.common.publish import publish

    write(table.path, [m.path for m in trained_models], [e.path for e in evaluations])
    publish(published(table.path), table, report=report, report_html=report_html)
