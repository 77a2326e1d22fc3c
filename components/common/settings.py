"""One place per setting: a config dataclass field carries its default, its type (the
default's), its allowed values and its one-line help. The CLI's options, the pipeline's
parameter descriptions and the README's parameter table are derived from these fields."""

from __future__ import annotations

from dataclasses import MISSING, Field, field, fields


def setting(default=MISSING, help: str = "", choices: tuple = (), *, factory=MISSING,
            run_default=MISSING):
    """A dataclass field with its help and allowed values (``choices``, when a closed set).
    ``run_default``: what a run (the pipeline, the CLI) uses when the field's own default
    means "unset" (the gate's thresholds)."""
    metadata = {"help": help, "choices": tuple(choices), "run_default": run_default}
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


def describe(cls, name: str) -> str:
    """The one-line help of ``cls.name``, with its allowed values when they are a set."""
    found = settings(cls)[name]
    choices = found.metadata.get("choices", ())
    text = found.metadata.get("help", "")
    return f"{text} One of: {', '.join(choices)}." if choices else text


def check_choices(config) -> None:
    """Refuse a field outside its allowed values, naming the option and the values."""
    from components.common.errors import ConfigError

    for found in fields(config):
        if found.metadata.get("group"):
            check_choices(getattr(config, found.name))
            continue
        allowed, value = found.metadata.get("choices", ()), getattr(config, found.name)
        if allowed and value not in allowed:
            raise ConfigError(f"--{found.name.replace('_', '-')} {value!r}: use one of "
                              f"{', '.join(allowed)}")


def default(cls, name: str):
    """What a run uses for ``cls.name`` when not told otherwise."""
    found = settings(cls)[name]
    if found.metadata.get("run_default", MISSING) is not MISSING:
        return found.metadata["run_default"]
    if found.default is not MISSING:
        return found.default
    return MISSING if found.default_factory is MISSING else found.default_factory()
