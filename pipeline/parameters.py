"""The pipelines' parameters: most set a config field and take its help and default from
it (components/common/settings); the few that belong to the pipeline carry their own
help here. The parameter descriptions of the compiled YAML (the Kubeflow UI's run form)
and the README's parameter table are made from this module."""

from __future__ import annotations

import inspect
import json

from components.evaluate.gate import GateConfig
from components.prepare_data.config import PrepareConfig
from components.registry.schemes import FORMS as REGISTRY_FORMS
from components.train.config import TrainConfig

FIELDS = {  # pipeline parameter -> the config field it sets
    "source": (PrepareConfig, "source"),
    "train_fraction": (PrepareConfig, "train_fraction"),
    "val_fraction": (PrepareConfig, "val_fraction"),
    "test_fraction": (PrepareConfig, "test_fraction"),
    "split_state": (PrepareConfig, "split_state"),
    **{name: (TrainConfig, name) for name in (
        "image_size", "bn_policy", "clip", "clip_threshold", "epochs", "batch_size",
        "learning_rate", "weights", "seed", "backup_dir")},
    **{name: (GateConfig, name) for name in (
        "min_accuracy", "max_ece", "non_inferiority_margin", "mcnemar_alpha",
        "max_class_recall_drop")},
    "gate_confidence": (GateConfig, "confidence"),
}
OWN = {  # the pipeline's own parameters
    "registry_uri": f"Registry: {REGISTRY_FORMS}.",
    "model_name": "The model's name in the registry.",
    "train_extra_json": "JSON of further TrainConfig settings (every option of `finetune "
                        "train` but those above, in snake_case).",
    "prepare_extra_json": "JSON of further PrepareConfig settings (every option of "
                          "`finetune prepare-data` but those above, in snake_case; "
                          "augmentation as an object of its fields).",
    "gate_extra_json": "JSON of further GateConfig settings (every gate option of "
                       "`finetune evaluate` but those above, in snake_case).",
    "force": "Train and evaluate even when data, settings and code match production's "
             "lineage.",
    "grid": "The ablation grid: one object per cell (bn_policy, clip, clip_threshold, "
            "seed), resolved over the run's settings in the cell; AblationGrid "
            "(components/ablation/config.py) makes it, `finetune run-local --pipeline "
            "ablation --bn-policies ... --clips ... --seeds N` runs one.",
}


def description(name: str) -> str:
    from components.common.settings import describe

    if name in OWN:
        return OWN[name]
    cls, field_name = FIELDS[name]
    return describe(cls, field_name)


def with_descriptions(pipeline_func, summary: str):
    """``pipeline_func`` with a docstring: ``summary``, then ``Args:`` describing every
    parameter (KFP compiles them into the pipeline's and its parameters' descriptions)."""
    names = inspect.signature(pipeline_func).parameters
    pipeline_func.__doc__ = f"{summary}\n\nArgs:\n" + "".join(f"    {name}: {description(name)}\n"
                                                for name in names)
    return pipeline_func


KINDS = {"NUMBER_INTEGER": ((int,), "an integer"), "NUMBER_DOUBLE": ((int, float), "a number"),
         "BOOLEAN": ((bool,), "true or false"), "LIST": ((list,), "a JSON list"),
         "STRUCT": ((dict,), "a JSON object")}


def typed_arguments(arguments: dict[str, str], pipeline_yaml: str) -> dict:
    """``arguments`` (name -> the text given) as the compiled pipeline's parameter types: a
    string parameter keeps its text (a ``*_extra_json`` stays JSON text), the others are
    parsed as JSON. Refuses, before submitting, an argument the pipeline does not take, a
    required parameter left out and a value of the wrong type, naming them."""
    import yaml

    from components.common.errors import ConfigError

    with open(pipeline_yaml) as handle:
        spec = next(yaml.safe_load_all(handle))
    taken = spec["root"]["inputDefinitions"]["parameters"]
    unknown = sorted(set(arguments) - set(taken))
    missing = sorted(n for n, p in taken.items() if not p.get("isOptional") and n not in arguments)
    if unknown or missing:
        problems = ([f"unknown --param {', '.join(unknown)}"] if unknown else []) + (
            [f"missing --param {', '.join(missing)}"] if missing else [])
        raise ConfigError(f"{'; '.join(problems)}: {pipeline_yaml} takes "
                          f"{', '.join(sorted(taken))}")
    return {name: _typed(name, text, taken[name]["parameterType"])
            for name, text in arguments.items()}


def _typed(name: str, text: str, kind: str):
    from components.common.errors import ConfigError

    if kind == "STRING":
        return text
    types, words = KINDS[kind]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
        raise ConfigError(f"--param {name}={text}: the pipeline takes {words}")
    return float(value) if kind == "NUMBER_DOUBLE" else value


def markdown_table(pipeline_func) -> str:
    """The README's table of ``pipeline_func``'s parameters: name, default, meaning."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for name, parameter in inspect.signature(pipeline_func).parameters.items():
        value = "(required)" if parameter.default is inspect.Parameter.empty else \
            f"`{parameter.default!r}`" if not isinstance(parameter.default, list) else "the "\
            "default grid"
        rows.append(f"| `{name}` | {value} | {description(name).replace('|', '/')} |")
    return "\n".join(rows) + "\n"


STEPS = (("Data step", "prepare-data", "prepare_extra_json", PrepareConfig),
         ("Training step", "train", "train_extra_json", TrainConfig),
         ("Gate", "evaluate", "gate_extra_json", GateConfig))


def settings_tables() -> str:
    """The README's tables of every step setting: name, concern, default, meaning."""
    from dataclasses import MISSING, fields

    from components.common.settings import default, describe, settings

    parts = []
    for title, command, parameter, cls in STEPS:
        concerns = {name: own.name for own in fields(cls) if own.metadata.get("group")
                    for name in settings(own.metadata["group"])}
        columns = ["setting", *(["concern"] if concerns else []), "default", "meaning"]
        rows = [f"#### {title}: `finetune {command}`, `{parameter}`\n",
                "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
        for name in settings(cls):
            value = default(cls, name)
            value = value.to_dict() if hasattr(value, "to_dict") else value
            cells = [f"`{name}`", *([concerns.get(name, "")] if concerns else []),
                     "(required)" if value is MISSING else f"`{json.dumps(value)}`",
                     describe(cls, name).replace("|", "/")]
            rows.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":  # python -m pipeline.parameters: the README's tables
    from pipeline.pipeline import build_pipeline

    print(markdown_table(build_pipeline().pipeline_func) + "\n" + settings_tables(), end="")
