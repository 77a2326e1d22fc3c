"""One place per setting: a config dataclass field carries its default, its type (the
default's), its allowed values and its one-line help. The CLI's options, the pipeline's
parameter descriptions and the README's parameter table are derived from these fields."""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, field, fields


def setting(default=MISSING, help: str = "", choices: tuple = (), *, factory=MISSING):
    """A dataclass field with its help and allowed values (``choices``, when a closed set).
    Its default is the run's default: the pipeline's, the CLI's and the config's alike."""
    metadata = {"help": help, "choices": tuple(choices)}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def group(cls, help: str):
    """A field holding config ``cls``: one concern's settings, nested in a step's config."""
    return field(default_factory=cls, metadata={"help": help, "group": cls})


def settings(cls) -> dict[str, Field]:
    """The settings of config class ``cls`` by name, in declaration order; a group stands
    for its own settings, so a step's settings are one flat namespace (the CLI's options,
    the pipeline's parameters). A name in two groups is refused."""
    found: dict[str, Field] = {}
    for own in fields(cls):
        inner = settings(own.metadata["group"]) if own.metadata.get("group") else {own.name: own}
        clash = set(inner) & set(found)
        if clash:
            raise TypeError(f"{cls.__name__}: settings {sorted(clash)} are in two groups")
        found.update(inner)
    return found


def build(cls, values: dict):
    """Config ``cls`` from flat setting values, each group built from its own; a name that
    is no setting raises TypeError, as a constructor does."""
    rest, kwargs = dict(values), {}
    for own in fields(cls):
        nested = own.metadata.get("group")
        if nested:
            names = settings(nested)
            kwargs[own.name] = build(nested, {n: rest.pop(n) for n in list(rest) if n in names})
        elif own.name in rest:
            kwargs[own.name] = rest.pop(own.name)
    if rest:
        raise TypeError(f"{cls.__name__} has no settings {sorted(rest)}")
    return cls(**kwargs)


def flatten(config) -> dict:
    """The flat setting values of ``config`` (the inverse of ``build``)."""
    values = {}
    for own in fields(config):
        value = getattr(config, own.name)
        values.update(flatten(value) if own.metadata.get("group") else {own.name: value})
    return values


def plain(config, without: tuple[str, ...] = ()) -> dict:
    """``config``'s flat settings, less ``without``, as JSON values (a nested policy as
    its dict)."""
    return {k: v.to_dict() if hasattr(v, "to_dict") else v
            for k, v in flatten(config).items() if k not in without}


def to_json(config, without: tuple[str, ...] = ()) -> str:
    """``plain(config, without)`` as JSON text that ``from_parameters`` reads back: a
    resolved config passed from one step to the next."""
    return json.dumps(plain(config, without), sort_keys=True)


def describe(cls, name: str) -> str:
    """The one-line help of ``cls.name``, with its allowed values when they are a set."""
    found = settings(cls)[name]
    choices = found.metadata.get("choices", ())
    text = found.metadata.get("help", "")
    if not choices:
        return text
    return f"{text} {'Any' if isinstance(default(cls, name), tuple) else 'One'} of: " \
           f"{', '.join(choices)}."


def check_choices(config) -> None:
    """Refuse a field outside its allowed values, naming the option and the values."""
    from components.common.errors import ConfigError

    for found in fields(config):
        allowed, value = found.metadata.get("choices", ()), getattr(config, found.name)
        if allowed and value not in allowed:
            raise ConfigError(f"--{found.name.replace('_', '-')} {value!r}: use one of "
                              f"{', '.join(allowed)}")


def default(cls, name: str):
    """What a run uses for ``cls.name`` when not told otherwise."""
    found = settings(cls)[name]
    if found.default is not MISSING:
        return found.default
    return MISSING if found.default_factory is MISSING else found.default_factory()


def from_parameters(cls, parameter: str, extra_json: str = "{}", **named):
    """Config ``cls`` of a pipeline step: its ``named`` parameters, and ``extra_json`` (the
    pipeline's ``parameter``: a JSON object) for any other setting. A setting given both
    ways, one ``cls`` lacks and a value of the wrong type are refused, naming it."""
    from components.common.errors import ConfigError

    try:
        extra = json.loads(extra_json or "{}")
    except json.JSONDecodeError as err:
        raise ConfigError(f"{parameter} {extra_json!r} is not JSON: {err}") from err
    if not isinstance(extra, dict):
        raise ConfigError(f"{parameter} {extra_json!r}: give a JSON object of {cls.__name__} "
                          "settings")
    both, unknown = sorted(set(named) & set(extra)), sorted(set(extra) - set(settings(cls)))
    if both:
        raise ConfigError(f"{parameter} sets {both}, which the pipeline sets itself or through "
                          f"parameters of their own: remove them from {parameter}")
    if unknown:
        raise ConfigError(f"{parameter} sets {unknown}: not {cls.__name__} settings (the "
                          "step's CLI command lists them as options, with dashes)")
    typed = {name: _typed(cls, name, value, parameter) for name, value in extra.items()}
    return build(cls, {**named, **typed})


def _typed(cls, name: str, value, parameter: str):
    """``value`` (from JSON) as the type of setting ``cls.name``'s default."""
    from components.common.errors import ConfigError

    value_default = default(cls, name)
    kind = str if value_default is MISSING else type(value_default)  # required: a path
    if kind is float and type(value) in (int, float):
        return float(value)
    if kind is tuple and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if hasattr(kind, "from_dict") and isinstance(value, dict):
        try:
            return kind.from_dict(value)
        except TypeError as err:
            raise ConfigError(f"{parameter} {name}: {err}") from err
    if type(value) is kind:
        return value
    words = {tuple: "a list of strings"}.get(kind, kind.__name__)
    raise ConfigError(f"{parameter} {name}={value!r}: must be {words}")
