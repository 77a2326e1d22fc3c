"""The BN policy x clipping grid of an ablation run: one cell, one training."""

from __future__ import annotations

from dataclasses import dataclass

from components.common.errors import ConfigError
from components.common.settings import setting
from components.train.config import BN_POLICIES, CLIP_MODES


@dataclass(frozen=True)
class AblationGrid:
    bn_policies: tuple[str, ...] = setting(BN_POLICIES, "Ablation: the BN policies of the "
                                                        "grid.", BN_POLICIES)
    clips: tuple[str, ...] = setting(("none", "autoclip", "agc"), "Ablation: the clip modes "
                                                                  "of the grid.", CLIP_MODES)
    seeds: int = setting(1, "Ablation: seeds per cell (1 to 10).")

    def validate(self) -> AblationGrid:
        for name, values, allowed in (("--bn-policies", self.bn_policies, BN_POLICIES),
                                      ("--clips", self.clips, CLIP_MODES)):
            unknown = [v for v in values if v not in allowed]
            if not values or unknown or len(set(values)) != len(values):
                raise ConfigError(f"{name} {','.join(values)}: give distinct values from "
                                  f"{', '.join(allowed)}")
        if not 1 <= self.seeds <= 10:
            raise ConfigError(f"--seeds {self.seeds}: use 1 to 10 seeds per cell")
        return self

    def cells(self) -> list[dict]:
        """One dict per training: the ParallelFor items of the ablation pipeline, the
        settings each cell sets over the run's. Each cell trains the default recipe of its
        policy and clip mode (the mode's own threshold, the policy's own blocks)."""
        return [{"bn_policy": policy, "clip": clip, "seed": seed, "clip_threshold": -1.0}
                for policy in self.bn_policies for clip in self.clips
                for seed in range(self.seeds)]
