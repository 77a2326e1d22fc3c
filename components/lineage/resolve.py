"""Settings resolved once: the run's first step builds, validates and records each step's
whole config from the pipeline's parameters; the steps read it back, and the lineage is
computed from it, so equal settings are one lineage however they were spelled."""

from __future__ import annotations

from components.common.settings import from_parameters, settings, to_json
from components.evaluate.gate import GateConfig
from components.prepare_data.config import PrepareConfig
from components.train.config import TrainConfig

STEPS = {"prepare": (PrepareConfig, "prepare_extra_json"),
         "train": (TrainConfig, "train_extra_json"),
         "gate": (GateConfig, "gate_extra_json")}
STEP_PATHS = {PrepareConfig: ("output",),  # each step's own artifact paths and run identity
              TrainConfig: ("examples", "output", "run_id"), GateConfig: ()}
RENAMED = {"gate_confidence": "confidence"}  # pipeline parameter -> its GateConfig setting


def resolve(named: dict, extra_json: dict[str, str]) -> dict[str, str]:
    """Each step's config (``prepare``, ``train``, ``gate``) as JSON text: the pipeline's
    ``named`` parameters that are the step's settings, its ``*_extra_json`` and every
    default, validated; a bad value stops the run here, before any expensive step."""
    named = {RENAMED.get(k, k): v for k, v in named.items()}
    resolved = {}
    for step, (cls, parameter) in STEPS.items():
        own = {k: v for k, v in named.items() if k in settings(cls)}
        placeholders = {path: "" if path == "run_id" else "." for path in STEP_PATHS[cls]}
        config = from_parameters(cls, parameter, extra_json.get(parameter, "{}"),
                                 **own, **placeholders).validate()
        resolved[step] = to_json(config, STEP_PATHS[cls])
    return resolved


def step_config(cls, config_json: str, **paths):
    """The step's config from its resolved JSON and its own ``paths``, validated."""
    return from_parameters(cls, "the resolved config", config_json, **paths).validate()


def lineage_settings(prepare_json: str, train_json: str) -> dict:
    """What decides the model, from the resolved configs: the data step's and training's
    settings but paths, run identity and what only changes speed or reports."""
    prepare = step_config(PrepareConfig, prepare_json, output=".")
    train = step_config(TrainConfig, train_json, examples=".", output=".", run_id="")
    return {"prepare": prepare.data_settings(), "train": train.training_settings()}
