"""Headless Chromium (Debian's `chromium`) for HTML the product writes: the page as the
browser built it, and a screenshot. Every host name resolves to nothing, so a page that
needed the network would show it."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=3000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium is not installed: `make test` installs Debian's package")
    return found


def render(page: Path, screenshot: Path) -> str:
    """The DOM after Chromium loaded ``page``; a PNG screenshot at ``screenshot``."""
    url = page.resolve().as_uri()
    dom = subprocess.run([chromium(), *FLAGS, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    subprocess.run([chromium(), *FLAGS, "--window-size=1280,9000",
                    f"--screenshot={screenshot}", url], capture_output=True, timeout=120,
                   check=True)
    return dom


# Run in the page once it loaded: the text boxes that overlap within each chart, each
# chart's tick counts, and the lines of visible text that still look like Markdown.
LAYOUT_SCRIPT = """<script>
window.addEventListener('load', () => {
  const found = {overlaps: [], outside: [], ticks: [], markdown: []};
  document.querySelectorAll('svg').forEach((svg, i) => {
    const name = svg.getAttribute('aria-label') || 'chart ' + i;
    const frame = svg.getBoundingClientRect();
    const boxes = [...svg.querySelectorAll('text')].map(
      t => [t.textContent, t.getBoundingClientRect()]);
    boxes.filter(([, b]) => b.left < frame.left - 0.5 || b.right > frame.right + 0.5 ||
                            b.top < frame.top - 0.5 || b.bottom > frame.bottom + 0.5)
         .forEach(([text]) => found.outside.push([name, text]));
    boxes.forEach(([a, p], j) => boxes.slice(j + 1).forEach(([b, q]) => {
      if (p.left < q.right - 0.5 && q.left < p.right - 0.5 &&
          p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5) found.overlaps.push([name, a, b]);
    }));
    found.ticks.push([name, svg.querySelectorAll('.tick-x').length,
                      svg.querySelectorAll('.tick-y').length]);
  });
  found.markdown = document.body.innerText.split('\\n').filter(
    line => /\\*\\*|^\\s*\\|.*\\||^#{1,6} |`|^\\s*\\|?\\s*-{3,}/.test(line));
  const out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def layout(page: Path, scratch: Path) -> dict:
    """What Chromium laid out in ``page``: ``overlaps`` ([chart, text, text] for text
    boxes that overlap), ``outside`` ([chart, text] cut off by its chart's edge),
    ``ticks`` ([chart, x ticks, y ticks]) and ``markdown`` (visible lines with Markdown
    markers left in them)."""
    probe = scratch / f"layout-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>",
                                                            LAYOUT_SCRIPT + "</body>"))
    dom = subprocess.run([chromium(), *FLAGS, "--dump-dom", probe.resolve().as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    if not found:
        raise AssertionError(f"the layout probe did not run in {probe}")
    return json.loads(html.unescape(found.group(1)))
