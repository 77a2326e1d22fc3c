"""What a test split can see: one function behind the report, ``gate.json`` and
``finetune gate characteristics``.

Two models scored on the same ``n`` images are described by production's accuracy, the
candidate's, and the discordance: the share of images on which exactly one of them is
right. Fine-tunes of the same data agree on most images (a low discordance); models whose
errors are independent disagree on ``p1(1-p2) + p2(1-p1)``. Given those three numbers the
paired outcomes are multinomial, so the gate's non-inferiority bound is simulated exactly
as the gate computes it (``TRIALS`` seeded draws, vectorised): no normal approximation,
and the same inputs always give the same figures.
"""

from __future__ import annotations

import numpy as np

from components.common.errors import ConfigError
from components.evaluate.paired import newcombe_bounds, z_value

TRIALS = 20_000
POWER = 0.8  # "would pass 80% of the time"
LARGEST_SPLIT = 10_000_000


def independent_discordance(production: float, candidate: float) -> float:
    """The discordance of two models with these accuracies whose errors are independent."""
    return production * (1 - candidate) + candidate * (1 - production)


def outcome_probabilities(production: float, candidate: float,
                          discordance: float) -> np.ndarray:
    """P(both right), P(candidate only), P(production only), P(neither)."""
    candidate_only = (discordance - (production - candidate)) / 2
    production_only = (discordance + (production - candidate)) / 2
    both = production - production_only
    probabilities = np.array([both, candidate_only, production_only,
                              1 - both - candidate_only - production_only])
    if (probabilities < -1e-12).any():
        low = abs(production - candidate)
        high = min(production + candidate, 2 - production - candidate)
        raise ConfigError(f"discordance {discordance:g} is impossible for accuracies "
                          f"{production:g} and {candidate:g}: use {low:g} to {high:g}")
    return np.clip(probabilities, 0.0, 1.0)


def lower_bounds(n: int, production: float, candidate: float, discordance: float,
                 confidence: float, trials: int = TRIALS, seed: int = 0) -> np.ndarray:
    """The gate's lower confidence bound of the accuracy difference on ``trials``
    simulated splits of ``n`` paired images."""
    counts = np.random.default_rng(seed).multinomial(
        n, outcome_probabilities(production, candidate, discordance), size=trials)
    return newcombe_bounds(*counts.T, z_value(confidence))[0]


def margin_pass_rate(n: int, accuracy: float, worse_by: float, discordance: float,
                     margin: float, confidence: float, seed: int = 0) -> float:
    """How often a candidate ``worse_by`` below production passes non-inferiority."""
    return float((lower_bounds(n, accuracy, accuracy - worse_by, discordance, confidence,
                               seed=seed) > -margin).mean())


def _smallest(passes, low: float, high: float, integer: bool) -> float | None:
    """The smallest value in [low, high] at which ``passes`` holds (monotone), by bisection;
    None where even ``high`` does not."""
    if not passes(high):
        return None
    while high - low > (1 if integer else 1e-4):
        middle = (low + high) // 2 if integer else (low + high) / 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    return high


def what_the_split_can_see(n: int, accuracy: float, discordance: float,
                           margin: float, confidence: float) -> dict:
    """For two equally good models (``accuracy``, disagreeing on ``discordance`` of the
    images):

    - ``pass_rate_if_equal``: how often the candidate passes non-inferiority at ``margin``
      on ``n`` images (with a margin of -1, the gate's off, neither this nor the next);
    - ``required_test_size``: the size at which it passes 80% of the time;
    - ``required_margin``: the margin at which it passes 80% of the time at size ``n``;
    - ``detectable_difference``: the smallest true improvement whose lower bound clears 0
      80% of the time at size ``n`` (a better candidate keeps the discordance, or wins
      every disagreement when its gain is larger); None where no gain is detectable.
    """
    equal = min(max(discordance, 0.0), 2 * min(accuracy, 1 - accuracy))
    out = {"test_size": n, "accuracy": accuracy, "discordance_rate": equal,
           "confidence": confidence,
           "assumption": f"an equally good candidate at accuracy {accuracy:.3f} that "
                         f"disagrees with production on {equal:.1%} of the images"}

    def improvement_seen(gain: float) -> bool:
        most = 2 * (1 - accuracy) - gain  # the candidate cannot be wrong more often than that
        bounds = lower_bounds(n, accuracy, accuracy + gain, min(max(equal, gain), most),
                              confidence)
        return (bounds >= 0).mean() >= POWER

    equal_bounds = lower_bounds(n, accuracy, accuracy, equal, confidence)
    out["detectable_difference"] = (_smallest(improvement_seen, 0.0, 1 - accuracy, False)
                                    if n and accuracy < 1 else None)
    out["required_margin"] = max(0.0, -float(np.quantile(equal_bounds, 1 - POWER)))
    if margin >= 0:
        def equal_passes(size: int) -> bool:
            return margin_pass_rate(int(size), accuracy, 0.0, equal, margin,
                                    confidence) >= POWER

        out["pass_rate_if_equal"] = float((equal_bounds > -margin).mean())
        required = _smallest(equal_passes, 0, LARGEST_SPLIT, True)
        out["required_test_size"] = None if required is None else int(required)
    return out
