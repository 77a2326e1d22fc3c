"""Inline SVG charts and an HTML heatmap for the reports: readable ticks (at least four a
axis, a log scale where values span decades), legends below the plot where they cannot
cover a label, and no script or network needed to view them."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")
MIN_TICKS = 4
CHAR_WIDTH = 7.0  # px per character of the 11 px legend text, to lay the legend out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """At least ``MIN_TICKS`` round values (1, 2 or 5 times a power of ten apart) covering
    ``low``..``high``."""
    if high - low <= 1e-9 * max(1.0, abs(high)):  # constant, to float precision
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step((high - low) / (count - 1))
    while True:
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first + 1 >= MIN_TICKS:
            digits = max(0, 3 - math.floor(math.log10(step)))  # exact to well below a step
            return [round(i * step, digits) for i in range(first, last + 1)]
        step = _smaller(step)


def _nice_step(raw: float) -> float:
    """The least of 1, 2 or 5 times a power of ten that is at least ``raw``."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999)


def _smaller(step: float) -> float:
    """The next nice step below ``step`` (5 -> 2 -> 1 -> 0.5 ...)."""
    power = 10 ** math.floor(math.log10(step) + 1e-9)
    mantissa = round(step / power)
    return {1: 0.5, 2: 1, 5: 2}[mantissa] * power


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten covering ``low``..``high`` (both > 0), with 2x and 5x between them
    while there are fewer than ``MIN_TICKS``."""
    first, last = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9)
    if first == last:
        first, last = first - 1, last + 1
    ticks = [10.0 ** k for k in range(first, last + 1)]
    if len(ticks) < MIN_TICKS:
        ticks = sorted(t * m for t in ticks for m in (1, 2, 5) if t * m <= ticks[-1])
    return ticks


def label(value: float) -> str:
    """A tick's text: four significant digits at most, ``1e-5`` rather than ``1e-05``."""
    text = f"{value:.4g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return f"{mantissa}e{int(exponent)}"


@dataclass
class Axes:
    """A plot area in an SVG of ``width`` x ``height`` with its tick values."""

    x_ticks: list[float]
    y_ticks: list[float]
    width: int = 460
    height: int = 250
    log_y: bool = False
    left: int = 70
    right: int = 16
    top: int = 28
    bottom: int = 44

    def x(self, value: float) -> float:
        low, high = self.x_ticks[0], self.x_ticks[-1]
        return self.left + (self.width - self.left - self.right) * (value - low) / (high - low)

    def y(self, value: float) -> float:
        scale: Callable[[float], float] = math.log10 if self.log_y else float
        low, high = scale(self.y_ticks[0]), scale(self.y_ticks[-1])
        return self.height - self.bottom - (self.height - self.top - self.bottom) * (
            (scale(value) - low) / (high - low))

    def frame(self, title: str, x_label: str, y_label: str,
              x_text: Callable[[float], str] = label) -> list[str]:
        base, top = self.height - self.bottom, self.top
        parts = [f'<text x="{self.left}" y="16" font-size="13" class="title">'
                 f"{html.escape(title)}</text>",
                 f'<line x1="{self.left}" y1="{base}" x2="{self.width - self.right}" '
                 f'y2="{base}" stroke="#999"/>',
                 f'<line x1="{self.left}" y1="{top}" x2="{self.left}" y2="{base}" '
                 'stroke="#999"/>',
                 f'<text x="{(self.left + self.width - self.right) / 2}" y="{base + 32}" '
                 f'font-size="11" text-anchor="middle">{html.escape(x_label)}</text>',
                 f'<text transform="translate(13,{(top + base) / 2}) rotate(-90)" '
                 f'font-size="11" text-anchor="middle">{html.escape(y_label)}</text>']
        for value in self.x_ticks:
            x = self.x(value)
            parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" '
                         f'stroke="#999"/><text class="tick-x" x="{x:.1f}" y="{base + 15}" '
                         f'font-size="10" text-anchor="middle">{x_text(value)}</text>')
        for value in self.y_ticks:
            y = self.y(value)
            parts.append(f'<line x1="{self.left - 4}" y1="{y:.1f}" x2="{self.width - self.right}"'
                         f' y2="{y:.1f}" stroke="#eee"/><text class="tick-y" x="{self.left - 7}"'
                         f' y="{y + 3:.1f}" font-size="10" text-anchor="end">{label(value)}'
                         "</text>")
        return parts


def _legend(names: list[str], axes: Axes) -> tuple[list[str], int]:
    """One row after another below the x-axis label; returns the parts and the height."""
    parts, x, y = [], axes.left, axes.height + 4
    for color, name in zip(COLORS, names, strict=False):
        needed = 22 + CHAR_WIDTH * len(name)
        if x + needed > axes.width and x > axes.left:
            x, y = axes.left, y + 16
        parts.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 16}" y2="{y - 4}" stroke="{color}" '
                     f'stroke-width="2"/><text x="{x + 20}" y="{y}" font-size="11" '
                     f'class="legend">{html.escape(name)}</text>')
        x += needed + 12
    return parts, (y - axes.height + 8) if names else 0


