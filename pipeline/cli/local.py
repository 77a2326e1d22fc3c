"""``finetune run-local``: the main or the ablation pipeline under kfp.local."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from components.ablation.config import AblationGrid
from components.common.settings import settings
from components.train.config import TrainConfig
from pipeline.cli.base import PIPELINE_OPTION, URI, RegistryURI, Weights, main, print_json
from pipeline.local_run import SMALL_SIZES, TRAIN_EXTRA
from pipeline.options import config_options, optional_setting_options
from pipeline.parameters import FIELDS

RUN_LOCAL_SETTINGS = {name: FIELDS[name] for name in (
    "epochs", "learning_rate", "image_size", "batch_size", "bn_policy", "clip",
    "clip_threshold", "weights", "min_accuracy")} | {
    option: (TrainConfig, setting) for option, setting in TRAIN_EXTRA.items()}


@main.command("run-local")
@click.option("--workdir", default="runs/local", type=URI(), show_default=True,
              help="Work folder: demo data, registry, runs and their logs.")
@click.option("--data", default="", type=URI(),
              help="Image source; default: generated demo data.")
@click.option("--registry", default="", type=RegistryURI(),
              help="Registry URI; default: WORKDIR/registry.")
@click.option("--model-name", default="demo", show_default=True,
              help="The model's name in the registry.")
@optional_setting_options(RUN_LOCAL_SETTINGS, notes={
    **{k: f"run-local: {v}" for k, v in SMALL_SIZES.items()},
    "weights": "run-local: the demo backbone (finetune demo-weights), made once and cached"},
    types={"weights": Weights()})
@click.option("--force", is_flag=True, default=None,
              help="Retrain even when data, settings and code equal production's.")
@click.option("--stream", is_flag=True, help="Stream every step's output, as kfp.local prints "
                                            "it (-v before the command: debug logs).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document of the outcome on stdout (progress on stderr).")
@click.option("--runner", type=click.Choice(["subprocess", "container"]), default="subprocess",
              show_default=True, help="container: every step in the image, built here with "
                                      "podman (make image-local), no network, non-root.")
@PIPELINE_OPTION
@config_options(AblationGrid)
def run_local(workdir, data, registry, model_name, stream, as_json, runner, pipeline_name,
              bn_policies, clips, seeds, **params) -> None:
    """Run the whole pipeline locally (kfp.local), on demo data unless --data is given."""
    import contextlib

    from pipeline.local_run import LocalRunFailed
    from pipeline.local_run import run_local as run
    from pipeline.verdict import verdict

    grid = AblationGrid(bn_policies, clips, seeds).validate()
    given = {TRAIN_EXTRA.get(k, k): v for k, v in params.items()
             if v is not None and k != "weights"}
    TrainConfig.of(examples=".", output=".", **{
        k: v for k, v in {**SMALL_SIZES, **given}.items() if k in settings(TrainConfig)}).validate()
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            if pipeline_name == "ablation":
                if runner != "subprocess":
                    raise click.UsageError("--runner container runs the main pipeline; the "
                                           "ablation runs with the subprocess runner")
                _run_ablation(workdir, data, stream, grid, params)
                return
            summary = run(workdir, data, registry, model_name, verbose=stream, runner=runner,
                          **params)
    except LocalRunFailed as err:
        click.echo(f"\nerror: {err}", err=True)
        sys.exit(1)
    if as_json:
        print_json(summary)
        return
    click.echo("\n" + "\n".join(verdict(summary)))


def _run_ablation(workdir, data, verbose, grid, params) -> None:
    import inspect

    from pipeline.ablation import build_ablation_pipeline
    from pipeline.local_run import run_local_ablation

    taken = inspect.signature(build_ablation_pipeline().pipeline_func).parameters
    taken = {*taken, *TRAIN_EXTRA}
    ignored = [k for k, v in params.items() if v is not None and k not in taken]
    if ignored:
        raise click.UsageError(f"--pipeline ablation takes its policies and clips from "
                               f"--bn-policies and --clips and has no gate: drop "
                               f"{', '.join('--' + k.replace('_', '-') for k in ignored)}")
    params = {k: v for k, v in params.items() if k in taken}
    result = run_local_ablation(workdir, grid, data, verbose=verbose, **params)
    click.echo(Path(result["markdown"]).read_text())
    click.echo(f"ablation report: {result['report']}")
