"""The DAG: settings, fingerprint, production, lineage -> If(changed): prepare_data -> train ->
export -> evaluate -> If(promote); an exit handler records every run in the run log."""

import inspect

from kfp import dsl

from components.evaluate.component import evaluate
from components.export.component import export_model
from components.lineage.component import (
    check_lineage,
    record_run,
    resolve_production,
    resolve_settings,
)
from components.prepare_data.component import fingerprint_data, prepare_data
from components.promote.component import promote
from components.report.component import run_report
from components.train.component import train
from pipeline.parameters import with_descriptions
from pipeline.platform import configure_exit_handler, configure_step, configure_train
from pipeline.profiles import BUILTINS, Profile

PIPELINE_NAME = "resnet50-finetune"
# The run's parameters that are settings: all go to the resolve step, under their names.
SETTING_PARAMETERS = tuple(inspect.signature(resolve_settings.python_func).parameters)


def build_pipeline(platform: Profile = BUILTINS["kubeflow"], local: bool = False):
    def finetune_pipeline(
        source: str,
        registry_uri: str,
        model_name: str = "resnet50-classifier",
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
        train_extra_json: str = "{}",
        backup_dir: str = "",
        min_accuracy: float = 0.5,
        max_ece: float = -1.0,
        non_inferiority_margin: float = 0.035,
        gate_confidence: float = 0.95,
        mcnemar_alpha: float = 0.05,
        max_class_recall_drop: float = 0.1,
        gate_extra_json: str = "{}",
        seed: int = 0,
        force: bool = False,
    ):
        settings = {k: v for k, v in locals().items() if k in SETTING_PARAMETERS}
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        recorded = record_run(registry_uri=registry_uri, model_name=model_name, run_id=run_id,
                              backup_dir=backup_dir).set_display_name("Record the run")
        configure_exit_handler(recorded, platform)
        with dsl.ExitHandler(recorded, name="run"):
            resolved = resolve_settings(**settings).set_display_name("Resolve settings")
            configure_step(resolved, platform, cache=False)
            listing = fingerprint_data(source=source).set_display_name("Fingerprint data")
            configure_step(listing, platform, cache=False)
            production = resolve_production(registry_uri=registry_uri, model_name=model_name)
            production.set_display_name("Resolve production")
            configure_step(production, platform, cache=False)
            lineage = check_lineage(
                registry_uri=registry_uri, model_name=model_name, run_id=run_id,
                data_fingerprint=listing.output, production_version=production.outputs["version"],
                prepare_config=resolved.outputs["prepare"],
                train_config=resolved.outputs["train"], force=force,
            ).set_display_name("Check lineage")
            configure_step(lineage, platform, cache=False)
            with dsl.If(lineage.outputs["Output"] == "changed", name="something-changed"):
                data = prepare_data(data_fingerprint=listing.output,
                                    config=resolved.outputs["prepare"]
                                    ).set_display_name("Prepare data")
                configure_step(data, platform, cache=True)
                trained = train(examples=data.outputs["examples"],
                                config=resolved.outputs["train"], run_id=run_id,
                                worker_pods=platform.worker_pods(local),
                                ).set_display_name("Train ResNet50")
                configure_train(trained, platform)
                exported = export_model(examples=data.outputs["examples"],
                                        trained_model=trained.outputs["trained_model"])
                exported.set_display_name("Export SavedModel")
                configure_step(exported, platform, cache=True)
                evaluated = evaluate(
                    examples=data.outputs["examples"], saved_model=exported.outputs["saved_model"],
                    config=resolved.outputs["gate"], registry_uri=registry_uri,
                    model_name=model_name, baseline_uri=production.outputs["uri"],
                    baseline_version=production.outputs["version"], run_id=run_id,
                ).set_display_name("Evaluate vs production")
                configure_step(evaluated, platform, cache=False)
                reported = run_report(
                    examples=data.outputs["examples"],
                    trained_model=trained.outputs["trained_model"],
                    evaluation=evaluated.outputs["evaluation"], registry_uri=registry_uri,
                    model_name=model_name).set_display_name("Run report")
                configure_step(reported, platform, cache=False)
                with dsl.If(evaluated.outputs["Output"] == "promote", name="gate-passed"):
                    promoted = promote(
                        saved_model=exported.outputs["saved_model"],
                        evaluation=evaluated.outputs["evaluation"],
                        lineage=lineage.outputs["lineage"], registry_uri=registry_uri,
                        model_name=model_name, run_id=run_id,
                    ).set_display_name("Promote to production")
                    configure_step(promoted, platform, cache=False)

    summary = ("Fine-tune ResNet50 with a BN policy and gradient clipping; promote only "
               "through the gate.")
    return dsl.pipeline(name=PIPELINE_NAME)(with_descriptions(finetune_pipeline, summary))


def compile_pipeline(output: str, platform: Profile = BUILTINS["kubeflow"],
                     pipeline: str = "main", local: bool = False) -> str:
    """Compile ``pipeline`` (main or ablation) to YAML; the profile's image replaces every
    step's image in the spec. A Vertex profile compiles to one YAML document (no
    kfp-kubernetes section). ``local``: for kfp.local, whose train step starts training
    processes on this machine rather than pods."""
    from kfp import compiler

    from pipeline.ablation import build_ablation_pipeline

    builders = {"main": build_pipeline, "ablation": build_ablation_pipeline}
    if pipeline not in builders:
        raise ValueError(f"pipeline {pipeline!r}: use one of {', '.join(builders)}")
    from components.container_image import IMAGE

    compiler.Compiler().compile(builders[pipeline](platform, local), package_path=output)
    image = platform.image
    if image and image != IMAGE:  # the components' own image needs no rewrite
        edit_containers(output, lambda container: container.update(image=image))
    return output


def edit_containers(pipeline_yaml: str, edit) -> str:
    """Apply ``edit`` to every step's container spec in the compiled ``pipeline_yaml``, in
    place (KFP offers no hook for the image or command after compiling)."""
    import yaml

    with open(pipeline_yaml) as handle:
        documents = list(yaml.safe_load_all(handle))
    for executor in documents[0]["deploymentSpec"]["executors"].values():
        edit(executor["container"])
    with open(pipeline_yaml, "w") as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=False)
    return pipeline_yaml


def compiled_worker_pods(pipeline_yaml: str) -> str:
    """The train step's ``worker_pods`` as compiled into ``pipeline_yaml`` ("" if none)."""
    import yaml

    with open(pipeline_yaml) as handle:
        spec = next(d for d in yaml.safe_load_all(handle) if d)

    def find(node):
        if isinstance(node, dict):
            if "worker_pods" in node and "runtimeValue" in node["worker_pods"]:
                return node["worker_pods"]["runtimeValue"]["constant"]
            return next((f for f in map(find, node.values()) if f is not None), None)
        if isinstance(node, list):
            return next((f for f in map(find, node) if f is not None), None)
        return None
    return find(spec) or ""
