"""Kubeflow wrappers of the steps that make scheduled runs cheap and visible (never cached)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def resolve_production(
    registry_uri: str, model_name: str,
) -> NamedTuple("Outputs", [("uri", str), ("version", int)]):
    """The production model this run is compared with (version -1: none yet)."""
    from collections import namedtuple

    from components.lineage.run import resolve_production as resolve

    return namedtuple("Outputs", ["uri", "version"])(*resolve(registry_uri, model_name))


@dsl.component(base_image=IMAGE)
def resolve_settings(
    source: str,
    image_size: int = 224,
    train_fraction: float = 0.8,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    split_state: str = "",
    prepare_extra_json: str = "{}",
    bn_policy: str = "frozen",
    clip: str = "autoclip",
    clip_threshold: float = -1.0,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    weights: str = "imagenet",
    backup_dir: str = "",
    seed: int = 0,
    train_extra_json: str = "{}",
    min_accuracy: float = 0.5,
    max_ece: float = -1.0,
    non_inferiority_margin: float = 0.035,
    gate_confidence: float = 0.95,
    mcnemar_alpha: float = 0.05,
    max_class_recall_drop: float = 0.1,
    gate_extra_json: str = "{}",
) -> NamedTuple("Outputs", [("prepare", str), ("train", str), ("gate", str)]):
    """Every step's whole config (flat, defaults filled in, validated) from the run's
    parameters: the steps take these, and the lineage is computed from them. The one
    place that lists the run's settings; a test checks it matches the pipeline's."""
    named = dict(locals())  # the parameters: first, before any other name is bound
    from collections import namedtuple

    from components.lineage.resolve import resolve

    extra = {name: named.pop(name) for name in list(named) if name.endswith("_extra_json")}
    resolved = resolve(named, extra)
    return namedtuple("Outputs", ["prepare", "train", "gate"])(
        resolved["prepare"], resolved["train"], resolved["gate"])


@dsl.component(base_image=IMAGE)
def check_lineage(
    registry_uri: str,
    model_name: str,
    run_id: str,
    data_fingerprint: str,
    production_version: int,
    prepare_config: str,
    train_config: str,
    lineage: Output[Artifact],
    lineage_report: Output[Markdown],
    force: bool = False,
) -> str:
    """``unchanged`` when data, the resolved data and training settings and code equal
    production's lineage (nothing to train), else ``changed``. A single ``str`` output:
    kfp.local resolves ``dsl.If`` only on a task's single ``Output``."""
    import json
    import logging

    from components.lineage.resolve import lineage_settings
    from components.lineage.run import check, report

    logging.basicConfig(level=logging.INFO)
    result = check(registry_uri, model_name, run_id, data_fingerprint, production_version,
                   lineage_settings(prepare_config, train_config), force)
    with open(lineage.path, "w") as handle:
        json.dump(result["lineage"], handle, indent=2)
    lineage.metadata.update({"decision": result["decision"], "key": result["key"]})
    with open(lineage_report.path, "w") as handle:
        handle.write(report(result))
    return result["decision"]


@dsl.component(base_image=IMAGE)
def record_run(
    registry_uri: str, model_name: str, run_id: str, backup_dir: str,
    status: dsl.PipelineTaskFinalStatus,
):
    """Exit handler: one record per run in the registry's run log, whatever happened."""
    import logging

    from components.lineage.run import record_run as record

    logging.basicConfig(level=logging.INFO)
    record(registry_uri, model_name, run_id, status.state, status.error_message or "",
           backup_dir, status.pipeline_job_resource_name or "")
