"""The BN x clipping ablation: its grid, its report's statistics, its pipeline end to end."""

import re
from pathlib import Path

import numpy as np
import pytest

from components.ablation.config import AblationGrid
from components.ablation.report import Run, significance, table
from components.common.errors import ConfigError


def test_the_grid_has_a_cell_per_policy_clip_and_seed():
    """Each cell trains its policy's and mode's own defaults: the top blocks under frozen,
    AGC's ratio (not a norm) as its threshold."""
    from components.train.config import TrainConfig

    cells = AblationGrid(("frozen", "full"), ("none", "agc"), seeds=2).validate().cells()
    assert len(cells) == 8

    def trained(policy, clip):
        cell = next(c for c in cells if c["bn_policy"] == policy and c["clip"] == clip)
        return TrainConfig.of(examples="e", output="o", precision="float32",
                              **cell).validate().resolved()

    assert trained("frozen", "none").batch_norm.fine_tune_blocks == 3
    full_agc = trained("full", "agc")
    assert full_agc.clipping.clip_threshold == 0.01
    assert full_agc.batch_norm.fine_tune_blocks == 0
    assert full_agc.runtime.precision == "float32"


@pytest.mark.parametrize("grid,message", [
    (AblationGrid(bn_policies=("frozen", "sideways")), "--bn-policies"),
    (AblationGrid(clips=()), "--clips"),
    (AblationGrid(clips=("agc", "agc")), "--clips"),
    (AblationGrid(seeds=0), "--seeds"),
])
def test_a_bad_grid_names_itself(grid, message):
    with pytest.raises(ConfigError, match=message):
        grid.validate()


def _run(policy, clip, seed, val, correct):
    values = dict.fromkeys(("test_accuracy", "log_loss", "ece", "grad_norm_mean",
                            "grad_norm_max", "clip_rate", "train_seconds"), 1.0)
    return Run(policy, clip, seed, {**values, "val_accuracy": val}, np.array(correct), [val],
               [1.0])


def test_a_difference_within_noise_is_labelled_noise_and_a_real_one_is_not():
    n = 100
    best = _run("frozen", "none", 0, 0.9, [True] * 90 + [False] * 10)
    close = _run("full", "none", 0, 0.8, [True] * 88 + [False] * 12)
    far = _run("bn_only", "none", 0, 0.5, [True] * 50 + [False] * 50)
    assert significance(best, best)["verdict"] == "best"
    assert significance(close, best)["verdict"] == "noise"
    assert significance(far, best)["verdict"] == "worse" and significance(far, best)[
        "p_value"] < 1e-6
    assert len(best.correct) == n


def test_seeds_give_mean_and_std_and_the_best_is_chosen_on_the_first_seed():
    runs = [_run("frozen", "none", 0, 0.7, [True] * 7 + [False] * 3),
            _run("frozen", "none", 1, 0.99, [True] * 10),
            _run("full", "none", 0, 0.8, [True] * 8 + [False] * 2),
            _run("full", "none", 1, 0.6, [True] * 6 + [False] * 4)]
    rows = {r["bn_policy"]: r for r in table(runs)}
    assert rows["full"]["verdict"] == "best"
    assert rows["frozen"]["val_accuracy"] == pytest.approx(0.845)
    assert rows["frozen"]["val_accuracy_std"] == pytest.approx(np.std([0.7, 0.99], ddof=1))


def test_the_ablation_pipeline_fans_out_with_parallel_for(tmp_path):
    import yaml

    from pipeline.pipeline import compile_pipeline
    from pipeline.profiles import load

    path = compile_pipeline(str(tmp_path / "ablation.yaml"),
                            load("kubeflow", {"ablation_parallelism": 2}), pipeline="ablation")
    spec = next(yaml.safe_load_all(Path(path).read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    loop = next(t for t in tasks.values() if "parameterIterator" in t)
    assert loop["parameterIterator"]["itemInput"]
    assert loop["iteratorPolicy"]["parallelismLimit"] == 2, "not every cell's GPU at once"
    assert "ablation-report" in tasks and "comp-promote" not in spec["components"]
    assert len(spec["root"]["inputDefinitions"]["parameters"]["grid"]["defaultValue"]) == 9


@pytest.mark.slow
def test_run_local_ablation_reports_four_cells_with_significance(tmp_path):
    """A real kfp.local run of the compiled ablation YAML: 2 x 2 grid at 32 px."""
    from click.testing import CliRunner

    from pipeline.cli import main
    from tests.browser import render

    result = CliRunner().invoke(main, [
        "run-local", "--pipeline", "ablation", "--workdir", str(tmp_path),
        "--bn-policies", "frozen,full", "--clips", "none,global_norm", "--image-size", "32",
        "--epochs", "3"])
    assert result.exit_code == 0, result.output
    report = Path(re.search(r"ablation report: (\S+)", result.output).group(1))
    markdown = report.with_name("report.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith(("| frozen", "| full"))]
    assert len(rows) == 4 and "| vs best |" in markdown
    assert sum("best" in row for row in rows) == 1
    assert all(re.search(r"(best|noise|better|worse)", row) for row in rows)
    dom = render(report, tmp_path / "ablation.png")
    assert dom.count("<polyline") >= 8, "validation and loss curves of all four runs"
