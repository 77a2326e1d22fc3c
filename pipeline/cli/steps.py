"""``finetune`` commands that run one pipeline step by hand, and the gate's statistics."""

from __future__ import annotations

import json
import uuid

import click

from components.evaluate.gate import GateConfig
from components.prepare_data.config import PrepareConfig
from components.train.config import TrainConfig
from pipeline.cli.base import URI, RegistryURI, Weights, main, print_json
from pipeline.options import config_options


@main.command("demo-data")
@click.argument("out", type=URI())
@click.option("--classes", default=3, show_default=True)
@click.option("--per-class", default=40, show_default=True)
@click.option("--size", default=96, show_default=True, help="Typical image side in pixels.")
@click.option("--seed", default=0, show_default=True)
def demo_data(out: str, classes: int, per_class: int, size: int, seed: int) -> None:
    """Write a deterministic, class-separable demo image set to OUT."""
    from components.common.demo_data import write_demo_data

    print_json(write_demo_data(out, classes, per_class, size, seed))


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

    print_json(write_demo_weights(out, image_size, seed, epochs, per_class))


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
    print_json({k: stats[k] for k in ("fingerprint", "inputs", "accepted", "skipped",
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

    print_json(run(cfg))


@main.command("export")
@click.option("--model", "model_dir", required=True, type=URI(), help="trained_model folder.")
@click.option("--examples", required=True, type=URI(),
              help="Examples artifact (parity images).")
@click.option("--output", required=True, type=URI(), help="New folder for the SavedModel.")
def export(model_dir: str, examples: str, output: str) -> None:
    """Export and infra-validate a SavedModel that serves raw image bytes."""
    from components.export.run import run

    print_json(run(model_dir, examples, output))


@main.command("evaluate")
@click.option("--candidate", required=True, type=URI(), help="Candidate SavedModel folder.")
@click.option("--examples", required=True, type=URI())
@click.option("--output", required=True, type=URI())
@click.option("--baseline", default="", type=URI(), help="Production SavedModel folder.")
@click.option("--registry", default="", type=RegistryURI(),
              help="Registry URI (instead of --baseline).")
@click.option("--model-name", default="")
@config_options(GateConfig, skip=("beam_args",))
@click.argument("beam_args", nargs=-1)
def evaluate(candidate, examples, output, baseline, registry, model_name, beam_args,
             **gate) -> None:
    """Score candidate vs production on the same test split and apply the gate (the
    pipeline's gate unless told otherwise). Arguments after ``--`` go to Beam (e.g. a
    portable runner: README, "Beam steps beyond one machine")."""
    from components.evaluate.run import resolve_baseline, run
    from components.registry.schemes import open_registry

    base, version = resolve_baseline(baseline, registry, model_name)
    result = run(candidate, examples, output,
                 GateConfig(**gate, beam_args=tuple(beam_args)).validate(), base, version,
                 registry=open_registry(registry, model_name) if registry else None)
    print_json({"decision": result["decision"], "reasons": result["reasons"]})


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
@config_options(GateConfig, skip=("allow_label_change", "beam_args"))
@click.option("--trials", type=int, default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def gate_characteristics(test_size, classes, accuracy, worse_by, discordance, trials, seed,
                         as_json, **gate) -> None:
    """How often the real gate promotes simulated candidates: size the test split."""
    from components.evaluate.characteristics import characteristics

    result = characteristics(GateConfig(**gate), test_size, classes, accuracy,
                             _floats(worse_by), trials, seed, discordance)
    if as_json:
        print_json(result)
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
