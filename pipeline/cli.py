"""The ``finetune`` command: every pipeline step by hand, the local run, compile, submit."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import click

from components.common.errors import ConfigError, RunFailed
from components.common.settings import settings
from components.evaluate.gate import GateConfig
from components.prepare_data.config import PrepareConfig
from components.train.config import TrainConfig
from pipeline.local_run import SMALL_SIZES, TRAIN_EXTRA
from pipeline.options import config_options, optional_setting_options
from pipeline.parameters import FIELDS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Group(click.Group):
    """Turns the project's errors into one line: exit code 2 for bad input (ConfigError,
    missing inputs, a read-only output), 1 for a run that could not finish (a lost
    service, a full disk). ``--verbose`` shows the traceback instead."""

    def invoke(self, ctx):
        from components.promote.registry import RegistryError

        try:
            return super().invoke(ctx)
        except (ConfigError, FileNotFoundError, FileExistsError, PermissionError,
                RegistryError) as err:
            self._fail(ctx, err, f"error: {err}", 2)
        except RunFailed as err:
            self._fail(ctx, err, f"error: {err}", 1)
        except OSError as err:
            if err.errno not in _OS_FAILURES:
                raise
            what, fix, code = _OS_FAILURES[err.errno]
            where = f"{err.filename}: " if err.filename else ""
            self._fail(ctx, err, f"error: {where}{what}; {fix}", code)

    @staticmethod
    def _fail(ctx, err: Exception, line: str, code: int) -> None:
        if ctx.params.get("verbose"):
            raise err
        click.echo(line, err=True)
        sys.exit(code)


_OS_FAILURES = {
    errno.ENOSPC: ("no space left on the device", "free space or write to a larger disk, "
                   "then re-run (the unfinished artifact is cleared)", 1),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota, then re-run", 1),
    errno.EROFS: ("read-only file system", "choose a writable --output or work folder", 2),
}


class RegistryURI(click.ParamType):
    """A registry URI: MLflow's, the Kubeflow Model Registry's, Vertex AI's or a storage
    URI (``components/promote/registries.py`` lists the forms); a local path made
    absolute."""

    name = "registry"

    def convert(self, value, param, ctx):
        from components.common import storage
        from components.promote.registries import check_registry_uri

        check_registry_uri(value, "--registry")
        return value if "://" in value else storage.absolute(value)


class URI(click.ParamType):
    """A local path (made absolute) or a URI of a scheme storage serves; any other scheme
    is refused."""

    name = "uri"

    def convert(self, value, param, ctx):
        from components.common import storage

        storage.check_uri(value, param.opts[0] if param.opts else param.human_readable_name)
        return storage.absolute(value)


class Weights(URI):
    """imagenet, none, or a weights file's path or URI."""

    name = "weights"

    def convert(self, value, param, ctx):
        return value if value in ("imagenet", "none") else super().convert(value, param, ctx)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True,
              help="Debug logging, and a traceback instead of a one-line error.")
