"""Kubeflow wrapper of the promote step (never cached)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def promote(
    saved_model: Input[Model],
    evaluation: Input[Artifact],
    lineage: Input[Artifact],
    registry_entry: Output[Artifact],
    registry_uri: str,
    model_name: str,
    run_id: str,
) -> NamedTuple("Outputs", [("version", int)]):
    """Register the SavedModel as a new version (with the run's lineage, so a later run
    with the same data, settings and code is ``unchanged``) and point production at it."""
    import json
    import logging
    from collections import namedtuple

    from components.promote.run import run

    logging.basicConfig(level=logging.INFO)
    with open(lineage.path) as handle:
        recorded = json.load(handle)
    result = run(saved_model.path, evaluation.path, registry_uri, model_name, run_id, recorded)
    registry_entry.metadata.update(result)
    with open(registry_entry.path, "w") as handle:
        json.dump(result, handle)
    return namedtuple("Outputs", ["version"])(result["version"])
