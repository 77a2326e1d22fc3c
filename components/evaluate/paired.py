"""Paired comparison of two classifiers on the same test examples, with honest intervals.

The accuracy difference (candidate - production) gets Newcombe's hybrid score interval
for paired proportions (Newcombe 1998, "Improved confidence intervals for the difference
between binomial proportions based on paired data", method 10): a closed form built from
the Wilson score intervals of both accuracies and the correlation of their outcomes.
Chosen over the Wald interval, which collapses to a point when there are no discordant
pairs and undercovers on small splits, and over a paired bootstrap, which on a dozen
examples only resamples the few discordant pairs it saw and is random. The gate uses its
one-sided lower bound at ``confidence``: a candidate truly worse than the margin passes
non-inferiority with probability of about ``1 - confidence`` or less, at every test size.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

POWER = 0.8  # "would pass 80% of the time"


@dataclass(frozen=True)
class PairedCounts:
    """Outcomes of two classifiers on the same examples."""

    both: int  # both right
    candidate_only: int  # candidate right, production wrong
    production_only: int  # production right, candidate wrong
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.candidate_only + self.production_only + self.neither

    @property
    def discordant(self) -> int:
        return self.candidate_only + self.production_only

    @property
    def difference(self) -> float:
        return (self.candidate_only - self.production_only) / self.n if self.n else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "n": self.n, "difference": self.difference}


@dataclass(frozen=True)
class Paired:
    overall: PairedCounts
    per_class: dict[str, PairedCounts]

    @classmethod
    def from_predictions(cls, y_true: np.ndarray, candidate_pred: np.ndarray,
                         production_pred: np.ndarray, labels: list[str]) -> Paired:
        def counts(mask: np.ndarray) -> PairedCounts:
            cand, prod = candidate_pred[mask] == y_true[mask], production_pred[mask] == y_true[
                mask]
            return PairedCounts(int((cand & prod).sum()), int((cand & ~prod).sum()),
                                int((~cand & prod).sum()), int((~cand & ~prod).sum()))

        return cls(counts(np.ones(len(y_true), dtype=bool)),
                   {label: counts(y_true == i) for i, label in enumerate(labels)})


def z_value(confidence: float) -> float:
    return NormalDist().inv_cdf(confidence)


def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion (two-sided at the level ``z`` stands for)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(counts: PairedCounts, z: float) -> tuple[float, float]:
    """Newcombe's method 10 interval for (candidate - production) accuracy."""
    a, b, c, d, n = (counts.both, counts.candidate_only, counts.production_only,
                     counts.neither, counts.n)
    if n == 0:
        return -1.0, 1.0
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson(a + b, n, z)
    l2, u2 = wilson(a + c, n, z)
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denominator) if denominator else 0.0
    delta = p1 - p2
    lower = delta - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)
                                  + (u2 - p2) ** 2))
    upper = delta + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)
                                  + (p2 - l2) ** 2))
    return max(-1.0, lower), min(1.0, upper)


def operating_characteristics(n: int, discordance_rate: float, margin: float | None,
                              confidence: float) -> dict:
    """What a split of ``n`` paired examples can see (normal approximation; discordance
    rate = the share of examples exactly one of the two models gets right).

    - ``detectable_difference``: the smallest true accuracy difference the bound tells
      from zero 80% of the time (with the discordance of two equally good models: a
      better candidate disagrees less, so this errs on the safe side);
    - ``required_test_size``: the size at which an equally good candidate passes
      non-inferiority at ``margin`` 80% of the time;
    - ``pass_rate_if_equal``: how often an equally good candidate passes at size ``n``.
    """
    z = z_value(confidence) + NormalDist().inv_cdf(POWER)
    rate = max(discordance_rate, 1.0 / max(n, 1))  # no discordant pair seen: assume one
    standard_error = math.sqrt(rate / n) if n else math.inf
    out = {"test_size": n, "discordance_rate": discordance_rate, "confidence": confidence,
           "detectable_difference": min(1.0, z * standard_error)}
    if margin:
        out["required_test_size"] = math.ceil(rate * z * z / margin ** 2)
        out["pass_rate_if_equal"] = NormalDist().cdf(margin / standard_error
                                                     - z_value(confidence)) if n else 0.0
    return out


def independent_discordance(accuracy: float) -> float:
    """The discordance rate of two equally accurate models whose errors are independent
    (the worst case: fine-tuned models usually agree far more)."""
    return 2 * accuracy * (1 - accuracy)
