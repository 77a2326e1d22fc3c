"""Compile (no TensorFlow), strict spec validation, and kfp.local end to end."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    code = ("import sys; from pipeline.pipeline import compile_pipeline; "
            f"compile_pipeline({str(out)!r}); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return list(yaml.safe_load_all(out.read_text()))


def test_compiled_yaml_parses_strictly(compiled):
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s

    spec, platform = compiled
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(spec["deploymentSpec"], pipeline_spec_pb2.PipelineDeploymentConfig())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(spec["deploymentSpec"]["executors"]), "each sets its user"
    for name, config in executors.items():
        json_format.ParseDict(config, k8s.KubernetesExecutorConfig(), ignore_unknown_fields=False)
        assert ("tolerations" in config) == (name == "exec-train"), "only train needs a GPU"


def all_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the compiled DAG by name, the ones inside conditions and the exit
    handler included."""
    tasks, pending = {}, [spec["root"]["dag"]]
    while pending:
        for name, task in pending.pop()["tasks"].items():
            tasks[name] = task
            component = spec["components"][task["componentRef"]["name"]]
            if "dag" in component:
                pending.append(component["dag"])
    return tasks


def test_gpu_retry_caching_and_control_flow_are_where_they_belong(compiled):
    spec, platform = compiled
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert train["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    tasks = all_tasks(spec)
    assert tasks["train"]["retryPolicy"]["maxRetryCount"] == 3
    assert tasks["prepare-data"]["cachingOptions"]["enableCache"] is True
    for never_cached in ("fingerprint-data", "resolve-production", "check-lineage", "evaluate",
                         "promote", "record-run"):
        assert not tasks[never_cached]["cachingOptions"].get("enableCache")
    assert "check-lineage-Output'] == 'changed'" in tasks["condition-2"]["triggerPolicy"][
        "condition"]
    assert "evaluate-Output'] == 'promote'" in tasks["condition-3"]["triggerPolicy"]["condition"]
    assert tasks["record-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    evaluate_inputs = tasks["evaluate"]["inputs"]["parameters"]
    assert "resolve-production" in str(evaluate_inputs["baseline_version"])
    toleration = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert toleration["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_one_run_local_per_workdir_at_a_time(tmp_path):
    """A second run-local in the same folder is refused at once, naming the first; the
    folder is free again once the first ends."""
    import os

    from components.common.errors import ConfigError
    from pipeline.local_run import _workspace, run_local

    with _workspace(str(tmp_path), str(tmp_path / "images")):
        with pytest.raises(ConfigError, match=rf"another run-local is running there \(pid "
                                              rf"{os.getpid()}\)"):
            run_local(str(tmp_path), data=str(tmp_path / "images"))
    with _workspace(str(tmp_path), str(tmp_path / "images")) as (work, _data):
        assert work == tmp_path.resolve()


REPORT_SECTIONS = ("outcome", "steps", "data", "augmentation-preview", "settings",
                   "training-curves", "gate", "evaluation", "model-card", "worst-mistakes",
                   "registry")
STEPS = ("fingerprint-data", "resolve-production", "check-lineage", "prepare-data", "train",
         "export-model", "evaluate", "run-report", "promote", "record-run")


@pytest.mark.slow
def test_run_local_promotes_then_rejects_a_worse_candidate(tmp_path, artifacts_dir):
    """Three real kfp.local runs of the compiled YAML: a good model (the pipeline's
    defaults at run-local's sizes, 64 px, 4 epochs, from the demo backbone) is promoted;
    the same data, settings and code again is `unchanged` before any training; a barely
    trained one (across two training processes) is rejected and production does not
    move. The terminal shows a line per step start and end within the line budget; each
    run writes an HTML report that renders offline in headless Chromium."""
    from click.testing import CliRunner

    from components.registry.storage_registry import StorageRegistry
    from pipeline.cli import main
    from pipeline.local_run import run_local
    from tests.browser import layout, render

    cli = CliRunner().invoke(main, ["run-local", "--workdir", str(tmp_path)])
    assert cli.exit_code == 0, cli.output
    _the_defaults_fine_tuned_clipped_outliers_and_serve_what_was_evaluated(tmp_path)
    lines = cli.output.splitlines()
    for step in STEPS:
        assert any(re.match(rf"\s+{step}\s+succeeded\s+\d+\.\d s$", line) for line in lines)
    for said in (r"prepare-data\s+inspected 120 of 120 files",
                 r"train\s+epoch 4/4 \(phase 2: BN frozen, the top 3 blocks\): loss \d\.\d{3}",
                 r"export-model\s+check: served = Keras on 12 test images",
                 r"evaluate\s+scored 12 test images with the candidate: accuracy \d\.\d{3}"):
        assert any(re.match(rf"\s+{said}", line) for line in lines), (said, cli.output)
    verdict = lines[next(i for i, line in enumerate(lines) if line.startswith("PROMOTED")):]
    assert len(verdict) <= 20 and verdict[0] == "PROMOTED: version v1 is production"
    assert any(line.startswith("next:  nothing") for line in verdict), verdict
    assert any("tensorboard --logdir " in line for line in verdict), verdict
    first_report = Path(re.search(r"report:\s+(\S+)", cli.output).group(1))
    assert (first_report.parent / "train.log").read_text().count("Epoch") >= 4
    screenshot = artifacts_dir / "run-report.png"
    dom = render(first_report, screenshot)
    for section in REPORT_SECTIONS:
        assert f'id="{section}"' in dom
    assert "PROMOTE" in dom and dom.count("data:image/png;base64,") >= 8
    assert not re.search(r'(src|href)="(https?:)?//', first_report.read_text())
    assert screenshot.stat().st_size > 10_000
    laid_out = layout(first_report, tmp_path)
    assert laid_out["overlaps"] == laid_out["outside"] == laid_out["markdown"] == [], laid_out
    assert len(laid_out["ticks"]) >= 6  # five training curves and the reliability diagram
    assert all(x >= 4 and y >= 4 for _chart, x, y in laid_out["ticks"]), laid_out["ticks"]
    for shown in ("<td>bn_policy</td><td>frozen</td>", "table class=\"confusion\"",
                  "aria-label=\"reliability (candidate)\"", "Model card: ", "Next step:"):
        assert shown in dom, shown
    registry = StorageRegistry(str(tmp_path / "registry"), "demo")
    card = Path(registry.version_uri(1), "model_card.json")
    assert json.loads(card.read_text())["quantitative_analysis"]["gate"]["decision"] == "promote"
    scripted = CliRunner().invoke(main, ["run-local", "--workdir", str(tmp_path), "--json"])
    assert scripted.exit_code == 0, scripted.output
    same = json.loads(scripted.stdout)  # one JSON document, the progress on stderr
    assert same["gate"]["decision"] == "unchanged", same["gate"]
    assert same["gate"]["next_step"].startswith("nothing: to retrain")
    assert "equal production v1" in same["gate"]["reasons"][0]
    assert "trained_model" not in same["artifacts"]
    assert "UNCHANGED" in Path(same["report"]).read_text()
    worse = run_local(str(tmp_path), image_size=32, epochs=1, learning_rate=1e-9, seed=5,
                      train_extra_json=json.dumps({"head_epochs": 0, "workers": 2}))
    assert worse["gate"]["decision"] == "reject", worse["gate"]
    assert "[worker 1]" in Path(worse["logs"], "train.log").read_text(), \
        "kfp.local's train step trains across two processes of this machine"
    assert "non_inferiority" in Path(worse["report"]).read_text()
    in_the_ui = Path(worse["artifacts"]["run"], "run-report", "report").read_text()
    assert "resnet-finetune run: reject" in in_the_ui and 'id="training-curves"' in in_the_ui
    written = json.loads(Path(worse["artifacts"]["run"], "train", "executor_output.json")
                         .read_text())["artifacts"]
    assert written["metrics"]["artifacts"][0]["metadata"]["epochs_run"] == 1
    assert written["trained_model"]["artifacts"][0]["metadata"]["image_size"] == 32
    reg = StorageRegistry(str(tmp_path / "registry"), "demo")
    assert reg.current() == 1 and len(reg.list_versions()) == 1
    runs = reg.runs()
    assert [(r["status"], r["decision"]) for r in runs] == [
        ("SUCCEEDED", "promoted"), ("SUCCEEDED", "unchanged"), ("SUCCEEDED", "reject")]
    assert runs[0]["promoted_version"] == 1 and runs[2]["production_version"] == 1


def _the_defaults_fine_tuned_clipped_outliers_and_serve_what_was_evaluated(work: Path):
    """The first run of run-local in ``work``: only the sizes and weights differ from the
    pipeline's defaults, and those fine-tuned the conv5 convolutions (the rest of the
    backbone as the demo backbone left it), clipped a minority of steps, and production
    v1 holds the very SavedModel that evaluate scored."""
    import keras
    import numpy as np

    from components.evaluate.run import identical
    from components.registry.storage_registry import StorageRegistry
    from components.train.model import load_trained_model
    from pipeline.local_run import task_outputs

    run_dir = next((work / "pipeline-root").iterdir())
    trained, exported, evaluated = (task_outputs(run_dir, task)[name] for task, name in (
        ("train", "trained_model"), ("export-model", "saved_model"), ("evaluate", "evaluation")))
    config = json.loads(Path(trained, "config.json").read_text())
    assert {k: v for k, v in config.items() if k in ("image_size", "epochs", "batch_size")} == \
        {"image_size": 64, "epochs": 4, "batch_size": 16}
    assert (config["bn_policy"], config["fine_tune_blocks"], config["clip"]) == \
        ("frozen", 3, "autoclip")
    start = keras.applications.ResNet50(include_top=False, weights=None,
                                        input_shape=(64, 64, 3))
    start.load_weights(config["weights"])
    backbone = load_trained_model(str(Path(trained, "model.keras"))).get_layer("resnet50")
    for name, fine_tuned in (("conv5_block3_3_conv", True), ("conv5_block1_1_conv", True),
                             ("conv4_block6_3_conv", False), ("conv1_conv", False)):
        kernel = np.array(backbone.get_layer(name).kernel)
        assert np.array_equal(kernel, np.array(start.get_layer(name).kernel)) != fine_tuned, name
    history = json.loads(Path(trained, "history.json").read_text())
    steps = sum(r["optimizer_steps"] for r in history)
    clipped = sum(r["clip_rate"] * r["optimizer_steps"] for r in history)
    assert 0 < steps and clipped / steps < 0.5, history
    assert any(r["clip_threshold"] == r["clip_threshold"] for r in history)
    production = StorageRegistry(str(work / "registry"), "demo")
    assert production.current() == 1
    with production.saved_model_copy(1) as served:
        assert identical(served, exported)
    gate = json.loads(Path(evaluated, "gate.json").read_text())
    assert gate["decision"] == "promote"


@pytest.mark.slow
def test_a_failed_run_prints_its_log_tail_and_is_recorded(tmp_path):
    """A broken source: the failing step is named with its log's tail and path, the exit
    code is non-zero, the exit handler records FAILED and the report says failed."""
    from click.testing import CliRunner

    from components.registry.storage_registry import StorageRegistry
    from pipeline.cli import main

    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["run-local", "--workdir", str(tmp_path / "w"),
                                       "--data", str(tmp_path / "empty")])
    assert result.exit_code == 1
    error = result.output[result.output.index("error: "):].splitlines()
    assert error[0].startswith("error: step fingerprint-data failed: ConfigError: --source ")
    assert error[0].endswith("no files found"), "the cause comes first, then the tail"
    assert "the last" in result.output
    log = Path(re.search(r"whole log: (\S+)", result.output).group(1))
    assert log.name == "fingerprint-data.log" and "no files found" in log.read_text()
    report = Path(re.search(r"run report: (\S+)", result.output).group(1))
    assert "FAILED" in report.read_text()
    [run] = StorageRegistry(str(tmp_path / "w" / "registry"), "demo").runs()
    assert run["status"] == "FAILED" and run["promoted_version"] is None
    assert run["failed_step"] == "fingerprint-data"  # not KFP's "exit-handler-1 failed"
    assert run["error"].startswith("ConfigError: --source ") and "no files found" in run["error"]
