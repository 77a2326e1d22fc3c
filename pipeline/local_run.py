"""``finetune run-local``: the compiled pipeline under kfp.local, no cluster needed."""

import json
import time
from pathlib import Path

SMALL_DEFAULTS = {
    "image_size": 64, "epochs": 4, "batch_size": 16, "learning_rate": 1e-3,
    "weights": "none", "bn_policy": "full",
    "train_extra_json": json.dumps({"bn_momentum": 0.9, "bn_reestimate_batches": 6,
                                    "precision": "float32"}),
}


def _latest(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def run_local(workdir: str, data: str = "", registry: str = "", model_name: str = "demo",
              **params) -> dict:
    """Compile the pipeline to YAML and run that YAML with kfp.local; summarise the run.

    Locally the train step gets no retries: a failure should stop the run at once rather
    than wait out the cluster's retry backoff."""
    from kfp import components, local

    from components.common import storage
    from components.common.errors import ConfigError
    from pipeline.pipeline import compile_pipeline
    from pipeline.profiles import load

    for option, value in (("--workdir", workdir), ("--data", data), ("--registry", registry)):
        storage.check_uri(value, option)
    if not storage.is_local(workdir):
        raise ConfigError(f"--workdir {workdir}: kfp.local needs a local folder")
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not data:
        from components.common.demo_data import write_demo_data

        data = str(work / "demo-data")
        if not Path(data).exists():
            write_demo_data(data, classes=3, per_class=40, size=96, seed=0)
    registry = registry or str(work / "registry")
    root = work / "pipeline-root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    pipeline_yaml = compile_pipeline(str(work / "pipeline.yaml"),
                                     load("kubeflow", {"train_retries": 0}))
    pipeline = components.load_component_from_file(pipeline_yaml)
    arguments = {**SMALL_DEFAULTS, **{k: v for k, v in params.items() if v is not None},
                 "source": data, "registry_uri": registry, "model_name": model_name,
                 "split_state": str(work / "split_state.jsonl")}
    started = time.perf_counter()
    pipeline(**arguments)
    wall = time.perf_counter() - started
    run_dir = _latest(root, "*")
    return summarize(run_dir, registry, model_name, wall)


def summarize(run_dir: Path, registry: str, model_name: str, wall_seconds: float) -> dict:
    from components.promote.registry import Registry

    def newest(pattern):
        path = _latest(run_dir, pattern)
        return str(path) if path else ""

    reg = Registry(registry, model_name)
    evaluation = newest("evaluate/evaluation")
    if not evaluation:
        record = reg.runs()[-1]
        return {"gate": {"decision": record["decision"], "reasons": record["reasons"],
                         "mode": "lineage"},
                "production_version": reg.current(), "registry": reg.base,
                "artifacts": {"run": str(run_dir)}, "wall_seconds": round(wall_seconds, 1)}
    examples = newest("prepare-data/examples")
    stats = json.loads(Path(examples, "stats.json").read_text())
    gate = json.loads(Path(evaluation, "gate.json").read_text())
    metrics = json.loads(Path(evaluation, "metrics.json").read_text())
    history = json.loads(Path(newest("train/trained_model"), "history.json").read_text())
    return {
        "data": {"accepted": stats["accepted"], "skipped": stats["skipped"],
                 "splits": stats["split_totals"]},
        "validation_accuracy": history[-1].get("val_accuracy") if history else None,
        "test_accuracy": {"candidate": metrics["candidate"]["accuracy"],
                          "production": (metrics["baseline"] or {}).get("accuracy")},
        "gate": {"decision": gate["decision"], "reasons": gate["reasons"], "mode": gate["mode"]},
        "production_version": reg.current(),
        "registry": reg.base,
        "artifacts": {"run": str(run_dir), "examples": examples,
                      "trained_model": newest("train/trained_model"),
                      "saved_model": newest("export-model/saved_model"),
                      "evaluation": evaluation},
        "wall_seconds": round(wall_seconds, 1),
    }
