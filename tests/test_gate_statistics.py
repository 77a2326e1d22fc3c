"""The gate's statistics: the paired interval against a SciPy reference, and Monte-Carlo
properties of the real decide() (seeded, a few thousand trials)."""

import json
import math

import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from components.evaluate.characteristics import acceptance_rate, characteristics
from components.evaluate.gate import GateConfig
from components.evaluate.paired import PairedCounts, difference_interval, z_value

NON_INFERIORITY = GateConfig(non_inferiority_margin=0.035)
TRIALS = 2000


def newcombe_reference(a, b, c, d, confidence):
    """Newcombe (1998) method 10 from SciPy's Wilson intervals of the two accuracies."""
    n = a + b + c + d
    level = 2 * confidence - 1
    l1, u1 = binomtest(a + b, n).proportion_ci(level, method="wilson")
    l2, u2 = binomtest(a + c, n).proportion_ci(level, method="wilson")
    p1, p2 = (a + b) / n, (a + c) / n
    den = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(den) if den else 0.0
    low = p1 - p2 - math.sqrt((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2)
    high = p1 - p2 + math.sqrt((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2)
    return low, high


@pytest.mark.parametrize("a,b,c,d", [(86, 3, 4, 7), (10, 0, 1, 1), (900, 40, 20, 40),
                                     (11, 0, 0, 1), (5, 5, 5, 5)])
def test_interval_matches_the_scipy_reference(a, b, c, d):
    low, high = difference_interval(PairedCounts(a, b, c, d), z_value(0.95))
    ref_low, ref_high = newcombe_reference(a, b, c, d, 0.95)
    assert (low, high) == (pytest.approx(ref_low, abs=1e-9), pytest.approx(ref_high, abs=1e-9))
    assert low <= (b - c) / (a + b + c + d) <= high and high - low > 0


@pytest.mark.parametrize("test_size", [12, 100, 1000])
def test_a_candidate_worse_than_the_margin_passes_at_most_at_the_error_rate(test_size):
    rate = acceptance_rate(NON_INFERIORITY, test_size, 3, 0.9, worse_by=0.035 + 0.015,
                           trials=TRIALS, seed=1)
    assert rate <= (1 - NON_INFERIORITY.confidence) + 0.02


def test_an_equally_good_candidate_passes_more_often_as_the_split_grows():
    rates = [acceptance_rate(NON_INFERIORITY, n, 3, 0.9, 0.0, TRIALS, seed=2)
             for n in (12, 100, 1000)]
    assert rates[0] < rates[1] < rates[2]
    assert rates[2] >= 0.8, "the default margin lets an equal candidate pass at 1,000 images"


def test_reported_sizes_agree_with_the_simulation():
    analytic = characteristics(NON_INFERIORITY, 100, 3, 0.9, (0.0,), trials=10)
    required = analytic["required_test_size"]
    at_required = acceptance_rate(NON_INFERIORITY, required, 3, 0.9, 0.0, TRIALS, seed=3)
    assert at_required == pytest.approx(0.8, abs=0.04)
    detectable = characteristics(GateConfig(min_improvement=0.0), 400, 3, 0.9, (0.0,),
                                 trials=10)["detectable_difference"]
    better = acceptance_rate(GateConfig(min_improvement=0.0), 400, 3, 0.9, -detectable,
                             TRIALS, seed=4)
    # The detectable difference uses the discordance of two equally good models: a better
    # candidate disagrees less, so it is found at least 80% of the time (conservative).
    assert 0.78 <= better <= 0.95


def test_cli_prints_acceptance_rates_as_json():
    from pipeline.cli import main

    result = CliRunner().invoke(main, ["gate", "characteristics", "--test-size", "200",
                                       "--classes", "5", "--worse-by", "0,0.05,0.1",
                                       "--trials", "300", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data["acceptance_rate"]) == {"0", "0.05", "0.1"}
    assert data["acceptance_rate"]["0.1"] < 0.05 < data["acceptance_rate"]["0"]
    assert data["required_test_size"] == 909 and 0 < data["detectable_difference"] < 0.2


def test_cli_names_a_bad_setting_in_one_line():
    from pipeline.cli import main

    result = CliRunner().invoke(main, ["gate", "characteristics", "--test-size", "50",
                                       "--confidence", "-1", "--trials", "10"])
    assert result.exit_code == 2 and "confidence=-1.0" in result.output


@pytest.mark.parametrize("args,message", [
    (["--test-size", "0"], "--test-size 0: use 1 or more"),
    (["--test-size", "50", "--accuracy", "1.5"], "--accuracy 1.5: use 0 < accuracy <= 1"),
    (["--test-size", "50", "--classes", "1"], "--classes 1: use 2 or more"),
    (["--test-size", "50", "--worse-by", "0,2"], "--worse-by 0,2: use fractions"),
])
def test_characteristics_refuse_bad_values_in_one_line(args, message):
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, ["gate", "characteristics", *args, "--trials", "5"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and message in result.output
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0
