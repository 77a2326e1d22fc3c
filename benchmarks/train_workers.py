"""Training images/s of `finetune train` in one process vs `--workers 2` (two processes on
127.0.0.1 sharing each global batch), same settings and images: the median epoch wall time
(validation included) after the first, which compiles. On this 2-core machine the two
workers share the cores one process already uses, and their all-reduce goes over gRPC on
the loopback: the ratio shows the cost of going across processes, not a speed-up, which
needs a machine (or GPU) per worker.
Usage: python -m benchmarks.train_workers [--epochs 4] [--steps 6]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import prepared_demo, report

SIZE, BATCH = 64, 32


def epoch_seconds(examples: Path, output: Path, workers: int, epochs: int, steps: int) -> float:
    subprocess.run([sys.executable, "-m", "pipeline", "train", "--examples", str(examples),
                    "--output", str(output), "--image-size", str(SIZE), "--weights", "none",
                    "--batch-size", str(BATCH), "--epochs", str(epochs), "--head-epochs", "1",
                    "--steps-per-epoch", str(steps), "--workers", str(workers),
                    "--run-id", f"bench-{workers}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = json.loads((output / "history.json").read_text())
    return statistics.median(r["seconds"] for r in history[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    _images, examples = prepared_demo(root, per_class=80, size=96)
    images = args.steps * BATCH
    one = images / epoch_seconds(examples, root / "one", 1, args.epochs, args.steps)
    two = images / epoch_seconds(examples, root / "two", 2, args.epochs, args.steps)
    report(f"Training at {SIZE} px, global batch {BATCH}, {args.steps} steps per epoch "
           "(median epoch after the first)",
           [("one process", one, "img/s"), ("two workers on 127.0.0.1 (--workers 2)", two,
                                             "img/s")],
           ("two workers / one process", two / one))

if __name__ == "__main__":
    main()
