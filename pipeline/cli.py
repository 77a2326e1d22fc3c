"""The ``finetune`` command: every pipeline step by hand, the local run, compile, submit."""

from __future__ import annotations

import json
import logging
import os
import sys

import click

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class Group(click.Group):
    """Turns the project's ConfigError (and missing inputs) into one line and exit code 2."""

    def invoke(self, ctx):
        from components.common.errors import ConfigError

        try:
            return super().invoke(ctx)
        except (ConfigError, FileNotFoundError, FileExistsError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)


@click.group(cls=Group)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """Fine-tune ResNet50 image classifiers on Kubeflow Pipelines."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "absl", "urllib3", "google"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@main.command("demo-data")
@click.argument("out")
@click.option("--classes", default=3, show_default=True)
@click.option("--per-class", default=40, show_default=True)
@click.option("--size", default=96, show_default=True, help="Typical image side in pixels.")
@click.option("--seed", default=0, show_default=True)
def demo_data(out: str, classes: int, per_class: int, size: int, seed: int) -> None:
    """Write a deterministic, class-separable demo image set to OUT."""
    from components.common.demo_data import write_demo_data

    _print_json(write_demo_data(out, classes, per_class, size, seed))


@main.command("prepare-data")
@click.option("--source", required=True, help="Class-per-folder dir or path,label CSV.")
@click.option("--output", required=True, help="New folder (or gs:// prefix) for examples.")
@click.option("--train-fraction", default=0.8, show_default=True)
@click.option("--val-fraction", default=0.1, show_default=True)
@click.option("--test-fraction", default=0.1, show_default=True)
@click.option("--min-side", default=32, show_default=True)
@click.option("--max-pixels", default=50_000_000, show_default=True)
@click.option("--resize-max-side", default=0, show_default=True, help="0 keeps the size.")
@click.option("--near-duplicates/--no-near-duplicates", default=True, show_default=True)
@click.option("--allow-small-classes", is_flag=True)
@click.option("--split-state", default="", help="File that pins splits across runs.")
@click.option("--examples-per-shard", default=1000, show_default=True)
@click.option("--augmentation", default="{}", help="JSON of AugmentPolicy fields.")
@click.argument("beam_args", nargs=-1)
def prepare_data(beam_args: tuple[str, ...], augmentation: str, **kwargs) -> None:
    """Validate, de-duplicate, split and shard images (extra args go to Beam)."""
    from components.common.augment_policy import AugmentPolicy
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    policy = AugmentPolicy.from_dict(json.loads(augmentation))
    stats = run(PrepareConfig(augmentation=policy, beam_args=beam_args, **kwargs))
    _print_json({k: stats[k] for k in ("fingerprint", "inputs", "accepted", "skipped",
                                       "split_totals", "skip_reasons")})


@main.command("train")
@click.option("--examples", required=True, help="Examples artifact from prepare-data.")
@click.option("--output", required=True, help="Folder for the trained_model artifact.")
@click.option("--image-size", default=224, show_default=True)
@click.option("--epochs", default=10, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--optimizer", default="adam", show_default=True)
@click.option("--schedule", default="cosine", show_default=True)
@click.option("--bn-policy", default="frozen", show_default=True)
@click.option("--fine-tune-blocks", default=0, show_default=True)
@click.option("--fine-tune-epochs", default=0, show_default=True)
@click.option("--bn-momentum", default=0.0, show_default=True, help="0 keeps Keras' 0.99.")
@click.option("--bn-reestimate-batches", default=0, show_default=True)
@click.option("--sync-bn", is_flag=True)
@click.option("--clip", default="global_norm", show_default=True)
@click.option("--clip-threshold", default=1.0, show_default=True)
@click.option("--weights", default="imagenet", show_default=True,
              help="imagenet, none, or a .weights.h5 path (local or gs://).")
@click.option("--precision", default="auto", show_default=True)
@click.option("--xla", default="auto", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--backup-dir", default="", help="Stable URI for resumable checkpoints.")
@click.option("--steps-per-epoch", default=0, show_default=True, help="0: one pass.")
def train(**kwargs) -> None:
    """Fine-tune ResNet50 with a BN policy and measured gradient clipping."""
    from components.train.config import TrainConfig

    cfg = TrainConfig(**kwargs).validate()
    from components.train.run import run

    _print_json(run(cfg))


@main.command("export")
@click.option("--model", "model_dir", required=True, help="trained_model folder.")
@click.option("--examples", required=True, help="Examples artifact (parity images).")
@click.option("--output", required=True, help="New folder for the SavedModel.")
def export(model_dir: str, examples: str, output: str) -> None:
    """Export and infra-validate a SavedModel that serves raw image bytes."""
    from components.export.run import run

    _print_json(run(model_dir, examples, output))
