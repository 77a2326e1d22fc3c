"""Settings of the data-preparation step, validated before any file is read."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.common import storage
from components.common.augment_policy import AugmentPolicy
from components.common.errors import ConfigError
from components.common.settings import plain, setting

SPLITS = ("train", "val", "test")
PHOTO_ASPECT = 1.5  # 3:2, the usual camera frame: its shorter side keeps the zoom margin
NOT_DATA_SETTINGS = ("source", "output", "split_state", "beam_args", "preview_images")


@dataclass(frozen=True)
class PrepareConfig:
    source: str = setting(help="Class-per-folder tree or path,label CSV (local, "
                                f"{storage.forms('')}).")
    output: str = setting(help="New folder or bucket prefix for the examples artifact.")
    train_fraction: float = setting(0.8, "Fraction of images for training.")
    val_fraction: float = setting(0.1, "Fraction of images for validation.")
    test_fraction: float = setting(0.1, "Fraction of images for the gate's test split.")
    min_side: int = setting(32, "Images with a shorter side are skipped.")
    max_pixels: int = setting(50_000_000, "Images with more pixels are skipped (decompression "
                                          "bombs).")
    image_size: int = setting(224, "Side the model is trained at: sizes the stored images.")
    resize_max_side: int = setting(-1, "Store larger images downscaled (antialiased) to this "
                                       "longest side; -1: image_size x (1 + zoom) x 1.5 (404 "
                                       "at 224); 0 keeps originals.")
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
    def stored_side(self) -> int:
        """The longest side an image is stored at (0: as it came): with -1, enough for
        training's largest zoom on the shorter side of a 3:2 photo, so the stored copy is
        never upsampled in training and a 12-MP photo is stored at about 1/70 its size."""
        if self.resize_max_side != -1:
            return self.resize_max_side
        return math.ceil(self.image_size * (1 + self.augmentation.zoom_fraction) * PHOTO_ASPECT)

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
        if self.beam_args:  # Beam only where a run gives it arguments (compiling needs none)
            from components.common.beam_work import temp_location

            temp_location(self.beam_args)
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
        if self.image_size < 32:
            raise ConfigError(f"--image-size {self.image_size}: use at least 32 pixels")
        if self.resize_max_side not in (-1, 0) and self.resize_max_side < 32:
            raise ConfigError(f"--resize-max-side {self.resize_max_side}: use -1 (derived from "
                              "--image-size), 0 (keep originals) or >= 32")
        if self.examples_per_shard < 1:
            raise ConfigError(f"--examples-per-shard {self.examples_per_shard}: use >= 1")
        self.augmentation.validate()
        return self

    def data_settings(self) -> dict:
        """What decides the examples a model trains on: every setting but paths, Beam's
        options and the preview, resolved (-1 and the side it stands for are one)."""
        return {**plain(self, NOT_DATA_SETTINGS), "resize_max_side": self.stored_side}
