"""Click options generated from a config dataclass: every field becomes ``--field-name``
with the field's run default, type, allowed values and help (components/common/settings).

A small generator of our own rather than jsonargparse, tyro or simple-parsing: the CLI is
click already (its commands, its error handling, the project's one-line errors), and
those libraries would replace click rather than feed it; generating options is the only
part needed, and it fits in this module."""

from __future__ import annotations

from dataclasses import MISSING

import click

from components.common.settings import default, describe, settings


class CommaList(click.ParamType):
    """A tuple setting written ``a,b,c``: each value one of ``choices`` (when given), none
    twice."""

    name = "list"

    def __init__(self, choices: tuple[str, ...]):
        self.choices = choices

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        values = tuple(v.strip() for v in value.split(","))
        unknown = [v for v in values if self.choices and v not in self.choices]
        if not all(values) or unknown or len(set(values)) != len(values):
            allowed = f" from {', '.join(self.choices)}" if self.choices else ""
            self.fail(f"{value!r}: give distinct comma-separated values{allowed}", param, ctx)
        return values


def config_options(cls, *, skip: tuple[str, ...] = (), types: dict | None = None,
                   overrides: dict | None = None):
    """A decorator adding an option per field of ``cls`` (but ``skip``); ``types`` gives a
    click type by field name (URIs), ``overrides`` extra ``click.option`` arguments."""
    types, overrides = types or {}, overrides or {}

    def decorate(command):
        for found in reversed(settings(cls).values()):
            if found.name in skip:
                continue
            value = default(cls, found.name)
            flag = "--" + found.name.replace("_", "-")
            kwargs = {"help": describe(cls, found.name), "show_default": True}
            if value is MISSING:
                kwargs.update(required=True, show_default=False)
            elif isinstance(value, bool):
                flag, kwargs["default"] = f"{flag}/--no-{flag[2:]}", value
            elif isinstance(value, tuple):
                kwargs["default"] = ",".join(value)
            else:
                kwargs["default"] = value
            if isinstance(value, tuple):
                kwargs["type"] = CommaList(found.metadata.get("choices", ()))
            elif found.metadata.get("choices"):
                kwargs["type"] = click.Choice(found.metadata["choices"])
            elif found.name in types:
                kwargs["type"] = types[found.name]
            kwargs.update(overrides.get(found.name, {}))
            command = click.option(flag, found.name, **kwargs)(command)
        return command
    return decorate


def optional_setting_options(fields: dict[str, tuple[type, str]], notes: dict | None = None,
                             types: dict | None = None):
    """A decorator adding ``--name`` for each of ``fields`` (option name -> (config class,
    field)) with default None, "not given": the run's own value (``notes`` says what that
    is where the command differs from the pipeline). Help, choices and type come from the
    setting, so a bad value is refused before any work."""
    notes, types = notes or {}, types or {}

    def decorate(command):
        for name, (cls, field_name) in reversed(fields.items()):
            found = settings(cls)[field_name]
            value = default(cls, field_name)
            note = notes.get(name, f"default: {value}")
            kwargs = {"default": None, "help": f"{describe(cls, field_name)} [{note}]"}
            if found.metadata.get("choices"):
                kwargs["type"] = click.Choice(found.metadata["choices"])
            else:
                kwargs["type"] = types.get(name, type(value))
            command = click.option("--" + name.replace("_", "-"), name, **kwargs)(command)
        return command
    return decorate
