"""What a person sees while a run goes and after it: progress lines and heartbeats, the
charts' ticks and layout (checked in headless Chromium), the model card."""

from __future__ import annotations

import io
import re
import sys
import time

import pytest

from components.common.charts import heatmap, line_chart, log_ticks, nice_ticks, reliability_diagram
from components.common.html import page
from pipeline import local_progress


@pytest.mark.parametrize("low, high", [(0, 1), (0.656, 0.902), (1, 1), (0, 0), (3.01, 11.28),
                                       (1e-4, 1e-4), (-2.5, 7), (0.5, 0.5000001)])
def test_linear_ticks_are_round_cover_the_values_and_number_at_least_four(low, high):
    ticks = nice_ticks(low, high)
    assert len(ticks) >= 4 and ticks[0] <= low and ticks[-1] >= high
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1, ticks
    mantissa = f"{steps.pop():e}".split("e")[0]
    assert float(mantissa) in (1.0, 2.0, 5.0), ticks


@pytest.mark.parametrize("low, high", [(1e-6, 1e-3), (1e-3, 1e-3), (2e-5, 3e-4), (0.3, 0.9)])
def test_log_ticks_cover_the_values_with_at_least_four(low, high):
    ticks = log_ticks(low, high)
    assert len(ticks) >= 4 and ticks[0] <= low and ticks[-1] >= high and ticks == sorted(ticks)


def test_a_rate_of_one_is_drawn_at_the_top_of_a_zero_to_one_axis():
    chart = line_chart("share clipped", {"clip_rate": [1.0, 1.0, 1.0]}, "fraction",
                       y_range=(0.0, 1.0))
    points = chart.split('points="')[1].split('"')[0].split()
    top = 28  # the plot area's top edge (Axes.top)
    assert {float(p.split(",")[1]) for p in points} == {top}


def test_the_last_epoch_lies_on_the_axis_and_an_infinite_value_is_left_out():
    chart = line_chart("norm", {"grad_norm_max": [1.0] * 19 + [float("inf"), 2.0]}, "norm")
    xs = [float(x) for x in re.findall(r'<circle cx="([\d.]+)"', chart)]
    assert len(xs) == 20 and max(xs) <= 460 - 16  # the plot area's right edge


def test_markdown_in_a_name_stays_text_in_the_rendered_report():
    from components.common.markdown import cell, text, to_html

    hostile = "[x](javascript:alert(1)) ![t](http://host/pixel.png) <b>bold</b>"
    rendered = to_html(f"- {text(hostile)}\n\n| class |\n|---|\n| {cell(hostile)} |\n")
    assert "<a " not in rendered and "<img" not in rendered and "<b>" not in rendered
    assert rendered.count("[x](javascript:alert(1))") == 2


def test_charts_heatmap_and_reliability_lay_out_without_overlaps_in_chromium(tmp_path):
    """Long legends, a phase marker near the right edge, a log axis and a constant
    series: no two text boxes overlap in any chart, every axis has four ticks or more,
    and nothing shows as raw Markdown."""
    from tests.browser import layout

    epochs = 4
    body = "".join([
        line_chart("loss", {"loss": [1.3, 0.9, 0.8, 0.5], "val_loss": [0.9, 0.7, 0.6, 0.5]},
                   "cross-entropy loss", markers={2: "fine-tuning (phase 2)"}),
        line_chart("learning rate", {"learning_rate": [1e-3, 1e-5, 1e-4, 1e-6]},
                   "learning rate (end of epoch)", markers={2: "fine-tuning (phase 2)"},
                   log_y=True),
        line_chart("share of steps clipped",
                   {"clip_rate": [1.0] * epochs}, "fraction of steps", y_range=(0.0, 1.0),
                   markers={1: "fine-tuning (phase 2)"}),
        line_chart("validation accuracy", {f"{bn} + {clip}": [0.5, 0.7, 0.8, 0.9]
                                           for bn in ("frozen", "bn_only", "full")
                                           for clip in ("none", "autoclip", "agc")},
                   "accuracy (fraction)", y_range=(0.0, 1.0)),
        reliability_diagram([{"low": 0.6, "high": 0.667, "count": 3, "confidence": 0.63,
                              "accuracy": 0.33},
                             {"low": 0.933, "high": 1.0, "count": 9, "confidence": 0.97,
                              "accuracy": 1.0}]),
        heatmap(["disc", "square"], [[5, 1], [0, 6]]),
    ])
    control = ('<svg width="200" height="40" aria-label="control"><text x="10" y="20">one'
               '</text><text x="14" y="22">two</text><text x="190" y="30">cut</text></svg>'
               '<p>**bold** left raw</p>')
    report = tmp_path / "charts.html"
    report.write_text(page("charts", body + control))
    found = layout(report, tmp_path)
    assert found["overlaps"] == [["control", "one", "two"]], "the probe sees overlaps"
    assert found["outside"] == [["control", "cut"]], "and text cut off"
    assert found["markdown"] == ["**bold** left raw"], "and raw Markdown"
    found["ticks"].remove(["control", 0, 0])
    assert len(found["ticks"]) == 5
    assert all(x >= 4 and y >= 4 for _name, x, y in found["ticks"]), found["ticks"]


def test_progress_lines_are_echoed_under_the_step_and_silence_gets_a_heartbeat(
        tmp_path, monkeypatch):
    monkeypatch.setattr(local_progress, "HEARTBEAT", 0.3)
    monkeypatch.setattr(local_progress, "POLL", 0.05)
    echo = io.StringIO()
    logs = local_progress.StepLogs(tmp_path, echo)
    logs.write("03:15:42.911 - INFO - Executing task 'train'\n")
    logs.write("    progress: epoch 1/4 (phase 1: the head alone): loss 1.302\n")
    logs.write("    I0000 00:00:1796613635 port.cc:153] oneDNN custom operations are on\n")
    time.sleep(1.6)
    logs.write("03:16:42.911 - INFO - Task 'train' finished with status SUCCESS\n")
    logs.close()
    lines = echo.getvalue().splitlines()
    assert lines[0].split() == ["train", "started"]
    assert lines[1].split(None, 1) == ["train", "epoch 1/4 (phase 1: the head alone): loss 1.302"]
    assert any(re.fullmatch(r"\s+train\s+running, \d+ s so far", line) for line in lines), lines
    assert not any("oneDNN" in line for line in lines)
    assert "oneDNN" in (tmp_path / "train.log").read_text()


def test_a_followed_command_logs_everything_and_says_its_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(local_progress, "HEARTBEAT", 0.3)
    monkeypatch.setattr(local_progress, "POLL", 0.05)
    echo, log = io.StringIO(), tmp_path / "child.log"
    child = ("import time; print('noise', flush=True); print('progress: half way', flush=True);"
             " time.sleep(1.2); print('done')")
    local_progress.follow([sys.executable, "-c", child], "backbone", log, echo)
    said = echo.getvalue().splitlines()
    beats = [line for line in said if re.fullmatch(r"\s+backbone\s+running, \d+ s so far", line)]
    assert beats and "succeeded" in said[-1]
    assert [line for line in said if line not in beats][0].split(None, 1) == ["backbone",
                                                                             "half way"]
    assert log.read_text().splitlines() == ["noise", "progress: half way", "done"]
    with pytest.raises(RuntimeError, match=r"(?s)backbone failed \(exit 3\).*\| boom"):
        local_progress.follow([sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
                              "backbone", log, echo)
