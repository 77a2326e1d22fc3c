"""The promotion gate: a pure function from metrics to a decision with every reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.common.errors import ConfigError

PROMOTE, REJECT, UNCHANGED = "promote", "reject", "unchanged"


@dataclass(frozen=True)
class GateConfig:
    """Unset (None) thresholds are not checked. With none set at all the gate fails closed."""

    min_accuracy: float | None = None
    max_ece: float | None = None
    metric: str = "accuracy"
    non_inferiority_margin: float | None = None
    min_improvement: float | None = None
    mcnemar_alpha: float | None = None
    max_class_recall_drop: float | None = None
    allow_label_change: bool = False

    def validate(self) -> GateConfig:
        for name in ("min_accuracy", "max_ece", "non_inferiority_margin", "min_improvement",
                     "max_class_recall_drop"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"gate {name}={value}: use a fraction between 0 and 1")
        if self.mcnemar_alpha is not None and not 0 < self.mcnemar_alpha < 1:
            raise ConfigError(f"gate mcnemar_alpha={self.mcnemar_alpha}: use 0 < alpha < 1")
        if self.metric not in ("accuracy", "macro_f1", "weighted_f1"):
            raise ConfigError(f"gate metric {self.metric!r}: use accuracy, macro_f1 or weighted_f1")
        return self

    @property
    def absolute_set(self) -> bool:
        return self.min_accuracy is not None or self.max_ece is not None

    @property
    def comparison_set(self) -> bool:
        return any(v is not None for v in (self.non_inferiority_margin, self.min_improvement,
                                           self.mcnemar_alpha, self.max_class_recall_drop))


@dataclass
class GateResult:
    decision: str
    reasons: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    mode: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def decide(config: GateConfig, candidate: dict, baseline: dict | None = None,
           discordant: tuple[int, int] | None = None, labels_match: bool = True) -> GateResult:
    """``discordant`` = (candidate right & baseline wrong, baseline right & candidate wrong)."""
    checks: list[dict] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"check": name, "passed": bool(passed), "detail": detail})

    if not config.absolute_set and not config.comparison_set:
        return GateResult(REJECT, ["no gate thresholds configured: failing closed; set at "
                                   "least min_accuracy (or a comparison rule)"], [], "none")
    if config.min_accuracy is not None:
        check("min_accuracy", candidate["accuracy"] >= config.min_accuracy,
              f"accuracy {candidate['accuracy']:.4f} vs minimum {config.min_accuracy:.4f}")
    if config.max_ece is not None:
        check("max_ece", candidate["ece"] <= config.max_ece,
              f"calibration error {candidate['ece']:.4f} vs maximum {config.max_ece:.4f}")
    mode = "absolute and comparison"
    if not labels_match:  # before the first-run case: such a baseline is never scored
        if not config.allow_label_change:
            check("label_set", False, "the production model has a different label set; "
                  "refusing by default. Set allow_label_change to gate on absolute "
                  "thresholds only")
        mode = "label set changed: absolute thresholds only (allow_label_change)"
    elif baseline is None:
        mode = "first run: absolute thresholds only (no production model to compare with)"
    else:
        metric = config.metric
        delta = candidate[metric] - baseline[metric]
        if config.non_inferiority_margin is not None:
            check("non_inferiority", delta >= -config.non_inferiority_margin,
                  f"{metric} {candidate[metric]:.4f} vs baseline {baseline[metric]:.4f} "
                  f"(delta {delta:+.4f}, margin {config.non_inferiority_margin:.4f})")
        if config.min_improvement is not None:
            check("min_improvement", delta >= config.min_improvement,
                  f"{metric} delta {delta:+.4f} vs required {config.min_improvement:+.4f}")
        if config.mcnemar_alpha is not None and discordant is not None:
            from components.evaluate.metrics import mcnemar_exact

            wins, losses = discordant
            p = mcnemar_exact(wins, losses)
            significantly_worse = p < config.mcnemar_alpha and losses > wins
            check("mcnemar", not significantly_worse,
                  f"discordant pairs: candidate-only right {wins}, baseline-only right "
                  f"{losses}; exact p={p:.4f} (alpha {config.mcnemar_alpha})")
        if config.max_class_recall_drop is not None:
            drops = {label: baseline["per_class"][label]["recall"] - stats["recall"]
                     for label, stats in candidate["per_class"].items()
                     if label in baseline["per_class"]}
            worst = max(drops, key=drops.get) if drops else ""
            check("max_class_recall_drop",
                  not drops or drops[worst] <= config.max_class_recall_drop,
                  f"largest per-class recall drop {drops.get(worst, 0):+.4f} ({worst}) vs "
                  f"allowed {config.max_class_recall_drop:.4f}")
    if not checks:
        return GateResult(REJECT, [f"{mode}, but no absolute threshold is configured: "
                                   "failing closed; set min_accuracy"], [], mode)
    failed = [c for c in checks if not c["passed"]]
    reasons = [f"{c['check']} failed: {c['detail']}" for c in failed] or [
        f"all {len(checks)} checks passed ({mode})"]
    return GateResult(REJECT if failed else PROMOTE, reasons, checks, mode)