def _svg(title: str, axes: Axes, parts: list[str], extra_height: int = 0) -> str:
    height = axes.height + extra_height
    return (f'<figure><svg width="{axes.width}" height="{height}" role="img" class="chart" '
            f'aria-label="{html.escape(title)}">{"".join(parts)}</svg></figure>')


def line_chart(title: str, series: dict[str, list[float]], y_label: str,
               x_label: str = "epoch", markers: dict[int, str] | None = None,
               log_y: bool = False, y_range: tuple[float, float] | None = None) -> str:
    """Series over epochs (numbered from 1; NaN, and on a log axis non-positive, points
    skipped); vertical ``markers`` (index -> label, e.g. a phase boundary); ``y_range``
    fixes the axis (a rate: 0 to 1)."""
    def shown(v: float) -> bool:
        return math.isfinite(v) and (v > 0 or not log_y)

    values = [v for vs in series.values() for v in vs if shown(v)]
    if not values:
        return f"<p>{html.escape(title)}: no data</p>"
    low, high = y_range or (min(values), max(values))
    longest = max(len(vs) for vs in series.values())
    step = max(1, math.ceil(longest / 12))
    last = 1 + step * math.ceil((max(longest, MIN_TICKS) - 1) / step)  # the last epoch or past
    axes = Axes(x_ticks=[float(i) for i in range(1, last + 1, step)],
                y_ticks=log_ticks(low, high) if log_y else nice_ticks(low, high),
                log_y=log_y)
    parts = axes.frame(title, x_label, y_label, x_text=lambda v: f"{v:.0f}")
    for i, text in (markers or {}).items():
        x = axes.x(i + 0.5)
        right_half = x > (axes.left + axes.width) / 2  # its label to the left of the line
        parts.append(f'<line x1="{x:.1f}" y1="{axes.top}" x2="{x:.1f}" '
                     f'y2="{axes.height - axes.bottom}" stroke="#888" stroke-dasharray="2,3"/>'
                     f'<text x="{x - 3 if right_half else x + 3:.1f}" y="{axes.top + 10}" '
                     f'font-size="10" fill="#555" text-anchor="{"end" if right_half else "start"}"'
                     f' class="marker">{html.escape(text)}</text>')
    for color, values_of in zip(COLORS, series.values(), strict=False):
        points = [(axes.x(i + 1), axes.y(v)) for i, v in enumerate(values_of) if shown(v)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>'
                     + "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                               for x, y in points))
    legend, legend_height = _legend(list(series), axes)
    return _svg(title, axes, parts + legend, legend_height)


def reliability_diagram(bins: list[dict], title: str = "reliability (candidate)") -> str:
    """Accuracy against confidence per bin (``low``, ``high``, ``count``, ``accuracy``,
    ``confidence``) with the diagonal of perfect calibration; a bin's size in its tooltip."""
    if not bins:
        return f"<p>{html.escape(title)}: no data</p>"
    ticks = nice_ticks(0.0, 1.0)
    axes = Axes(x_ticks=ticks, y_ticks=ticks)
    parts = axes.frame(title, "confidence (top probability)", "accuracy")
    parts.append(f'<line x1="{axes.x(0)}" y1="{axes.y(0)}" x2="{axes.x(1)}" y2="{axes.y(1)}" '
                 'stroke="#888" stroke-dasharray="4,3"/>')
    for b in bins:
        x0, x1, y = axes.x(b["low"]), axes.x(b["high"]), axes.y(b["accuracy"])
        parts.append(f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(1.0, x1 - x0 - 1):.1f}" '
                     f'height="{axes.y(0) - y:.1f}" fill="#1f77b4" fill-opacity="0.6">'
                     f"<title>{b['count']} images, confidence {b['confidence']:.3f}, accuracy "
                     f"{b['accuracy']:.3f}</title></rect>")
    legend, legend_height = _legend(["perfect calibration"], axes)
    legend[0] = legend[0].replace('stroke="#1f77b4"', 'stroke="#888" stroke-dasharray="4,3"')
    return _svg(title, axes, parts + legend, legend_height)


def heatmap(labels: list[str], matrix: list[list[int]]) -> str:
    """A confusion matrix as a table shaded by each row's share (the true class's
    recall on the diagonal), with counts."""
    head = "".join(f"<th>{html.escape(name)}</th>" for name in labels)
    rows = []
    for name, row in zip(labels, matrix, strict=True):
        total = sum(row) or 1
        cells = "".join(
            f'<td class="heat" style="background:rgba(31,119,180,{count / total:.2f});'
            f'color:{"#fff" if count / total > 0.55 else "#222"}">{count}</td>' for count in row)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return (f'<table class="confusion"><tr><th>true \\ predicted</th>{head}</tr>'
            f"{''.join(rows)}</table>")
