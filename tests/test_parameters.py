"""One parameter surface: the step configs are the source of the CLI's options, the
pipelines' defaults and descriptions and the README's table. Generated over every field,
so a new field that is not wired through fails here."""

import inspect
import re
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import pytest
import yaml

from components.common.settings import (
    build,
    default,
    flatten,
    from_parameters,
    group,
    setting,
    settings,
)
from components.evaluate.gate import OFF, GateConfig
from components.prepare_data.config import PrepareConfig
from components.train.config import TrainConfig
from pipeline import parameters
from pipeline.cli import main
from pipeline.pipeline import build_pipeline, compile_pipeline

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
COMMANDS = {TrainConfig: ("train", ()), PrepareConfig: ("prepare-data", ("augmentation",
                                                                         "beam_args")),
            GateConfig: ("evaluate", ("beam_args",))}


def _signature_default(func, name):
    return inspect.signature(getattr(func, "python_func", func)).parameters[name].default


@pytest.mark.parametrize("cls", COMMANDS, ids=lambda c: c.__name__)
def test_every_config_field_is_a_cli_option_with_the_config_default(cls):
    command_name, elsewhere = COMMANDS[cls]
    options = {p.name: p for p in main.commands[command_name].params}
    for found in settings(cls).values():
        if found.name in elsewhere:
            continue
        assert found.name in options, f"finetune {command_name} lacks --{found.name}"
        option = options[found.name]
        if found.name == "run_id":
            continue  # a fresh id per run, not the config's empty default
        expected = default(cls, found.name)
        assert option.required if expected is MISSING else option.default == expected, \
            found.name
        assert option.help, f"--{found.name} has no help"


