"""Markdown from untrusted text (class names, skip reasons, check details)."""

from __future__ import annotations

import html

# Markdown's punctuation, backslash-escaped: a name like "[x](javascript:...)" or
# "![t](http://host/pixel)" stays text instead of becoming a link or a remote image.
ESCAPES = {**{c: "\\" + c for c in "\\`*_[]()!"}, "\n": " ", "\r": " "}
TEXT_ESCAPES = str.maketrans(ESCAPES)
TABLE_ESCAPES = str.maketrans({**ESCAPES, "|": "\\|"})


def text(value: object) -> str:
    """``value`` as Markdown text on one line, its HTML and Markdown shown as text, not
    rendered."""
    return html.escape(str(value), quote=False).translate(TEXT_ESCAPES)


def cell(value: object) -> str:
    """``value`` as one Markdown table cell: a ``|`` cannot shift the columns, a line break
    cannot end the row, and HTML or Markdown in it is shown as text, not rendered."""
    return html.escape(str(value), quote=False).translate(TABLE_ESCAPES)


def to_html(source: str, base_level: int = 3) -> str:
    """The product's own Markdown (reports, model cards) as HTML, tables included, its
    headings starting at ``<h{base_level}>`` to sit inside a page's sections."""
    import markdown
    from markdown.extensions.toc import slugify

    return markdown.markdown(source, extensions=["tables", "toc"], extension_configs={
        "toc": {"baselevel": base_level,  # ids apart from the page's own sections'
                "slugify": lambda value, separator: "md-" + slugify(value, separator)}})
