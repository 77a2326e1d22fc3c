"""A schedule's cron, read once and written in the form each backend takes: Kubeflow's 6
fields (seconds first, the server's time zone), Vertex AI's 5 fields (optionally after
``TZ=Area/City``; ``CRON_TZ=`` is read as ``TZ=``). Either form is accepted as input;
what a backend cannot express (a time zone on Kubeflow, seconds other than 0 on Vertex)
is refused, naming the fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from components.common.errors import ConfigError

log = logging.getLogger(__name__)
NAMES = {"month": "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
         "weekday": "SUN MON TUE WED THU FRI SAT".split()}
RANGES = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "day": (1, 31),
          "month": (1, 12), "weekday": (0, 7)}  # weekday 7 is Sunday, as 0


@dataclass(frozen=True)
class Cron:
    expression: str  # as written
    timezone: str  # "TZ=Area/City" or ""
    seconds: str  # "0" for a 5-field cron
    fields: tuple[str, ...]  # minute hour day month weekday


def parse(expression: str) -> Cron:
    """``expression`` read: ``TZ=`` or ``CRON_TZ=`` (kept as ``TZ=``), then 5 or 6 fields."""
    timezone, _, rest = expression.partition(" ") if expression.startswith(
        ("TZ=", "CRON_TZ=")) else ("", "", expression)
    timezone = timezone.replace("CRON_TZ=", "TZ=", 1)
    fields = rest.split()
    if len(fields) not in (5, 6):
        raise ConfigError(f"--cron {expression!r}: use 5 fields 'min hour day month weekday' "
                          "(e.g. '0 2 * * *' for 02:00 daily) or Kubeflow's 6 fields, "
                          "seconds first ('0 0 2 * * *')")
    seconds = fields[0] if len(fields) == 6 else "0"
    names = ("second", "minute", "hour", "day", "month", "weekday")[-len(fields):]
    for name, value in zip(names, fields, strict=True):
        _check_field(expression, name, value)
    return Cron(expression, timezone, seconds, tuple(fields[-5:]))


def _check_field(expression: str, name: str, value: str) -> None:
    """One field: ``*``, ``?`` (day and weekday), values, ranges and ``/step``s, in lists;
    months and weekdays may be named (JAN, MON)."""
    low, high = RANGES[name]

    def number(text: str) -> int:
        upper = text.upper()
        if upper in NAMES.get(name, ()):
            return NAMES[name].index(upper) + (1 if name == "month" else 0)
        if not text.isdigit() or not low <= int(text) <= high:
            raise ConfigError(f"--cron {expression!r}: {name} {text!r} is out of range; use "
                              f"{low}-{high}" + (f" or {NAMES[name][0]}-{NAMES[name][-1]}"
                                                 if name in NAMES else ""))
        return int(text)

    for part in value.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            raise ConfigError(f"--cron {expression!r}: {name} step {step!r}: use a whole "
                              "number >= 1 (e.g. */15)")
        if span == "*" or (span == "?" and name in ("day", "weekday") and not step):
            continue
        first, _, last = span.partition("-")
        if number(first) > (number(last) if last else high):
            raise ConfigError(f"--cron {expression!r}: {name} range {span!r} runs backwards")


def for_kfp(expression: str) -> str:
    """Kubeflow's 6-field cron (seconds first)."""
    cron = parse(expression)
    if cron.timezone:
        raise ConfigError(f"--cron {expression!r}: Kubeflow schedules run in the server's "
                          "time zone and take no TZ= prefix; remove it")
    translated = " ".join((cron.seconds, *cron.fields))
    if translated != expression:
        log.info("cron %r written as Kubeflow's 6 fields %r (seconds first)", expression,
                 translated)
    return translated


def for_vertex(expression: str) -> str:
    """Vertex AI's 5-field cron, with its ``TZ=`` prefix if one was given."""
    cron = parse(expression)
    if cron.seconds != "0":
        raise ConfigError(f"--cron {expression!r}: Vertex AI takes 5 fields 'min hour day "
                          "month weekday' and cannot run at second "
                          f"{cron.seconds}; drop the seconds field")
    return " ".join(([cron.timezone] if cron.timezone else []) + list(cron.fields))
