"""``finetune run-local``: the compiled pipeline under kfp.local, no cluster needed.

A person sees one line per step start and end; every step's output goes to its own log
under ``WORKDIR/runs/<time>/``, beside the run's HTML report."""

import contextlib
import json
import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path

# The pipeline's own recipe (its defaults), smaller: only the sizes differ from a
# scheduled run, and the weights (the demo backbone: ImageNet's cannot be downloaded here).
SMALL_SIZES = {"image_size": 64, "epochs": 4, "batch_size": 16}
# run-local options that are training settings but no pipeline parameter -> the setting
TRAIN_EXTRA = {"head_epochs": "head_epochs", "train_workers": "workers"}
LOCK_FILE = ".run-local.lock"
DEMO_BACKBONE_SIZE = 64
# Each compiled step first runs `pip install kfp==... --no-deps`, a second interpreter
# start-up per step; the local venv already has that kfp, so local runs skip it.
PIP_PREAMBLE = re.compile(r"PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install .*?&& ",
                          re.S)


class LocalRunFailed(RuntimeError):
    """A step failed; the message names it, shows its log's tail and where the logs are."""


def task_outputs(run_dir: Path | None, task: str) -> dict:
    """What kfp.local recorded as ``task``'s outputs: its executor output's parameter
    values and each output artifact's URI, by name; empty when the task did not run."""
    record = run_dir / task / "executor_output.json" if run_dir else None
    if not record or not record.is_file():
        return {}
    written = json.loads(record.read_text())
    uris = {name: found["artifacts"][0]["uri"]
            for name, found in written.get("artifacts", {}).items() if found.get("artifacts")}
    return {**written.get("parameterValues", {}), **uris}


def _without_pip_preamble(pipeline_yaml: str) -> str:
    from pipeline.pipeline import edit_containers

    def drop(container: dict) -> None:
        container["command"][2] = PIP_PREAMBLE.sub("", container["command"][2])
    return edit_containers(pipeline_yaml, drop)


def demo_backbone() -> str:
    """The demo backbone (``finetune demo-weights``), made once per machine and cached:
    ImageNet weights cannot be downloaded offline, and a fine-tune needs pretrained ones."""
    from components.train.demo_backbone import HUE_BANDS, PATTERNS
    from pipeline.local_progress import follow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "resnet-finetune")
    classes = len(PATTERNS) * HUE_BANDS  # a changed pretext task is a new file
    path = cache / f"demo-backbone-{DEMO_BACKBONE_SIZE}px-{classes}classes-seed0.weights.h5"
    if not path.exists():
        log = cache / "demo-backbone.log"
        print(f"run-local: pretraining the demo backbone once into {path} (log: {log})",
              flush=True)
        follow([sys.executable, "-m", "pipeline", "demo-weights", str(path), "--image-size",
                str(DEMO_BACKBONE_SIZE)], "demo-backbone", log, sys.stdout)
    return str(path)


