"""The promotion gate: a pure function from metrics to a decision with every reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import comb

from components.common.errors import ConfigError
from components.common.settings import setting
from components.evaluate.paired import Paired, difference_interval, z_value
from components.evaluate.sensitivity import what_the_split_can_see

PROMOTE, REJECT, UNCHANGED = "promote", "reject", "unchanged"
OFF = -1.0  # a threshold of -1 is not checked (one spelling everywhere: KFP has no None)
THRESHOLDS = ("min_accuracy", "max_ece", "non_inferiority_margin", "min_improvement",
              "mcnemar_alpha", "max_class_recall_drop")


@dataclass(frozen=True)
class GateConfig:
    """Thresholds at ``OFF`` (-1) are not checked; with every one off the gate fails
    closed. The defaults are the run's defaults: the pipeline, the CLI and a bare
    ``GateConfig()`` judge alike.

    Comparisons with production are on the paired accuracy difference: non-inferiority
    and the required improvement judge its lower confidence bound at ``confidence``; a
    class's recall drop fails only beyond the limit *and* when an exact test on that
    class's discordant pairs finds it unlikely under noise (``class_alpha`` shared by the
    gated classes); classes with fewer than ``min_class_support`` test images are reported,
    not gated."""

    min_accuracy: float = setting(0.5, "Lowest test accuracy to promote; -1: off.")
    max_ece: float = setting(OFF, "Highest expected calibration error; -1: off.")
    non_inferiority_margin: float = setting(
        0.035, "Largest accuracy loss against production the confidence bound may show; "
               "-1: off.")
    min_improvement: float = setting(
        OFF, "Accuracy gain over production the confidence bound must show; -1: off.")
    confidence: float = setting(0.95, "Confidence of the bound on the accuracy difference.")
    mcnemar_alpha: float = setting(
        0.05, "Reject when McNemar's exact test finds the candidate worse at this level; "
              "-1: off.")
    max_class_recall_drop: float = setting(
        0.1, "Largest drop of one class's recall (beyond noise); -1: off.")
    class_alpha: float = setting(0.05, "Level of the per-class recall tests (shared).")
    min_class_support: int = setting(10, "Classes with fewer test images are reported, not "
                                         "gated.")
    allow_label_change: bool = setting(False, "Promote a model whose label set differs from "
                                              "production's.")
    beam_args: tuple[str, ...] = setting((), "Arguments for Apache Beam's pipeline options "
                                             "(the scoring).")

    @classmethod
    def only(cls, **thresholds: float) -> GateConfig:
        """A gate checking ``thresholds`` and no other threshold."""
        return cls(**{**dict.fromkeys(THRESHOLDS, OFF), **thresholds})

    def checks(self, threshold: str) -> bool:
        return getattr(self, threshold) != OFF

    def validate(self) -> GateConfig:
        for name in set(THRESHOLDS) - {"mcnemar_alpha"}:
            value = getattr(self, name)
            if self.checks(name) and not 0 <= value <= 1:
                raise ConfigError(f"gate {name}={value}: use a fraction between 0 and 1, or "
                                  "-1 for off")
        for name in ("mcnemar_alpha", "class_alpha"):
            value = getattr(self, name)
            if (name == "class_alpha" or self.checks(name)) and not 0 < value < 1:
                raise ConfigError(f"gate {name}={value}: use 0 < alpha < 1" +
                                  (", or -1 for off" if name == "mcnemar_alpha" else ""))
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"gate confidence={self.confidence}: use 0.5 <= confidence < 1 "
                              "(e.g. 0.95)")
        if self.min_class_support < 1:
            raise ConfigError(f"gate min_class_support={self.min_class_support}: use >= 1")
        if self.beam_args:  # Beam only where a run gives it arguments (compiling needs none)
            from components.common import storage
            from components.common.beam_work import temp_location

            temp = temp_location(self.beam_args)
            if temp and not (storage.is_local(temp) or temp.startswith("gs://")):
                raise ConfigError(
                    f"Beam's --temp_location {temp}: evaluation's Beam workers load the "
                    "models from it with TensorFlow, which reads local paths and gs:// "
                    "only; give a gs:// location (or none, for workers beside the step)")
        return self

    @property
    def absolute_set(self) -> bool:
        return self.checks("min_accuracy") or self.checks("max_ece")

    @property
    def comparison_set(self) -> bool:
        return any(self.checks(name) for name in ("non_inferiority_margin", "min_improvement",
                                                  "mcnemar_alpha", "max_class_recall_drop"))


@dataclass
class GateResult:
    decision: str
    reasons: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    mode: str = ""
    statistics: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _one_sided_exact(losses: int, discordant: int) -> float:
    """P(at least ``losses`` of ``discordant`` pairs go to production) if both are equal."""
    return sum(comb(discordant, i) for i in range(losses, discordant + 1)) / 2 ** discordant \
        if discordant else 1.0


def _class_check(config: GateConfig, paired: Paired) -> tuple[bool, str, dict]:
    gated = {k: v for k, v in paired.per_class.items() if v.n >= config.min_class_support}
    small = sorted(k for k in paired.per_class if k not in gated)
    alpha = config.class_alpha / max(1, len(gated))
    rows, failing = {}, []
    for label, counts in gated.items():
        drop = -counts.difference
        p = _one_sided_exact(counts.production_only, counts.discordant)
        rows[label] = {"recall_drop": drop, "p_value": p, "support": counts.n}
        if drop > config.max_class_recall_drop and p < alpha:
            failing.append(label)
    worst = max(rows, key=lambda k: rows[k]["recall_drop"]) if rows else ""
    detail = (f"classes failing: {', '.join(failing)}; " if failing else "") + (
        f"largest recall drop {rows[worst]['recall_drop']:+.4f} ({worst}, exact p="
        f"{rows[worst]['p_value']:.4f} vs {alpha:.4f} for {len(gated)} gated classes)"
        if worst else "no class has enough test images to gate") + (
        f"; not gated (under {config.min_class_support} test images): {', '.join(small)}"
        if small else "")
    return not failing, detail, {"per_class": rows, "not_gated": small, "alpha": alpha}


def _interval(config: GateConfig, paired: Paired) -> dict:
    low, high = difference_interval(paired.overall, z_value(config.confidence))
    return {"paired": paired.overall.to_dict(), "difference_lower_bound": low,
            "difference_upper_bound": high}


def split_statistics(config: GateConfig, paired: Paired) -> dict:
    """What this split can see (``sensitivity.what_the_split_can_see`` at the two models'
    mean accuracy and observed discordance), with a warning when it is too small for the
    margin. A fraction of a second of simulation: for the report, not for each simulated
    gate."""
    counts = paired.overall
    n = max(1, counts.n)
    stats = what_the_split_can_see(counts.n, (2 * counts.both + counts.discordant) / (2 * n),
                                   counts.discordant / n, config.non_inferiority_margin,
                                   config.confidence)
    if stats.get("pass_rate_if_equal", 1.0) < 0.5:
        size = (f" or grow the test split to {stats['required_test_size']} images"
                if stats["required_test_size"] else "")
        stats["warning"] = (
            f"with {counts.n} paired test images an equally good candidate passes "
            f"non-inferiority only {stats['pass_rate_if_equal']:.0%} of the time: production "
            f"will almost always be kept. Raise non_inferiority_margin to "
            f"{stats['required_margin']:.3f}{size}")
    return stats


def decide(config: GateConfig, candidate: dict, baseline: dict | None = None,
           paired: Paired | None = None, labels_match: bool = True) -> GateResult:
    """``paired``: both models' outcomes on the same test examples (with ``baseline``)."""
    checks: list[dict] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"check": name, "passed": bool(passed), "detail": detail})

    if not config.absolute_set and not config.comparison_set:
        return GateResult(REJECT, ["no gate thresholds configured: failing closed; set at "
                                   "least min_accuracy (or a comparison rule)"], [], "none")
    if config.checks("min_accuracy"):
        check("min_accuracy", candidate["accuracy"] >= config.min_accuracy,
              f"accuracy {candidate['accuracy']:.4f} vs minimum {config.min_accuracy:.4f}")
    if config.checks("max_ece"):
        check("max_ece", candidate["ece"] <= config.max_ece,
              f"calibration error {candidate['ece']:.4f} vs maximum {config.max_ece:.4f}")
    mode, statistics = "absolute and comparison", {}
    if not labels_match:  # before the first-run case: such a baseline is never scored
        if not config.allow_label_change:
            check("label_set", False, "the production model has a different label set; "
                  "refusing by default. Set allow_label_change to gate on absolute "
                  "thresholds only")
        mode = "label set changed: absolute thresholds only (allow_label_change)"
    elif baseline is None or paired is None:
        mode = "first run: absolute thresholds only (no production model to compare with)"
    else:
        statistics = _interval(config, paired)
        counts, low = paired.overall, statistics["difference_lower_bound"]
        bound = (f"accuracy {candidate['accuracy']:.4f} vs production "
                 f"{baseline['accuracy']:.4f} (difference {counts.difference:+.4f}, "
                 f"{config.confidence:.0%} lower bound {low:+.4f}, {counts.n} paired images)")
        if config.checks("non_inferiority_margin"):
            check("non_inferiority", low > -config.non_inferiority_margin,
                  f"{bound} vs margin -{config.non_inferiority_margin:.4f}")
        if config.checks("min_improvement"):
            check("min_improvement", low >= config.min_improvement,
                  f"{bound} vs required {config.min_improvement:+.4f}")
        if config.checks("mcnemar_alpha"):
            from components.evaluate.metrics import mcnemar_exact

            wins, losses = counts.candidate_only, counts.production_only
            p = mcnemar_exact(wins, losses)
            check("mcnemar", not (p < config.mcnemar_alpha and losses > wins),
                  f"discordant pairs: candidate-only right {wins}, production-only right "
                  f"{losses}; exact p={p:.4f} (alpha {config.mcnemar_alpha})")
        if config.checks("max_class_recall_drop"):
            passed, detail, per_class = _class_check(config, paired)
            statistics["classes"] = per_class
            check("max_class_recall_drop", passed,
                  f"{detail} vs allowed {config.max_class_recall_drop:.4f}")
    if not checks:
        return GateResult(REJECT, [f"{mode}, but no absolute threshold is configured: "
                                   "failing closed; set min_accuracy"], [], mode, statistics)
    failed = [c for c in checks if not c["passed"]]
    reasons = [f"{c['check']} failed: {c['detail']}" for c in failed] or [
        f"all {len(checks)} checks passed ({mode})"]
    return GateResult(REJECT if failed else PROMOTE, reasons, checks, mode, statistics)