def test_the_config_help_names_only_options_that_exist():
    """Error messages and help text tell users to set --flags: every one must exist."""
    options = {"--help"} | {opt for command in main.commands.values() for p in command.params
                            for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    sources = [ROOT / "components/train/config.py", ROOT / "components/prepare_data/config.py"]
    named = {flag for source in sources
             for flag in re.findall(r"--[a-z][a-z-]+", source.read_text())}
    assert named and named <= options, named - options


@pytest.mark.parametrize("pipeline", ["main", "ablation"])
def test_every_pipeline_parameter_has_a_description(tmp_path, pipeline):
    out = compile_pipeline(str(tmp_path / "p.yaml"), pipeline=pipeline)
    with open(out) as handle:
        spec = next(yaml.safe_load_all(handle))
    described = spec["root"]["inputDefinitions"]["parameters"]
    assert described and all(p.get("description") for p in described.values()), [
        name for name, p in described.items() if not p.get("description")]
    assert spec["pipelineInfo"]["description"]


def _resolve_step():
    from components.lineage.component import resolve_settings

    return resolve_settings


def test_pipeline_and_resolve_step_defaults_equal_the_config_defaults():
    pipeline = build_pipeline().pipeline_func
    for name, (cls, field_name) in parameters.FIELDS.items():
        expected = default(cls, field_name)
        for func in (pipeline, _resolve_step()):
            got = _signature_default(func, name)
            assert (got is inspect.Parameter.empty) if expected is MISSING else \
                got == expected, (func, name)


def _compiled_tasks(tmp_path, pipeline="main") -> tuple[dict, dict]:
    with open(compile_pipeline(str(tmp_path / "p.yaml"), pipeline=pipeline)) as handle:
        spec = next(yaml.safe_load_all(handle))
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return spec, {name: task for dag in dags for name, task in dag["tasks"].items()}


def test_the_resolve_step_takes_every_setting_parameter_of_the_pipeline_by_name(tmp_path):
    """The one wire between the run form and the steps: a pipeline parameter that the
    resolve step did not receive would be silently left at its default."""
    spec, tasks = _compiled_tasks(tmp_path)
    taken = set(spec["root"]["inputDefinitions"]["parameters"])
    own = {"registry_uri", "model_name", "force"}
    assert set(inspect.signature(_resolve_step().python_func).parameters) == taken - own
    bound = tasks["resolve-settings"]["inputs"]["parameters"]
    assert {name: p["componentInputParameter"] for name, p in bound.items()} == \
        {name: f"pipelinechannel--{name}" for name in taken - own}


@pytest.mark.parametrize("pipeline", ["main", "ablation"])
def test_the_steps_take_their_resolved_config_and_at_most_six_parameters(tmp_path, pipeline):
    spec, tasks = _compiled_tasks(tmp_path, pipeline)
    components = spec["components"]
    for step in ("prepare-data", "train", "evaluate"):
        declared = components[f"comp-{step}"]["inputDefinitions"]["parameters"]
        assert len(declared) <= 6, (step, sorted(declared))
        config = tasks[step]["inputs"]["parameters"]["config"]
        produced = config.get("taskOutputParameter", {}).get("producerTask", "").startswith(
            "resolve-settings") or config.get("componentInputParameter", "").startswith(
            "pipelinechannel--resolve-settings-")
        assert produced, (step, config)


@pytest.mark.parametrize("step", ["prepare", "train", "gate"])
def test_every_setting_reaches_the_resolved_config_by_name_or_through_extra_json(step):
    import json

    from components.lineage.resolve import STEP_PATHS, STEPS, resolve, step_config

    cls, parameter = STEPS[step]
    pipeline = {name: default(*parameters.FIELDS[name]) for name in parameters.FIELDS}
    pipeline["source"] = "s"
    named = {field_name for c, field_name in parameters.FIELDS.values() if c is cls}
    named |= {"image_size"} & set(settings(cls))  # the pipeline's image_size sets both steps'
    paths = {path: "p" for path in STEP_PATHS[cls]}
    rest = {name: _json(default(cls, name)) for name in settings(cls)
            if name not in named and name not in paths}
    assert rest, "some settings go through extra_json"
    resolved = resolve(pipeline, {parameter: json.dumps(rest)})[step]
    assert set(json.loads(resolved)) == set(settings(cls)) - set(paths)
    config = step_config(cls, resolved, **paths)
    expected = {**{n: default(cls, n) for n in settings(cls)}, **paths}
    if cls is PrepareConfig:
        expected["source"] = "s"
    assert config == build(cls, expected)


def _json(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


@pytest.mark.parametrize("extra, message", [
    ('{"epochs": 3}', "parameters of their own"),
    ('{"dropuot": 0.1}', "not TrainConfig settings"),
    ('{"augmentation": 1}', "not TrainConfig settings"),
    ('[1]', "JSON object"),
    ('{"head_epochs": 1', "is not JSON"),
    ('{"class_weights": "false"}', "class_weights='false': must be bool"),
    ('{"head_epochs": 1.5}', "head_epochs=1.5: must be int"),
])
def test_extra_json_is_checked_field_by_field(extra, message):
    from components.common.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        from_parameters(TrainConfig, "train_extra_json", extra, examples="e", output="o",
                        epochs=2)


def test_the_readme_parameter_table_is_current():
    table = parameters.markdown_table(build_pipeline().pipeline_func)
    assert table in README.read_text(), "run: python -m pipeline.parameters"
    assert parameters.settings_tables() in README.read_text(), \
        "run: python -m pipeline.parameters"


def test_configs_import_without_tensorflow():
    """Compiling and the CLI's option parsing need no TensorFlow."""
    import subprocess
    import sys

    code = ("import sys, pipeline.cli, pipeline.pipeline; "
            "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("arguments, message", [
    ({"source": "s", "registry_uri": "r", "epochz": "3"}, "unknown --param epochz"),
    ({"source": "s"}, "missing --param registry_uri"),
    ({"source": "s", "registry_uri": "r", "epochs": "3.5"}, "epochs=3.5: the pipeline takes "
                                                            "an integer"),
    ({"source": "s", "registry_uri": "r", "force": "1"}, "force=1: the pipeline takes true"),
])
def test_submitted_arguments_are_checked_against_the_compiled_pipeline(tmp_path, arguments,
                                                                       message):
    from components.common.errors import ConfigError

    pipeline_yaml = compile_pipeline(str(tmp_path / "p.yaml"))
    with pytest.raises(ConfigError, match=message):
        parameters.typed_arguments(arguments, pipeline_yaml)
    given = {"source": "s", "registry_uri": "r", "epochs": "3", "learning_rate": "1",
             "model_name": "123", "force": "true", "train_extra_json": '{"dropout": 0.1}'}
    assert parameters.typed_arguments(given, pipeline_yaml) == {
        "source": "s", "registry_uri": "r", "epochs": 3, "learning_rate": 1.0,
        "model_name": "123", "force": True, "train_extra_json": '{"dropout": 0.1}'}


def test_a_gate_threshold_has_one_spelling_its_default_is_the_runs_and_minus_one_is_off():
    from components.common.errors import ConfigError
    from components.evaluate.gate import THRESHOLDS

    signature = inspect.signature(build_pipeline().pipeline_func).parameters
    for found in fields(GateConfig):
        if found.name == "beam_args":  # how the step scores, not what the gate judges
            continue
        assert found.type in ("float", "int", "bool"), f"{found.name}: {found.type}"
        if found.name in signature:
            assert signature[found.name].default == found.default, found.name
    gate = GateConfig(max_ece=OFF, min_accuracy=-1)
    assert (gate.max_ece, gate.min_accuracy) == (OFF, OFF)
    assert not gate.checks("min_accuracy") and gate.checks("non_inferiority_margin")
    assert not any(GateConfig.only().checks(name) for name in THRESHOLDS)
    with pytest.raises(ConfigError, match="non_inferiority_margin=-0.02: .* or -1 for off"):
        GateConfig(non_inferiority_margin=-0.02).validate()


def test_train_settings_are_grouped_by_concern_and_each_group_validates_itself():
    from components.common.errors import ConfigError
    from components.train.config import BatchNormConfig, ClippingConfig

    groups = [f.name for f in fields(TrainConfig) if f.metadata.get("group")]
    assert groups == ["model", "optimizer", "loss", "batch_norm", "clipping", "runtime"]
    with pytest.raises(ConfigError, match="--clip-threshold"):
        ClippingConfig(clip="norm", clip_threshold=0).validate()
    with pytest.raises(ConfigError, match="--sync-bn"):
        BatchNormConfig(sync_bn=True).validate()
    config = TrainConfig.of(examples="e", output="o", clip="agc", bn_policy="full", seed=3)
    assert (config.clipping.clip, config.batch_norm.bn_policy, config.runtime.seed) == \
        ("agc", "full", 3)
    assert TrainConfig.of(**flatten(config)) == config
    with pytest.raises(TypeError, match="dropuot"):
        TrainConfig.of(examples="e", output="o", dropuot=0.1)


def test_a_setting_name_in_two_groups_is_refused():
    @dataclass(frozen=True)
    class First:
        size: int = setting(1, "A size.")

    @dataclass(frozen=True)
    class Second:
        size: int = setting(2, "Another size.")

    @dataclass(frozen=True)
    class Both:
        first: First = group(First, "")
        second: Second = group(Second, "")

    with pytest.raises(TypeError, match="two groups"):
        settings(Both)