@contextlib.contextmanager
def _workspace(workdir: str, data: str, registry: str = ""):
    """The checked local work folder and the image source (demo data when none), held
    for this run alone: a second run-local in the same folder would rewrite the compiled
    YAML and the split state under the first."""
    import fcntl

    from components.common import storage
    from components.common.errors import ConfigError
    from components.registry.schemes import check_registry_uri

    for option, value in (("--workdir", workdir), ("--data", data)):
        storage.check_uri(value, option)
    check_registry_uri(registry)
    if not storage.is_local(workdir):
        raise ConfigError(f"--workdir {workdir}: kfp.local needs a local folder")
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with open(work / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            lock.seek(0)
            raise ConfigError(f"--workdir {work}: another run-local is running there (pid "
                              f"{lock.read().strip() or '?'}); wait for it, or give this run "
                              "another --workdir") from err
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        if not data:
            from components.common.demo_data import write_demo_data

            data = str(work / "demo-data")
            if not Path(data).exists():
                write_demo_data(data, classes=3, per_class=40, size=96, seed=0)
        yield work, data


def small_arguments(params: dict) -> dict:
    """run-local's sizes and the demo backbone under the given settings (None = not
    given); settings that are no pipeline parameter (the head warm-up) go in
    ``train_extra_json``; every other setting is the pipeline's default."""
    given = {k: v for k, v in params.items() if v is not None}
    given.setdefault("weights", demo_backbone())
    extra = {setting: given.pop(k) for k, setting in TRAIN_EXTRA.items() if k in given}
    return {**SMALL_SIZES, **given, **({"train_extra_json": json.dumps(extra)} if extra else {})}


def _run_compiled(work: Path, pipeline: str, arguments: dict, verbose: bool,
                  runner: str = "subprocess"):
    """Compile ``pipeline`` (train without retries: a local failure should stop at once),
    run the YAML under kfp.local with a line per step; returns (logs, failure, run folder,
    wall seconds). The ``container`` runner runs every step in the image built here."""
    from kfp import components, local

    from pipeline import container
    from pipeline.local_progress import StepLogs
    from pipeline.pipeline import compile_pipeline
    from pipeline.profiles import load

    root = work / "pipeline-root"
    with contextlib.ExitStack() as stack:
        overrides = {"train_retries": 0}
        if runner == "container":
            overrides["image"] = stack.enter_context(
                container.steps_in_containers(work, arguments))
            local.init(runner=local.DockerRunner(network_mode="none"), pipeline_root=str(root))
        else:
            local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
        pipeline_yaml = compile_pipeline(str(work / f"{pipeline}.yaml"),
                                         load("kubeflow", overrides), pipeline,
                                         local=True)
        if runner != "container":  # the image's steps run the compiled commands as they are
            pipeline_yaml = _without_pip_preamble(pipeline_yaml)
        compiled = components.load_component_from_file(pipeline_yaml)
        logs = StepLogs(work / "runs" / time.strftime("%Y%m%d-%H%M%S"), sys.stdout, verbose)
        stack.callback(logs.close)
        print(f"run-local: {pipeline_yaml} under kfp.local ({runner}); logs and report in "
              f"{logs.folder}")
        started, failure = time.perf_counter(), ""
        earlier = set(root.iterdir()) if root.is_dir() else set()
        root_logger = logging.getLogger()
        handlers, root_logger.handlers = root_logger.handlers, [logging.StreamHandler(logs)]
        try:
            with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs), \
                    warnings.catch_warnings():
                # kfp.local's warnings, once per step, that the steps' image is not
                # Python's (the subprocess runner runs them in this venv on purpose) and
                # that resource requests mean nothing locally.
                warnings.filterwarnings("ignore", "You may be attemping to run a task")
                warnings.filterwarnings("ignore", ".*have no effect in the current local runner")
                compiled(**arguments)
        except RuntimeError as err:
            failure = logs.failure(str(err))
        finally:
            root_logger.handlers = handlers
            logs.close()
    created = [p for p in set(root.iterdir()) - earlier if p.is_dir()] if root.is_dir() else []
    run_dir = created[0] if len(created) == 1 else None
    return logs, failure, run_dir, time.perf_counter() - started


def run_local(workdir: str, data: str = "", registry: str = "", model_name: str = "demo",
              verbose: bool = False, runner: str = "subprocess", **params) -> dict:
    """Compile the pipeline to YAML and run that YAML with kfp.local; summarise the run
    and write its HTML report. Raises ``LocalRunFailed`` when a step fails."""
    with _workspace(workdir, data, registry) as (work, data):
        return _run_main(work, data, registry, model_name, verbose, runner, params)


def _run_main(work: Path, data: str, registry: str, model_name: str, verbose: bool,
              runner: str, params: dict) -> dict:
    registry = registry or str(work / "registry")
    if runner == "container":
        from components.common import storage
        from components.common.errors import ConfigError

        if not (storage.is_local(registry) and storage.is_local(data)):
            raise ConfigError(f"--registry {registry} / --data {data}: steps in containers "
                              "have no network; use local folders with --runner container")
        data, registry = str(Path(data).resolve()), str(Path(registry).resolve())
    arguments = {**small_arguments(params), "source": data, "registry_uri": registry,
                 "model_name": model_name, "split_state": str(work / "split_state.jsonl")}
    logs, failure, run_dir, seconds = _run_compiled(work, "main", arguments, verbose, runner)
    summary = summarize(run_dir, registry, model_name, seconds, failed=bool(failure))
    summary["logs"] = str(logs.folder)
    summary["report"] = str(_report(logs, summary, registry, model_name, failure))
    if failure:
        _record_cause(registry, model_name, *logs.failed)
        raise LocalRunFailed(f"{failure}\nrun report: {summary['report']}")
    return summary


