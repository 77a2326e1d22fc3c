"""Shared helpers of the benchmark scripts: demo data, timing medians, a ratio line."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def median_seconds(fn, repeats: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs (one warm-up run first)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def prepared_demo(root: Path, per_class: int, size: int, classes: int = 3) -> tuple[Path, Path]:
    """Demo images and their examples artifact (built once per root)."""
    from components.common.demo_data import write_demo_data
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run

    images, examples = root / "images", root / "examples"
    if not examples.exists():
        write_demo_data(str(images), classes=classes, per_class=per_class, size=size, seed=7)
        run(PrepareConfig(source=str(images), output=str(examples)))
    return images, examples


def report(title: str, rows: list[tuple[str, float, str]], ratio: tuple[str, float]) -> None:
    print(f"\n{title}")
    for name, value, unit in rows:
        print(f"  {name:<48} {value:>10.1f} {unit}")
    print(f"  {ratio[0]:<48} {ratio[1]:>10.2f}x")