def next_step(gate: dict) -> str:
    """One sentence: what to do after this decision (``gate``: a GateResult's dict)."""
    failed = [c["check"] for c in gate.get("checks", []) if not c["passed"]]
    stats = gate.get("statistics") or {}
    if gate["decision"] == PROMOTE:
        return "nothing: the candidate passed every check and is promoted"
    if gate["decision"] == UNCHANGED:
        return ("nothing: to retrain, add or change data, change a setting, or force a run "
                "(--force, the pipeline's force parameter)")
    if "label_set" in failed:
        return ("if the new label set is intended, set allow_label_change in "
                "gate_extra_json; otherwise fix the class folders")
    if "non_inferiority" in failed and stats.get("warning"):
        size = stats.get("required_test_size")
        return (f"the test split is too small to show that an equally good model is not worse"
                f" ({stats['test_size']} images: it passes {stats['pass_rate_if_equal']:.0%} "
                f"of the time): " + (f"grow it to {size} images (raise test_fraction or add "
                                     f"data) or " if size else "")
                + f"raise non_inferiority_margin to {stats['required_margin']:.3f}")
    if failed == ["min_accuracy"]:
        return ("the candidate is below min_accuracy: train longer or on more data, check "
                "the data report for mislabelled classes, or lower min_accuracy")
    if not failed:
        return "configure a threshold (min_accuracy at least): the gate fails closed"
    return (f"read the failed checks ({', '.join(failed)}) in the evaluation report; the "
            "candidate is measurably worse than production there")
