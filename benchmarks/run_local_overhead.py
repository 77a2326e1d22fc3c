"""Wall time of ``finetune run-local`` on the default demo data, split into time inside the
steps (the same five run() calls made directly, in this process) and orchestration
overhead (kfp.local: one Python process per task, its imports, artifact bookkeeping).
The overhead is start-up paid once per task, as a pod on a cluster pays it too: a small
share of real training runs, a large one of the 80-second demo. (Local runs skip each
step's `pip install kfp` preamble, and Beam runs FnApiRunner by name instead of first
trying to download the Prism runner.)
Usage: python -m benchmarks.run_local_overhead
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import report


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _startup(statement: str) -> float:
    """Seconds for a fresh Python process to run ``statement`` (what each task pays)."""
    _, seconds = timed(lambda: subprocess.run([sys.executable, "-c", statement], check=True))
    return seconds


def main() -> None:
    from components.common.demo_data import write_demo_data
    from components.common.settings import settings
    from components.evaluate.gate import GateConfig
    from components.evaluate.run import run as evaluate
    from components.export.run import run as export
    from components.prepare_data.config import PrepareConfig
    from components.prepare_data.run import run as prepare
    from components.promote.run import run as promote
    from components.train.config import TrainConfig
    from components.train.run import run as train
    from pipeline.local_run import run_local, small_arguments

    root = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    data = root / "demo-data"
    write_demo_data(str(data), classes=3, per_class=40, size=96, seed=0)
    summary, wall = timed(lambda: run_local(str(root / "pipeline"), data=str(data)))

    direct = root / "direct"
    steps = {}
    _, steps["prepare_data"] = timed(lambda: prepare(PrepareConfig(
        source=str(data), output=str(direct / "examples"))))
    arguments = small_arguments({})  # what run-local passes: the demo backbone included
    train_cfg = {k: v for k, v in arguments.items() if k in settings(TrainConfig)}
    train_cfg.update(json.loads(arguments["train_extra_json"]))
    _, steps["train"] = timed(lambda: train(TrainConfig.of(
        examples=str(direct / "examples"), output=str(direct / "model"), **train_cfg)))
    _, steps["export"] = timed(lambda: export(str(direct / "model"), str(direct / "examples"),
                                              str(direct / "saved_model")))
    _, steps["evaluate"] = timed(lambda: evaluate(
        str(direct / "saved_model"), str(direct / "examples"), str(direct / "evaluation"),
        GateConfig.only(min_accuracy=0.5)))
    _, steps["promote"] = timed(lambda: promote(
        str(direct / "saved_model"), str(direct / "evaluation"), str(direct / "registry"),
        "demo", "bench"))
    inside = sum(steps.values())
    rows = [("run-local wall time", wall, "s")]
    rows += [(f"  inside step: {name}", seconds, "s") for name, seconds in steps.items()]
    rows += [("inside the steps, total", inside, "s"),
             ("orchestration overhead (wall - inside)", wall - inside, "s")]
    kfp_start = _startup("import kfp")
    tf_start = _startup("import tensorflow, apache_beam") - kfp_start
    rows.append(("  of which: 11 task processes x kfp start-up + 4 x TF/Beam import",
                 11 * kfp_start + 4 * tf_start, "s"))
    report(f"finetune run-local on demo data (gate: {summary['gate']['decision']})", rows,
           ("overhead share of wall time", (wall - inside) / wall))


if __name__ == "__main__":
    main()
