"""Settings of the data-preparation step, validated before any file is read."""

from __future__ import annotations

from dataclasses import dataclass

from components.common import storage
from components.common.augment_policy import AugmentPolicy
from components.common.errors import ConfigError
from components.common.settings import setting

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PrepareConfig:
    source: str = setting(help="Class-per-folder tree or path,label CSV (local, gs://, "
                                "s3://, minio://).")
    output: str = setting(help="New folder or bucket prefix for the examples artifact.")
    train_fraction: float = setting(0.8, "Fraction of images for training.")
    val_fraction: float = setting(0.1, "Fraction of images for validation.")
    test_fraction: float = setting(0.1, "Fraction of images for the gate's test split.")
    min_side: int = setting(32, "Images with a shorter side are skipped.")
    max_pixels: int = setting(50_000_000, "Images with more pixels are skipped (decompression "
                                          "bombs).")
    resize_max_side: int = setting(0, "Downscale larger images to this side; 0 keeps the "
                                      "size.")
    near_duplicates: bool = setting(True, "Keep near-duplicates (perceptual hash) in one "
                                          "split.")
    allow_small_classes: bool = setting(False, "Accept classes too small for every split.")
    split_state: str = setting("", "File that pins each image's split across runs; empty: "
                                   "none.")
    examples_per_shard: int = setting(1000, "Examples per TFRecord shard.")
    preview_images: int = setting(8, "Images in the augmentation preview.")
    augmentation: AugmentPolicy = setting(help="The augmentation policy (JSON of "
                                               "AugmentPolicy fields).", factory=AugmentPolicy)
    beam_args: tuple[str, ...] = setting((), "Arguments for Apache Beam's pipeline options.")

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
