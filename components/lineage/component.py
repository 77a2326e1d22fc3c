"""Kubeflow wrappers of the steps that make scheduled runs cheap and visible (never cached)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE)
def resolve_production(
    registry_uri: str, model_name: str,
) -> NamedTuple("Outputs", [("uri", str), ("version", int)]):
    """The production model this run is compared with (version -1: none yet)."""
    from collections import namedtuple

    from components.lineage.run import resolve_production as resolve

    return namedtuple("Outputs", ["uri", "version"])(*resolve(registry_uri, model_name))


@dsl.component(base_image=IMAGE)
def check_lineage(
    registry_uri: str,
    model_name: str,
    run_id: str,
    data_fingerprint: str,
    production_version: int,
    lineage: Output[Artifact],
    lineage_report: Output[Markdown],
    force: bool = False,
    train_fraction: float = 0.8,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    image_size: int = 224,
    bn_policy: str = "frozen",
    clip: str = "autoclip",
    clip_threshold: float = -1.0,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    weights: str = "imagenet",
    train_extra_json: str = "{}",
    prepare_extra_json: str = "{}",
    seed: int = 0,
    min_accuracy: float = 0.5,
    max_ece: float = -1.0,
    non_inferiority_margin: float = 0.035,
    gate_confidence: float = 0.95,
    mcnemar_alpha: float = 0.05,
    max_class_recall_drop: float = 0.1,
    gate_extra_json: str = "{}",
) -> str:
    """``unchanged`` when data, training settings and code equal production's lineage
    (nothing to train), else ``changed``; every step's settings are validated first. A
    single ``str`` output: kfp.local resolves ``dsl.If`` only on a task's single
    ``Output``."""
    import json
    import logging

    from components.lineage.run import check, check_settings, report

    logging.basicConfig(level=logging.INFO)
    named = {"train_fraction": train_fraction, "val_fraction": val_fraction,
             "test_fraction": test_fraction, "image_size": image_size, "bn_policy": bn_policy,
             "clip": clip, "clip_threshold": clip_threshold, "epochs": epochs,
             "batch_size": batch_size, "learning_rate": learning_rate, "weights": weights,
             "seed": seed}
    check_settings(named, train_extra_json, prepare_extra_json, {
        "min_accuracy": min_accuracy, "max_ece": max_ece,
        "non_inferiority_margin": non_inferiority_margin, "confidence": gate_confidence,
        "mcnemar_alpha": mcnemar_alpha, "max_class_recall_drop": max_class_recall_drop,
    }, gate_extra_json)
    settings = {**named, "train_extra": json.loads(train_extra_json),
                "prepare_extra": json.loads(prepare_extra_json)}
    result = check(registry_uri, model_name, run_id, data_fingerprint, production_version,
                   settings, force)
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
           backup_dir)
