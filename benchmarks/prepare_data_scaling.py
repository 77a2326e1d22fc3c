"""Data-preparation throughput and peak memory at 1,000 vs 10,000 small images.

Each size runs in a fresh subprocess so its peak RSS is its own. Memory should stay
flat as the data grows: only small rows, never pixels, are held for the whole set.
Usage: python -m benchmarks.prepare_data_scaling [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time, logging
from components.common.demo_data import write_demo_data
from components.prepare_data.config import PrepareConfig
from components.prepare_data.run import run
n, root = int(sys.argv[1]), sys.argv[2]
write_demo_data(f"{root}/src", classes=4, per_class=n // 4, size=64, seed=n)
start = time.perf_counter()
stats = run(PrepareConfig(source=f"{root}/src", output=f"{root}/out"))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"n": n, "seconds": seconds, "accepted": stats["accepted"], "peak_mb": peak}))
"""


def measure(n: int) -> dict:
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        out = subprocess.run([sys.executable, "-c", CHILD, str(n), root], env=env,
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    print(f"{'images':>8} {'seconds':>8} {'images/s':>9} {'peak MB':>8}")
    results = []
    for n in args.sizes:
        r = measure(n)
        results.append(r)
        print(f"{r['n']:>8} {r['seconds']:>8.1f} {r['n'] / r['seconds']:>9.0f} "
              f"{r['peak_mb']:>8.0f}")
    first, last = results[0], results[-1]
    print(f"data x{last['n'] / first['n']:.0f}: peak memory x"
          f"{last['peak_mb'] / first['peak_mb']:.2f}, throughput x"
          f"{(last['n'] / last['seconds']) / (first['n'] / first['seconds']):.2f}")


if __name__ == "__main__":
    main()
