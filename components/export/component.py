"""Kubeflow wrapper of the export step."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def export_model(examples: Input[Dataset], trained_model: Input[Model],
                 saved_model: Output[Model]):
    """Export a SavedModel serving raw image bytes; fail unless infra validation passes."""
    import logging

    from components.export.run import run

    logging.basicConfig(level=logging.INFO)
    metadata = run(trained_model.path, examples.path, saved_model.path)
    saved_model.metadata.update(metadata)
