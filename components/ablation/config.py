"""The BN policy x clipping grid of an ablation run: one cell, one training."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from components.common.errors import ConfigError

# AGC's lambda is a ratio to the weight norm (NFNets: 0.01 to 0.16), not a gradient norm.
DEFAULT_THRESHOLDS = {"none": 0.0, "value": 0.5, "norm": 1.0, "global_norm": 1.0, "agc": 0.01}


@dataclass(frozen=True)
class AblationGrid:
    bn_policies: tuple[str, ...] = ("frozen", "bn_only", "full")
    clips: tuple[str, ...] = ("none", "global_norm", "agc")
    seeds: int = 1
    clip_thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    frozen_fine_tune_blocks: int = 3  # the frozen cell fine-tunes the top blocks (phase 2)

    def validate(self) -> AblationGrid:
        from components.train.config import BN_POLICIES, CLIP_MODES

        for name, values, allowed in (("--bn-policies", self.bn_policies, BN_POLICIES),
                                      ("--clips", self.clips, CLIP_MODES)):
            unknown = [v for v in values if v not in allowed]
            if not values or unknown or len(set(values)) != len(values):
                raise ConfigError(f"{name} {','.join(values)}: give distinct values from "
                                  f"{', '.join(allowed)}")
        if not 1 <= self.seeds <= 10:
            raise ConfigError(f"--seeds {self.seeds}: use 1 to 10 seeds per cell")
        missing = [c for c in self.clips if c not in self.clip_thresholds]
        if missing:
            raise ConfigError(f"no clip threshold for {', '.join(missing)}: add it to "
                              "clip_thresholds")
        return self

    def cells(self, train_extra: dict | None = None) -> list[dict]:
        """One dict per training: the ParallelFor items of the ablation pipeline."""
        cells = []
        for policy in self.bn_policies:
            extra = {**(train_extra or {}),
                     "fine_tune_blocks": self.frozen_fine_tune_blocks if policy == "frozen" else 0}
            for clip in self.clips:
                for seed in range(self.seeds):
                    cells.append({"bn_policy": policy, "clip": clip, "seed": seed,
                                  "clip_threshold": self.clip_thresholds[clip] or 1.0,
                                  "extra_json": json.dumps(extra, sort_keys=True)})
        return cells
