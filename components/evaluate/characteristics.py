"""The gate's operating characteristics by simulation: the real ``decide()`` on simulated
paired outcomes, so a platform engineer can size the test split before scheduling.

The model: ``classes`` equally frequent classes; production right with probability
``accuracy``, the candidate with ``accuracy - worse_by``, independently (errors of two
fine-tuned models usually agree more, which only makes the split see more).
"""

from __future__ import annotations

import numpy as np

from components.common.errors import ConfigError
from components.evaluate.gate import PROMOTE, GateConfig, decide
from components.evaluate.paired import (
    Paired,
    independent_discordance,
    operating_characteristics,
)


def _predictions(rng, y: np.ndarray, accuracy: float, classes: int) -> np.ndarray:
    right = rng.random(len(y)) < accuracy
    wrong = (y + 1 + rng.integers(classes - 1, size=len(y))) % classes
    return np.where(right, y, wrong)


def acceptance_rate(config: GateConfig, test_size: int, classes: int, accuracy: float,
                    worse_by: float, trials: int, seed: int = 0) -> float:
    """The share of simulated nights on which the gate promotes the candidate."""
    rng = np.random.default_rng(seed)
    labels = [f"class_{i}" for i in range(classes)]
    promoted = 0
    for _ in range(trials):
        y = rng.integers(classes, size=test_size)
        production = _predictions(rng, y, accuracy, classes)
        candidate = _predictions(rng, y, max(0.0, accuracy - worse_by), classes)
        paired = Paired.from_predictions(y, candidate, production, labels)
        metrics = [{"accuracy": float((p == y).mean()), "ece": 0.0}
                   for p in (candidate, production)]
        promoted += decide(config, metrics[0], metrics[1], paired).decision == PROMOTE
    return promoted / trials


def characteristics(config: GateConfig, test_size: int, classes: int, accuracy: float,
                    worse_by: tuple[float, ...], trials: int = 2000, seed: int = 0) -> dict:
    """Acceptance rate per ``worse_by`` (0 = equally good) by simulation, and the
    detectable difference and required test size of the non-inferiority bound."""
    config.validate()
    for wrong, message in ((test_size < 1, f"--test-size {test_size}: use 1 or more images"),
                           (classes < 2, f"--classes {classes}: use 2 or more"),
                           (not 0 < accuracy <= 1, f"--accuracy {accuracy}: use 0 < accuracy "
                                                   "<= 1 (a fraction, not a percentage)"),
                           (trials < 1, f"--trials {trials}: use 1 or more"),
                           (any(not 0 <= w <= 1 for w in worse_by),
                            f"--worse-by {','.join(f'{w:g}' for w in worse_by)}: use "
                            "fractions between 0 and 1")):
        if wrong:
            raise ConfigError(message)
    analytic = operating_characteristics(test_size, independent_discordance(accuracy),
                                         config.non_inferiority_margin, config.confidence)
    rates = {f"{w:g}": acceptance_rate(config, test_size, classes, accuracy, w, trials, seed)
             for w in worse_by}
    return {"acceptance_rate": rates,
            **{k: analytic[k] for k in ("detectable_difference", "required_test_size",
                                        "pass_rate_if_equal") if k in analytic}}