def _record_cause(registry: str, model_name: str, step: str, cause: str) -> None:
    """Add the failing step and its error to the run's record: KFP hands the exit handler
    only ``Task exit-handler-1 failed.``"""
    from components.registry.schemes import open_registry

    reg = open_registry(registry, model_name)
    failed = [r for r in reg.runs() if r["status"] == "FAILED"]
    if failed:
        reg.log_run(failed[-1]["run_id"], "cause", {"step": step, "error": cause})


def run_local_ablation(workdir: str, grid, data: str = "", verbose: bool = False,
                       **params) -> dict:
    """The ablation pipeline under kfp.local: every cell of ``grid`` (an AblationGrid)
    trained, exported and scored; returns the report's rows and where it is."""
    grid.validate()
    with _workspace(workdir, data) as (work, data):
        return _run_ablation(work, data, grid, verbose, params)


def _run_ablation(work: Path, data: str, grid, verbose: bool, params: dict) -> dict:
    from components.ablation.contract import HTML_FILE, MARKDOWN_FILE, ROWS_FILE

    arguments = small_arguments(params)
    arguments.update(source=data, grid=grid.cells(),
                     split_state=str(work / "split_state.jsonl"))
    logs, failure, run_dir, seconds = _run_compiled(work, "ablation", arguments, verbose)
    if failure:
        raise LocalRunFailed(failure)
    table = Path(task_outputs(run_dir, "ablation-report")["table"])
    return {"rows": json.loads((table / ROWS_FILE).read_text()),
            "report": str(table / HTML_FILE), "markdown": str(table / MARKDOWN_FILE),
            "logs": str(logs.folder), "wall_seconds": round(seconds, 1)}


def _report(logs, summary: dict, registry: str, model_name: str, failure: str) -> Path:
    from components.registry.schemes import open_registry
    from components.report import run_report

    return run_report.write(logs.folder / "report.html", summary, logs.rows(),
                            open_registry(registry, model_name), failure)


def summarize(run_dir: Path | None, registry: str, model_name: str, wall_seconds: float,
              failed: bool = False) -> dict:
    from components.common.contract import read_json
    from components.common.examples import STATS_FILE
    from components.evaluate.contract import GATE_FILE, METRICS_FILE
    from components.evaluate.gate import next_step
    from components.registry.schemes import open_registry
    from components.train.contract import HISTORY_FILE

    produced = {"examples": "prepare-data", "trained_model": "train",
                "saved_model": "export-model", "evaluation": "evaluate"}
    reg = open_registry(registry, model_name)
    written = {name: task_outputs(run_dir, task).get(name) for name, task in produced.items()}
    artifacts = {"run": str(run_dir or ""), **written}
    artifacts = {k: v for k, v in artifacts.items() if v}
    summary = {"production_version": reg.current(), "registry": reg.base,
               "artifacts": artifacts, "wall_seconds": round(wall_seconds, 1)}
    if failed or "evaluation" not in artifacts:
        record = reg.runs()[-1] if reg.runs() else {}
        decision = "failed" if failed else record.get("decision")
        gate = {"decision": decision, "reasons": record.get("reasons", [])}
        return {"gate": {**gate, "next_step": "" if failed else next_step(gate)}, **summary}
    stats = read_json(artifacts["examples"], STATS_FILE)
    gate = read_json(artifacts["evaluation"], GATE_FILE)
    metrics = read_json(artifacts["evaluation"], METRICS_FILE)
    history = read_json(artifacts["trained_model"], HISTORY_FILE)
    return {
        "data": {"accepted": stats["accepted"], "skipped": stats["skipped"],
                 "splits": stats["split_totals"]},
        "validation_accuracy": history[-1].get("val_accuracy") if history else None,
        "test_accuracy": {"candidate": metrics["candidate"]["accuracy"],
                          "production": (metrics["baseline"] or {}).get("accuracy")},
        "gate": {"decision": gate["decision"], "reasons": gate["reasons"],
                 "next_step": next_step(gate)},
        "test_size": metrics["candidate"]["examples"],
        **summary,
    }
