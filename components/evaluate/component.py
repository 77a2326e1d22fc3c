"""Kubeflow wrapper of the evaluate step (never cached: production can change)."""

from kfp import dsl
from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from components.container_image import IMAGE


@dsl.component(base_image=IMAGE)
def evaluate(
    examples: Input[Dataset],
    saved_model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    evaluation_report: Output[Markdown],
    worst_mistakes: Output[HTML],
    config: str,
    registry_uri: str = "",
    model_name: str = "",
    baseline_uri: str = "",
    baseline_version: int = -1,
    run_id: str = "",
) -> str:
    """Score candidate and production on the same test split with ``config`` (the run's
    resolved GateConfig, JSON); return promote, reject or unchanged (byte-identical to
    production).

    A single ``str`` output on purpose: kfp.local resolves ``dsl.If`` conditions only on a
    task's single ``Output``, not on a named output.

    Production comes in as ``baseline_uri``/``baseline_version`` (from
    resolve_production), so the run's lineage shows what the candidate was compared with;
    without it, the registry is read.
    """
    import logging

    from components.common.publish import publish
    from components.evaluate.gate import GateConfig
    from components.evaluate.run import published, resolve_baseline, run
    from components.lineage.resolve import step_config
    from components.registry.schemes import open_registry

    logging.basicConfig(level=logging.INFO)
    gate = step_config(GateConfig, config)
    if baseline_uri:
        baseline, version = baseline_uri, (baseline_version if baseline_version >= 0 else None)
    else:
        baseline, version = resolve_baseline("", registry_uri, model_name)
    registry = open_registry(registry_uri, model_name) if registry_uri and model_name else None
    # Beam workers elsewhere (a --temp_location in beam_args) read the test shards where
    # the examples artifact lives; this step reads its own copy.
    result = run(saved_model.path, examples.path, evaluation.path, gate, baseline, version,
                 registry=registry, examples_uri=examples.uri)
    publish(published(result, evaluation.path), evaluation, metrics=metrics,
            confusion_matrix=confusion_matrix, evaluation_report=evaluation_report,
            worst_mistakes=worst_mistakes)
    if run_id and registry:
        registry.log_run(run_id, "evaluate", {
            "decision": result["decision"], "reasons": result["reasons"],
            "accuracy": result["candidate"]["accuracy"], "production_version": version})
    return result["decision"]
