"""The gate's operating characteristics by simulation: the real ``decide()`` on simulated
paired outcomes, so a platform engineer can size the test split before scheduling.

The model: ``classes`` equally frequent classes; production right with probability
``accuracy``, the candidate with ``accuracy - worse_by``, and the two disagreeing on a
share ``discordance`` of the images (independent errors when it is not given). Two
fine-tunes of the same data usually agree far more than independent models: that helps
the split see a difference, but it is where a bound that ignores the correlation passes a
candidate at the margin too often, so the pass rate at the margin is reported across
agreement levels, with its worst case.
"""

from __future__ import annotations

import numpy as np

from components.common.errors import ConfigError
from components.evaluate.gate import PROMOTE, GateConfig, decide
from components.evaluate.paired import Paired
from components.evaluate.sensitivity import (
    independent_discordance,
    margin_pass_rate,
    outcome_probabilities,
    what_the_split_can_see,
)

AGREEMENT_LEVELS = 6  # discordances simulated at the margin, from the least to independence


def _discordance(accuracy: float, worse_by: float, discordance: float | None) -> float:
    """The given discordance, at least ``worse_by`` (a candidate that much worse disagrees
    on at least that share); independent errors when none is given."""
    if discordance is None:
        return independent_discordance(accuracy, accuracy - worse_by)
    return max(discordance, worse_by)


def _predictions(rng, y: np.ndarray, right: np.ndarray, classes: int) -> np.ndarray:
    wrong = (y + 1 + rng.integers(classes - 1, size=len(y))) % classes
    return np.where(right, y, wrong)


def acceptance_rate(config: GateConfig, test_size: int, classes: int, accuracy: float,
                    worse_by: float, trials: int, seed: int = 0,
                    discordance: float | None = None) -> float:
    """The share of simulated nights on which the gate promotes the candidate."""
    rng = np.random.default_rng(seed)
    probabilities = outcome_probabilities(accuracy, accuracy - worse_by,
                                          _discordance(accuracy, worse_by, discordance))
    labels = [f"class_{i}" for i in range(classes)]
    promoted = 0
    for _ in range(trials):
        y = rng.integers(classes, size=test_size)
        outcome = rng.choice(4, size=test_size, p=probabilities)  # both, cand., prod., neither
        production = _predictions(rng, y, (outcome == 0) | (outcome == 2), classes)
        candidate = _predictions(rng, y, outcome <= 1, classes)
        paired = Paired.from_predictions(y, candidate, production, labels)
        metrics = [{"accuracy": float((p == y).mean()), "ece": 0.0}
                   for p in (candidate, production)]
        promoted += decide(config, metrics[0], metrics[1], paired).decision == PROMOTE
    return promoted / trials


def at_the_margin(config: GateConfig, test_size: int, accuracy: float) -> dict:
    """Non-inferiority's pass rate for a candidate exactly ``margin`` worse, from the
    least possible discordance (production right on every disagreement) to independent
    errors, geometrically spaced, and the worst of them."""
    margin = config.non_inferiority_margin
    least, independent = margin, independent_discordance(accuracy, accuracy - margin)
    levels = np.geomspace(least, max(least, independent), AGREEMENT_LEVELS)
    rates = {f"{level:.4f}": margin_pass_rate(test_size, accuracy, margin, float(level),
                                              margin, config.confidence)
             for level in levels}
    worst = max(rates, key=rates.get)
    return {"worse_by": margin, "pass_rate_by_discordance": rates,
            "worst": {"discordance": float(worst), "pass_rate": rates[worst]},
            "promise": 1 - config.confidence}


def characteristics(config: GateConfig, test_size: int, classes: int, accuracy: float,
                    worse_by: tuple[float, ...], trials: int = 2000, seed: int = 0,
                    discordance: float | None = None) -> dict:
    """Acceptance rate per ``worse_by`` (0 = equally good) by simulation, what the split
    can see (the figures the report and ``gate.json`` give for the same inputs), and the
    pass rate at the margin across agreement levels."""
    config.validate()
    for wrong, message in ((test_size < 1, f"--test-size {test_size}: use 1 or more images"),
                           (classes < 2, f"--classes {classes}: use 2 or more"),
                           (not 0 < accuracy <= 1, f"--accuracy {accuracy}: use 0 < accuracy "
                                                   "<= 1 (a fraction, not a percentage)"),
                           (trials < 1, f"--trials {trials}: use 1 or more"),
                           (any(not 0 <= w <= accuracy for w in worse_by),
                            f"--worse-by {','.join(f'{w:g}' for w in worse_by)}: use "
                            f"fractions between 0 and the accuracy ({accuracy:g})"),
                           (discordance is not None and not 0 <= discordance <= 1,
                            f"--discordance {discordance}: use a fraction between 0 and 1")):
        if wrong:
            raise ConfigError(message)
    rates = {f"{w:g}": acceptance_rate(config, test_size, classes, accuracy, w, trials, seed,
                                       discordance)
             for w in worse_by}
    seen = what_the_split_can_see(test_size, accuracy, _discordance(accuracy, 0.0, discordance),
                                  config.non_inferiority_margin, config.confidence)
    out = {"acceptance_rate": rates, **seen}
    if config.checks("non_inferiority_margin"):
        out["at_margin"] = at_the_margin(config, test_size, accuracy)
    return out
