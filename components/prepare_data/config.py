"""Settings of the data-preparation step, validated before any file is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from components.common import storage
from components.common.augment_policy import AugmentPolicy
from components.common.errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PrepareConfig:
    source: str
    output: str
    train_fraction: float = 0.8
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    min_side: int = 32
    max_pixels: int = 50_000_000
    resize_max_side: int = 0
    near_duplicates: bool = True
    allow_small_classes: bool = False
    split_state: str = ""
    examples_per_shard: int = 1000
    preview_images: int = 8
    augmentation: AugmentPolicy = field(default_factory=AugmentPolicy)
    beam_args: tuple[str, ...] = ()

    @property
    def fractions(self) -> dict[str, float]:
        values = (self.train_fraction, self.val_fraction, self.test_fraction)
        return dict(zip(SPLITS, values, strict=True))

    def validate(self) -> PrepareConfig:
        if not self.source:
            raise ConfigError("--source is empty: give a class-per-folder directory or a CSV")
        if not self.output:
            raise ConfigError("--output is empty: give a directory for the examples")
        storage.check_uri(self.source, "--source")
        storage.check_uri(self.output, "--output")
        if self.split_state:
            storage.check_uri(self.split_state, "--split-state")
        for name, value in self.fractions.items():
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} fraction {value}: use a number between 0 and 1")
        total = sum(self.fractions.values())
        if abs(total - 1) > 1e-6:
            raise ConfigError(
                f"split fractions {self.train_fraction}/{self.val_fraction}/"
                f"{self.test_fraction} sum to {total:g}; they must sum to 1 (e.g. 0.8/0.1/0.1)"
            )
        if self.train_fraction == 0 or self.test_fraction == 0:
            raise ConfigError("train and test fractions must be > 0: the gate needs a test split")
        if self.min_side < 1:
            raise ConfigError(f"--min-side {self.min_side}: use at least 1 pixel")
        if self.max_pixels < self.min_side**2:
            raise ConfigError(f"--max-pixels {self.max_pixels}: must be >= min-side squared")
        if self.resize_max_side and self.resize_max_side < 32:
            raise ConfigError(f"--resize-max-side {self.resize_max_side}: use 0 (keep) or >= 32")
        if self.examples_per_shard < 1:
            raise ConfigError(f"--examples-per-shard {self.examples_per_shard}: use >= 1")
        self.augmentation.validate()
        return self
