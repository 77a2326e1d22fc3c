"""Markdown reports keep their tables whole whatever a class is called."""

from components.common.markdown import cell
from components.evaluate.report import SCALARS, markdown

HOSTILE = ["a|b", "<img src=x onerror=alert(1)>", "back\\slash `tick`"]


def _columns(row: str) -> int:
    """Cells of a Markdown table row: ``|`` not escaped by a backslash."""
    count, escaped = 0, False
    for char in row:
        if char == "|" and not escaped:
            count += 1
        escaped = char == "\\" and not escaped
    return count - 1


def test_a_cell_cannot_shift_columns_end_the_row_or_render_html():
    assert cell("a|b") == "a\\|b"
    assert cell("one\ntwo") == "one two"
    assert "<" not in cell("<script>") and cell("x\\|y") == "x\\\\\\|y"


def test_the_evaluation_report_keeps_one_column_per_header_for_hostile_labels():
    per_class = {label: {"recall": 1.0, "precision": 1.0} for label in HOSTILE}
    metrics = {**dict.fromkeys(SCALARS, 0.5), "per_class": per_class}
    gate = {"decision": "reject", "mode": "absolute", "reasons": ["class 'a|b' <b>dropped</b>"],
            "checks": [{"check": "class_recall", "passed": False, "detail": "a|b: 0.5 < 0.9"}]}
    report = markdown(metrics, metrics, gate, HOSTILE)
    tables = [[line for line in block.splitlines() if line.startswith("|")]
              for block in report.split("\n\n")]
    assert sum(1 for rows in tables if rows) == 3
    for rows in tables:
        assert len({_columns(row) for row in rows}) <= 1, rows
    assert "<img" not in report and "<b>" not in report
