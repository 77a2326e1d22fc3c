"""Headless Chromium (Debian's `chromium`) for HTML the product writes: the page as the
browser built it, and a screenshot. Every host name resolves to nothing, so a page that
needed the network would show it."""

from __future__ import annotations

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
    subprocess.run([chromium(), *FLAGS, "--window-size=1280,4000",
                    f"--screenshot={screenshot}", url], capture_output=True, timeout=120,
                   check=True)
    return dom
