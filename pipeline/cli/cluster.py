"""``finetune platform``, ``compile``, ``submit`` and ``schedule``: the cluster side."""

from __future__ import annotations

import os
import tempfile

import click

from components.common.errors import ConfigError
from pipeline.cli.base import PIPELINE_OPTION, main


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
    from components.container_image import DEFAULT_IMAGE, IMAGE
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
    from components.registry.schemes import check_registry_uri

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
        click.option("--package-file", "pipeline_yaml", default="",
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

    arguments = typed_arguments(params, pipeline_yaml)
    _check_training_placement(pipeline_yaml, arguments)
    return profile, pipeline_yaml, arguments, target


def _check_training_placement(pipeline_yaml: str, arguments: dict) -> None:
    """Refuse ``workers`` > 1 for a pipeline compiled to train in its step's pod now,
    rather than in the run's train step."""
    import json

    from components.train.pods import WorkerPods, refuse_workers_in_one_pod
    from pipeline.pipeline import compiled_worker_pods

    try:
        workers = int(json.loads(arguments.get("train_extra_json") or "{}").get("workers", 1))
    except (ValueError, TypeError, AttributeError):
        return  # the resolve step names what is wrong with it
    if WorkerPods.from_json(compiled_worker_pods(pipeline_yaml)).backend == "pod":
        refuse_workers_in_one_pod(workers)


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
