"""The gate as a table: every rule and edge case; McNemar against SciPy.

Cases whose outcome changed when the comparisons became confidence bounds (they were
decided by noise before) say so in their names."""

import pytest
from scipy.stats import binomtest

from components.evaluate.gate import PROMOTE, REJECT, GateConfig, decide, split_statistics
from components.evaluate.metrics import mcnemar_exact
from components.evaluate.paired import Paired, PairedCounts

only = GateConfig.only  # a gate checking these thresholds and no other


def metrics(accuracy, ece=0.05):
    return {"accuracy": accuracy, "ece": ece}


def paired(both, candidate_only, production_only, neither, per_class=None):
    """Paired outcomes by counts; per class ``(both, cand_only, prod_only, neither)``."""
    overall = PairedCounts(both, candidate_only, production_only, neither)
    return Paired(overall, {k: PairedCounts(*v) for k, v in (per_class or {}).items()})


def on(n, candidate_only, production_only, accuracy=0.9):
    """``n`` paired images, production at ``accuracy``, with the given discordant pairs."""
    right = round(n * accuracy)
    return paired(right - production_only, candidate_only, production_only,
                  n - right - candidate_only)


CASES = [
    ("no thresholds: fail closed", only(), metrics(0.99), None, None, True, REJECT,
     "no gate thresholds"),
    ("first run passes absolute", only(min_accuracy=0.8), metrics(0.85), None, None, True,
     PROMOTE, "all 1 checks passed"),
    ("first run fails absolute", only(min_accuracy=0.9), metrics(0.85), None, None, True,
     REJECT, "min_accuracy failed"),
    ("calibration too poor", only(min_accuracy=0.5, max_ece=0.1), metrics(0.9, ece=0.2),
     None, None, True, REJECT, "max_ece failed"),
    ("first run with only comparison rules: fail closed",
     only(non_inferiority_margin=0.01), metrics(0.9), None, None, True, REJECT,
     "failing closed"),
    ("within the margin on 10,000 images: the bound is tight enough",
     only(non_inferiority_margin=0.02), metrics(0.89), metrics(0.90), on(10_000, 300, 400),
     True, PROMOTE, "all 1 checks passed"),
    ("changed: within the margin on 100 images is noise, the bound says reject",
     only(non_inferiority_margin=0.02), metrics(0.89), metrics(0.90), on(100, 3, 4),
     True, REJECT, "non_inferiority failed"),
    ("worse than the margin", only(non_inferiority_margin=0.02), metrics(0.85),
     metrics(0.90), on(100, 3, 8), True, REJECT, "non_inferiority failed"),
    ("required improvement missing", only(min_improvement=0.02), metrics(0.91),
     metrics(0.90), on(100, 5, 4), True, REJECT, "min_improvement failed"),
    ("required improvement shown by the bound", only(min_improvement=0.02),
     metrics(0.95), metrics(0.90), on(2000, 150, 50), True, PROMOTE, "all 1 checks passed"),
    ("significantly worse by McNemar", only(mcnemar_alpha=0.05), metrics(0.88),
     metrics(0.90), on(100, 0, 10), True, REJECT, "mcnemar failed"),
    ("not significantly different", only(mcnemar_alpha=0.05), metrics(0.89),
     metrics(0.90), on(100, 4, 6), True, PROMOTE, "all 1 checks passed"),
    ("a class collapses, beyond noise", only(max_class_recall_drop=0.1), metrics(0.85),
     metrics(0.9), paired(60, 5, 19, 16, {"c0": (30, 5, 5, 0), "c1": (30, 0, 14, 6)}), True,
     REJECT, "classes failing: c1"),
    ("changed: a 0.125 recall drop on 40 images is within noise",
     only(max_class_recall_drop=0.1), metrics(0.89), metrics(0.9),
     paired(70, 0, 5, 5, {"c0": (35, 0, 0, 5), "c1": (35, 0, 5, 0)}), True, PROMOTE,
     "all 1 checks passed"),
    ("changed: a class with 4 test images is reported, not gated",
     only(max_class_recall_drop=0.1), metrics(0.88), metrics(0.9),
     paired(40, 0, 1, 3, {"c0": (38, 0, 0, 2), "tiny": (2, 0, 1, 1)}), True, PROMOTE,
     "not gated (under 10 test images): tiny"),
    ("label set changed: refused by default", only(min_accuracy=0.5), metrics(0.9),
     metrics(0.8), None, False, REJECT, "label_set failed"),
    ("label set changed, baseline not scored: still refused", only(min_accuracy=0.5),
     metrics(0.9), None, None, False, REJECT, "label_set failed"),
    ("label set changed with override: absolute only",
     only(min_accuracy=0.5, allow_label_change=True), metrics(0.9), metrics(0.8), None,
     False, PROMOTE, "label set changed"),
]


@pytest.mark.parametrize("name,config,cand,base,pairs,labels_match,decision,reason", CASES,
                         ids=[c[0] for c in CASES])
def test_gate_table(name, config, cand, base, pairs, labels_match, decision, reason):
    result = decide(config, cand, base, pairs, labels_match)
    assert result.decision == decision, result.reasons
    text = " ".join(result.reasons + [result.mode] + [c["detail"] for c in result.checks])
    assert reason in text


@pytest.mark.parametrize("wins,losses", [(0, 0), (0, 1), (3, 4), (0, 10), (12, 2), (40, 25)])
def test_mcnemar_matches_scipy(wins, losses):
    expected = 1.0 if wins + losses == 0 else binomtest(wins, wins + losses, 0.5).pvalue
    assert mcnemar_exact(wins, losses) == pytest.approx(expected, rel=1e-9)


def test_a_split_too_small_for_the_margin_is_said_plainly():
    stats = split_statistics(only(non_inferiority_margin=0.035), on(12, 1, 1))
    assert stats["test_size"] == 12 and stats["required_test_size"] > 12
    assert "production will almost always be kept" in stats["warning"]
    assert f"grow the test split to {stats['required_test_size']} images" in stats["warning"]


@pytest.mark.parametrize("change,message", [
    (dict(min_accuracy=1.5), "min_accuracy=1.5"),
    (dict(confidence=1.0), "confidence=1.0"),
    (dict(class_alpha=0.0), "class_alpha=0.0"),
    (dict(min_class_support=0), "min_class_support=0"),
])
def test_gate_settings_are_validated(change, message):
    with pytest.raises(ValueError, match=message):
        GateConfig(**change).validate()
