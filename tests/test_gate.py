"""The gate as a table: every rule and edge case; McNemar against SciPy."""

import pytest
from scipy.stats import binomtest

from components.evaluate.gate import PROMOTE, REJECT, GateConfig, decide
from components.evaluate.metrics import mcnemar_exact


def metrics(accuracy, ece=0.05, recalls=(0.9, 0.9)):
    return {"accuracy": accuracy, "macro_f1": accuracy, "weighted_f1": accuracy, "ece": ece,
            "per_class": {f"c{i}": {"recall": r} for i, r in enumerate(recalls)}}


CASES = [
    ("no thresholds: fail closed", GateConfig(), metrics(0.99), None, None, True, REJECT,
     "no gate thresholds"),
    ("first run passes absolute", GateConfig(min_accuracy=0.8), metrics(0.85), None, None, True,
     PROMOTE, "all 1 checks passed"),
    ("first run fails absolute", GateConfig(min_accuracy=0.9), metrics(0.85), None, None, True,
     REJECT, "min_accuracy failed"),
    ("calibration too poor", GateConfig(min_accuracy=0.5, max_ece=0.1), metrics(0.9, ece=0.2),
     None, None, True, REJECT, "max_ece failed"),
    ("first run with only comparison rules: fail closed",
     GateConfig(non_inferiority_margin=0.01), metrics(0.9), None, None, True, REJECT,
     "failing closed"),
    ("within the non-inferiority margin", GateConfig(non_inferiority_margin=0.02), metrics(0.89),
     metrics(0.90), (3, 4), True, PROMOTE, "all 1 checks passed"),
    ("worse than the margin", GateConfig(non_inferiority_margin=0.02), metrics(0.85),
     metrics(0.90), (3, 8), True, REJECT, "non_inferiority failed"),
    ("required improvement missing", GateConfig(min_improvement=0.02), metrics(0.91),
     metrics(0.90), (5, 4), True, REJECT, "min_improvement failed"),
    ("significantly worse by McNemar", GateConfig(mcnemar_alpha=0.05), metrics(0.88),
     metrics(0.90), (0, 10), True, REJECT, "mcnemar failed"),
    ("not significantly different", GateConfig(mcnemar_alpha=0.05), metrics(0.89),
     metrics(0.90), (4, 6), True, PROMOTE, "all 1 checks passed"),
    ("a class collapses", GateConfig(max_class_recall_drop=0.1),
     metrics(0.9, recalls=(0.95, 0.6)), metrics(0.9), (5, 5), True, REJECT,
     "max_class_recall_drop failed"),
    ("label set changed: refused by default", GateConfig(min_accuracy=0.5), metrics(0.9),
     metrics(0.8), None, False, REJECT, "label_set failed"),
    ("label set changed, baseline not scored: still refused", GateConfig(min_accuracy=0.5),
     metrics(0.9), None, None, False, REJECT, "label_set failed"),
    ("label set changed with override: absolute only",
     GateConfig(min_accuracy=0.5, allow_label_change=True), metrics(0.9), metrics(0.8), None,
     False, PROMOTE, "label set changed"),
]


@pytest.mark.parametrize("name,config,cand,base,discordant,labels_match,decision,reason", CASES,
                         ids=[c[0] for c in CASES])
def test_gate_table(name, config, cand, base, discordant, labels_match, decision, reason):
    result = decide(config, cand, base, discordant, labels_match)
    assert result.decision == decision
    assert reason in " ".join(result.reasons + [result.mode])


@pytest.mark.parametrize("wins,losses", [(0, 0), (0, 1), (3, 4), (0, 10), (12, 2), (40, 25)])
def test_mcnemar_matches_scipy(wins, losses):
    expected = 1.0 if wins + losses == 0 else binomtest(wins, wins + losses, 0.5).pvalue
    assert mcnemar_exact(wins, losses) == pytest.approx(expected, rel=1e-9)


def test_gate_settings_are_validated():
    with pytest.raises(ValueError, match="min_accuracy=1.5"):
        GateConfig(min_accuracy=1.5).validate()