@click.version_option(package_name="resnet-finetune", prog_name="finetune")
def main(verbose: bool) -> None:
    """Fine-tune ResNet50 image classifiers on Kubeflow Pipelines."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "absl", "urllib3", "google", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:  # a failed bundle's tracebacks; the error itself ends the command
        logging.getLogger("apache_beam.runners").setLevel(logging.CRITICAL)


def _print_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@main.command("demo-data")
@click.argument("out", type=URI())
@click.option("--classes", default=3, show_default=True)
@click.option("--per-class", default=40, show_default=True)
@click.option("--size", default=96, show_default=True, help="Typical image side in pixels.")
@click.option("--seed", default=0, show_default=True)
def demo_data(out: str, classes: int, per_class: int, size: int, seed: int) -> None:
    """Write a deterministic, class-separable demo image set to OUT."""
    from components.common.demo_data import write_demo_data

    _print_json(write_demo_data(out, classes, per_class, size, seed))


@main.command("demo-weights")
@click.argument("out", type=URI())
@click.option("--image-size", default=64, show_default=True,
              help="The input side the backbone is pretrained at (use the run's).")
@click.option("--seed", default=0, show_default=True)
@click.option("--epochs", default=4, show_default=True)
@click.option("--per-class", default=40, show_default=True,
              help="Pretext images per class (pattern and hue band).")
def demo_weights(out: str, image_size: int, seed: int, epochs: int, per_class: int) -> None:
    """Pretrain a ResNet50 backbone on a synthetic task disjoint from the demo classes,
    for machines that cannot download ImageNet weights (pass OUT as --weights)."""
    from components.train.demo_backbone import write_demo_weights

    _print_json(write_demo_weights(out, image_size, seed, epochs, per_class))


@main.command("prepare-data")
@config_options(PrepareConfig, skip=("augmentation", "beam_args"),
                types={"source": URI(), "output": URI(), "split_state": URI()})
@click.option("--augmentation", default="{}", help="JSON of AugmentPolicy fields.")
@click.argument("beam_args", nargs=-1)
def prepare_data(beam_args: tuple[str, ...], augmentation: str, **kwargs) -> None:
    """Validate, de-duplicate, split and shard images (arguments after -- go to Beam)."""
    from components.common.augment_policy import AugmentPolicy
    from components.prepare_data.run import run

    policy = AugmentPolicy.from_dict(json.loads(augmentation))
    stats = run(PrepareConfig(augmentation=policy, beam_args=beam_args, **kwargs))
    _print_json({k: stats[k] for k in ("fingerprint", "inputs", "accepted", "skipped",
                                       "split_totals", "skip_reasons")})


@main.command("train")
@config_options(TrainConfig, types={"weights": Weights(),
                                   **{name: URI() for name in ("examples", "output",
                                                               "backup_dir")}},
                overrides={"run_id": dict(default=lambda: uuid.uuid4().hex[:12],
                                          show_default="a fresh id")})
def train(**kwargs) -> None:
    """Fine-tune ResNet50 with a BN policy and measured gradient clipping."""
    cfg = TrainConfig.of(**kwargs).validate()
    from components.train.run import run

    _print_json(run(cfg))


@main.command("export")
@click.option("--model", "model_dir", required=True, type=URI(), help="trained_model folder.")
@click.option("--examples", required=True, type=URI(),
              help="Examples artifact (parity images).")
@click.option("--output", required=True, type=URI(), help="New folder for the SavedModel.")
def export(model_dir: str, examples: str, output: str) -> None:
    """Export and infra-validate a SavedModel that serves raw image bytes."""
    from components.export.run import run

    _print_json(run(model_dir, examples, output))


@main.command("evaluate")
@click.option("--candidate", required=True, type=URI(), help="Candidate SavedModel folder.")
@click.option("--examples", required=True, type=URI())
@click.option("--output", required=True, type=URI())
@click.option("--baseline", default="", type=URI(), help="Production SavedModel folder.")
@click.option("--registry", default="", type=RegistryURI(),
              help="Registry URI (instead of --baseline).")
@click.option("--model-name", default="")
@config_options(GateConfig)
def evaluate(candidate, examples, output, baseline, registry, model_name, **gate) -> None:
    """Score candidate vs production on the same test split and apply the gate (the
    pipeline's gate unless told otherwise)."""
    from components.evaluate.run import resolve_baseline, run
    from components.promote.registries import open_registry

    base, version = resolve_baseline(baseline, registry, model_name)
    result = run(candidate, examples, output, GateConfig(**gate).validate(), base, version,
                 registry=open_registry(registry, model_name) if registry else None)
    _print_json({"decision": result["decision"], "reasons": result["reasons"]})


@main.group("gate")
def gate_group() -> None:
    """The promotion gate's statistics."""


def _floats(value: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError as err:
        raise click.BadParameter(f"{value!r}: use comma-separated numbers, e.g. 0,0.05,0.1",
                                 param_hint="--worse-by") from err


@gate_group.command("characteristics")
@click.option("--test-size", type=int, required=True, help="Paired test images per run.")
@click.option("--classes", type=int, default=3, show_default=True)
@click.option("--accuracy", type=float, default=0.9, show_default=True,
              help="Production's accuracy.")
@click.option("--worse-by", default="0,0.05,0.1", show_default=True,
              help="Candidates to simulate: accuracy below production's (0 = equally good).")
@click.option("--discordance", type=float, default=None,
              help="Share of test images on which the two models disagree (fine-tunes of "
                   "the same data: often 0.02-0.1); default: independent errors.")
@click.option("--min-accuracy", type=float, default=0.5, show_default=True)
@click.option("--margin", "non_inferiority_margin", type=float, default=0.035,
              show_default=True, help="Non-inferiority margin (below 0: off).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--mcnemar-alpha", type=float, default=0.05, show_default=True,
              help="Below 0: off.")
@click.option("--max-class-recall-drop", type=float, default=0.1, show_default=True,
              help="Below 0: off.")
@click.option("--class-alpha", type=float, default=0.05, show_default=True)
@click.option("--min-class-support", type=int, default=10, show_default=True)
@click.option("--trials", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def gate_characteristics(test_size, classes, accuracy, worse_by, discordance, trials, seed,
                         as_json, **gate) -> None:
    """How often the real gate promotes simulated candidates: size the test split."""
    from components.evaluate.characteristics import characteristics
    from components.evaluate.gate import GateConfig

    optional = ("min_accuracy", "non_inferiority_margin", "mcnemar_alpha",
                "max_class_recall_drop")
    gate = {k: (None if k in optional and v < 0 else v) for k, v in gate.items()}
    result = characteristics(GateConfig(**gate), test_size, classes, accuracy,
                             _floats(worse_by), trials, seed, discordance)
    if as_json:
        _print_json(result)
        return
    for worse, rate in result["acceptance_rate"].items():
        who = "equally good" if float(worse) == 0 else f"worse by {worse}"
        click.echo(f"{who:>16}: promoted {rate:6.1%} of {trials} simulated runs")
    click.echo(f"what {test_size} test images can see, assuming {result['assumption']}:")
    detectable = result["detectable_difference"]
    click.echo("  smallest detectable improvement: " + (
        f"{detectable:.4f}" if detectable is not None else "none at this size"))
    if "pass_rate_if_equal" in result:
        required = result["required_test_size"]
        click.echo(f"  an equally good candidate passes non-inferiority "
                   f"{result['pass_rate_if_equal']:.1%} of the time; 80% needs "
                   f"{required if required else 'more than 10,000,000'} test images or a "
                   f"margin of {result['required_margin']:.4f}")
        margin = result["at_margin"]
        click.echo(f"  a candidate exactly {margin['worse_by']:g} worse passes at most "
                   f"{margin['worst']['pass_rate']:.1%} (at discordance "
                   f"{margin['worst']['discordance']:g}; promised about "
                   f"{margin['promise']:.0%}): " + ", ".join(
                       f"{float(d):.3f}: {r:.1%}"
                       for d, r in margin["pass_rate_by_discordance"].items()))


@main.group("registry")
def registry_group() -> None:
    """Inspect the registry, promote a version, roll production back."""


def _registry(registry: str, model_name: str):
    from components.promote.registries import open_registry

    return open_registry(registry, model_name)


def _registry_options(func):
    func = click.option("--model-name", required=True)(func)
    return click.option("--registry", "registry_uri", required=True, type=RegistryURI())(func)


@registry_group.command("list")
@_registry_options
@click.option("--json", "as_json", is_flag=True)
def registry_list(registry_uri, model_name, as_json) -> None:
    """The versions of a model, production marked."""
    reg = _registry(registry_uri, model_name)
    versions, production = reg.list_versions(), reg.current()
    if not versions and not reg.runs():
        others = reg.model_names()
        raise ConfigError(f"--model-name {model_name}: no such model in {registry_uri}; " + (
            f"models there: {', '.join(others)}" if others else "it holds no model yet"))
    if as_json:
        _print_json({"production": production, "versions": versions})
        return
    for record in versions:
        mark = " <- production" if record["version"] == production else ""
        acc = record.get("metrics", {}).get("accuracy")
        click.echo(f"v{record['version']}  run={record['run_id']}  accuracy={acc}{mark}")


@registry_group.command("runs")
@_registry_options
@click.option("--json", "as_json", is_flag=True)
def registry_runs(registry_uri, model_name, as_json) -> None:
    """The run log: one line per pipeline run (status, decision, versions), oldest first."""
    runs = _registry(registry_uri, model_name).runs()
    if as_json:
        _print_json({"runs": runs})
        return
    for run in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(run["time"]))
        versions = f"production v{run['production_version']}" \
            if run["production_version"] is not None else "no production"
        promoted = f" -> v{run['promoted_version']}" if run["promoted_version"] else ""
        click.echo(f"{when}Z  {run['run_id']}  {run['status']:<9}  {run['decision'] or '-':<9}  "
                   f"{versions}{promoted}  data {str(run['data_fingerprint'] or '-')[:12]}"
                   + (f"  error: {run['failed_step'] + ': ' if run['failed_step'] else ''}"
                      f"{run['error']}" if run["error"] else ""))


@registry_group.command("show")
@_registry_options
@click.argument("ref", default="production")
@click.option("--json", "as_json", is_flag=True)
def registry_show(registry_uri, model_name, ref, as_json) -> None:
    """Show a version number or an alias (default production)."""
    reg = _registry(registry_uri, model_name)
    record = reg.resolve(ref)
    _print_json(record if as_json else {k: record[k] for k in ("version", "uri", "run_id")})


@registry_group.command("promote")
@_registry_options
@click.option("--saved-model", default="", type=URI(), help="Register this SavedModel first.")
@click.option("--run-id", default="", help="Idempotency key of the registration.")
@click.option("--version", type=int, default=None, help="Promote an existing version.")
def registry_promote(registry_uri, model_name, saved_model, run_id, version) -> None:
    reg = _registry(registry_uri, model_name)
    if saved_model:
        version = reg.register(saved_model, run_id or saved_model)["version"]
    if version is None:
        raise click.UsageError("give --saved-model (and --run-id) or --version")
    _print_json(reg.promote(version, run_id))


@registry_group.command("rollback")
@_registry_options
def registry_rollback(registry_uri, model_name) -> None:
    """Point production back at its previous version (recorded in the history)."""
    _print_json(_registry(registry_uri, model_name).rollback())


PIPELINE_OPTION = click.option(
    "--pipeline", "pipeline_name", type=click.Choice(["main", "ablation"]), default="main",
    show_default=True, help="main: train, gate, promote; ablation: the BN x clipping grid.")


RUN_LOCAL_SETTINGS = {name: FIELDS[name] for name in (
    "epochs", "learning_rate", "image_size", "batch_size", "bn_policy", "clip",
    "clip_threshold", "weights", "min_accuracy")} | {"head_epochs": (TrainConfig, "head_epochs")}


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
@click.option("--bn-policies", default="frozen,bn_only,full", show_default=True,
              help="Ablation: the BN policies of the grid.")
@click.option("--clips", default="none,autoclip,agc", show_default=True,
              help="Ablation: the clip modes of the grid.")
@click.option("--seeds", default=1, show_default=True, help="Ablation: seeds per cell.")
def run_local(workdir, data, registry, model_name, stream, as_json, runner, pipeline_name,
              bn_policies, clips, seeds, **params) -> None:
    """Run the whole pipeline locally (kfp.local), on demo data unless --data is given."""
    import contextlib

    from pipeline.local_run import LocalRunFailed
    from pipeline.local_run import run_local as run
    from pipeline.verdict import verdict

    given = {k: v for k, v in params.items() if v is not None and k != "weights"}
    TrainConfig.of(examples=".", output=".", **{
        k: v for k, v in {**SMALL_SIZES, **given}.items() if k in settings(TrainConfig)}).validate()
    try:
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            if pipeline_name == "ablation":
                if runner != "subprocess":
                    raise click.UsageError("--runner container runs the main pipeline; the "
                                           "ablation runs with the subprocess runner")
                _run_ablation(workdir, data, stream, bn_policies, clips, seeds, params)
                return
            summary = run(workdir, data, registry, model_name, verbose=stream, runner=runner,
                          **params)
    except LocalRunFailed as err:
        click.echo(f"\nerror: {err}", err=True)
        sys.exit(1)
    if as_json:
        _print_json(summary)
        return
    click.echo("\n" + "\n".join(verdict(summary)))


def _run_ablation(workdir, data, verbose, bn_policies, clips, seeds, params) -> None:
    import inspect

    from components.ablation.config import AblationGrid
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
    grid = AblationGrid(tuple(bn_policies.split(",")), tuple(clips.split(",")), seeds)
    result = run_local_ablation(workdir, grid, data, verbose=verbose, **params)
    click.echo(Path(result["markdown"]).read_text())
    click.echo(f"ablation report: {result['report']}")


def _platform_options(func):
    for option in reversed([
        click.option("--platform", default="kubeflow", show_default=True,
                     help="Profile: kubeflow, gke, vertex, or a YAML file (see README)."),
        click.option("--image", default=None,
                     help="Overrides the profile's image (prefer a digest: ...@sha256:)."),
        click.option("--accelerator", default=None,
                     help="Overrides the profile's: nvidia.com/gpu, or NVIDIA_H100_80GB on "
                          "gke/vertex."),
        click.option("--gpus", type=int, default=None, help="Overrides the profile's count."),
    ]):
        func = option(func)
    return func


def _profile(platform: str, **overrides):
    from pipeline.profiles import load

    return load(platform, overrides)


@main.group("platform")
def platform_group() -> None:
    """Inspect platform profiles (built-in or from a YAML file)."""


@platform_group.command("show")
@click.argument("platform", default="kubeflow")
def platform_show(platform: str) -> None:
    """Print a profile as YAML: a starting point for your own profile file."""
    import yaml

    from pipeline.profiles import as_yaml_dict

    click.echo(yaml.safe_dump(as_yaml_dict(_profile(platform)), sort_keys=False), nl=False)


def _compile(output: str, profile, strict: bool, pipeline: str = "main") -> str:
    """Compile; a mutable image tag is a warning, or an error with ``--strict``."""
    from components.image import DEFAULT_IMAGE, IMAGE
    from pipeline.pipeline import compile_pipeline

    if not profile.image and IMAGE == DEFAULT_IMAGE:
        raise ConfigError(f"no image given: {DEFAULT_IMAGE} is this project's placeholder, "
                          "not a published image; build and push yours (make image IMAGE=...) "
                          "and pass --image REGISTRY/IMAGE@sha256:..., set the profile's "
                          "image, or set FINETUNE_IMAGE")
    warning = profile.mutable_image_warning()
    if warning and strict:
        raise ConfigError(f"{warning} (--strict)")
    if warning:
        click.echo(f"warning: {warning}", err=True)
    return compile_pipeline(output, profile, pipeline)


@main.command("compile")
@click.option("--output", default="pipeline.yaml", show_default=True)
@click.option("--strict", is_flag=True, help="Refuse an image that is not pinned by digest.")
@PIPELINE_OPTION
@_platform_options
def compile_command(output, strict, pipeline_name, platform, **overrides) -> None:
    """Compile the pipeline to YAML for a platform profile (needs no TensorFlow)."""
    click.echo(_compile(output, _profile(platform, **overrides), strict, pipeline_name))


URI_PARAMETERS = ("source", "split_state", "backup_dir", "weights")


def _params(pairs: tuple[str, ...]) -> dict:
    """``NAME=VALUE`` pairs as given (typed against the compiled pipeline later); URIs of
    unsupported schemes are refused."""
    from components.common import storage
    from components.promote.registries import check_registry_uri

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: use NAME=VALUE", param_hint="--param")
        params[key] = value
        if key == "registry_uri":
            check_registry_uri(value, f"--param {key}")
        elif key in URI_PARAMETERS and value not in ("", "imagenet", "none"):
            storage.check_uri(value, f"--param {key}")
    return params


def _run_options(func):
    for option in reversed([
        click.option("--experiment", default="resnet50-finetune", show_default=True),
        click.option("--pipeline", "pipeline_yaml", default="",
                     help="Compiled YAML; compiled now for the profile when not given."),
        click.option("--param", "params", multiple=True, help="NAME=VALUE (repeatable)."),
        click.option("--strict", is_flag=True,
                     help="When compiling: refuse an image not pinned by digest."),
        click.option("--host", default="", help="Kubeflow: the KFP API endpoint, e.g. "
                                                "https://kubeflow.example.com/pipeline"),
        click.option("--namespace", default="", help="Kubeflow: the profile namespace."),
        click.option("--token", default="", envvar="KFP_TOKEN",
                     help="Kubeflow: a bearer token (prefer the KFP_TOKEN variable)."),
        click.option("--token-file", default="",
                     help="Kubeflow: a file holding a bearer token, re-read per request."),
        click.option("--cookies", default="", envvar="KFP_COOKIES",
                     help="Kubeflow: session cookies, e.g. 'oauth2_proxy_kubeflow=...'."),
        click.option("--allow-http-credentials", is_flag=True,
                     help="Kubeflow: send the token or cookies to a plain http:// host "
                          "other than this machine (a trusted network only)."),
        click.option("--project", default=None, help="Vertex: overrides the profile's."),
        click.option("--region", default=None, help="Vertex: overrides the profile's."),
        _platform_options,
    ]):
        func = option(func)
    return func


def _run_context(kwargs: dict, cron: str = ""):
    """``(profile, compiled YAML, parameters, Kubeflow target)`` from the shared options."""
    from pipeline.kfp_api import KfpTarget

    overrides = {k: kwargs.pop(k) for k in ("image", "accelerator", "gpus", "project", "region")}
    profile = _profile(kwargs.pop("platform"), **overrides)
    target = KfpTarget(*(kwargs.pop(k) for k in ("host", "namespace", "token", "token_file",
                                                  "cookies", "allow_http_credentials")))
    if profile.is_vertex:
        profile.require_vertex_target()
        if target.host:
            raise ConfigError(f"--host {target.host}: the {profile.name!r} profile submits to "
                              "Vertex AI; --host is for Kubeflow profiles")
    elif not target.host:
        raise ConfigError(f"--host is required for the {profile.name!r} profile: the KFP API "
                          "endpoint, e.g. https://kubeflow.example.com/pipeline")
    params = _params(kwargs.pop("params"))
    if cron:  # checked for the backend before anything is compiled
        from pipeline.cron import for_kfp, for_vertex

        (for_vertex if profile.is_vertex else for_kfp)(cron)
    strict = kwargs.pop("strict")
    pipeline_yaml = kwargs.pop("pipeline_yaml") or _compile(
        os.path.join(tempfile.mkdtemp(prefix="finetune-"), "pipeline.yaml"), profile, strict)
    from pipeline.parameters import typed_arguments

    return profile, pipeline_yaml, typed_arguments(params, pipeline_yaml), target


@main.command("submit")
@_run_options
@click.option("--run-name", default="resnet50-finetune", show_default=True)
def submit(run_name, experiment, **kwargs) -> None:
    """Start one run on Kubeflow Pipelines or Vertex AI Pipelines."""
    from pipeline.pipeline import PIPELINE_NAME

    profile, pipeline_yaml, params, target = _run_context(kwargs)
    if profile.is_vertex:
        from pipeline import vertex_api

        click.echo(vertex_api.submit(profile, pipeline_yaml, params, run_name))
        return
    from pipeline import kfp_api

    click.echo(kfp_api.submit(target, profile, experiment, pipeline_yaml, PIPELINE_NAME,
                              params, run_name))


@main.command("schedule")
@_run_options
@click.option("--name", default="resnet50-finetune-nightly", show_default=True)
@click.option("--cron", required=True,
              help="Kubeflow: 6 fields, seconds first; Vertex: 5 fields. The other form is "
                   "translated.")
def schedule(name, cron, experiment, **kwargs) -> None:
    """Create (or replace) the recurring run: max one at a time, no catch-up."""
    from pipeline.pipeline import PIPELINE_NAME

    profile, pipeline_yaml, params, target = _run_context(kwargs, cron)
    if profile.is_vertex:
        from pipeline import vertex_api

        click.echo(vertex_api.schedule(profile, pipeline_yaml, params, name, cron))
        return
    from pipeline import kfp_api

    click.echo(kfp_api.schedule(target, profile, experiment, pipeline_yaml, PIPELINE_NAME,
                                params, name, cron))
