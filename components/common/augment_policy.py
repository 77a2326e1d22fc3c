"""The augmentation policy: a plain record shared by the data step and training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from components.common.errors import ConfigError


@dataclass(frozen=True)
class AugmentPolicy:
    """Random training-time augmentation. Units are explicit in every name.

    The original tutorial asked for ``shear_range=0.2``, which Keras reads as degrees
    (practically no shear); its intent, a visible shear, is ``shear_degrees=10``.
    """

    horizontal_flip: bool = True
    zoom_fraction: float = 0.2
    shear_degrees: float = 10.0
    rotation_degrees: float = 0.0
    contrast_fraction: float = 0.0

    def validate(self) -> AugmentPolicy:
        if not 0 <= self.zoom_fraction < 1:
            raise ConfigError(f"zoom_fraction={self.zoom_fraction}: use 0 <= zoom < 1 (0.2 = ±20%)")
        if not 0 <= self.shear_degrees < 45:
            raise ConfigError(f"shear_degrees={self.shear_degrees}: use 0 to 45 degrees")
        if not 0 <= self.rotation_degrees <= 180:
            raise ConfigError(f"rotation_degrees={self.rotation_degrees}: use 0 to 180 degrees")
        if not 0 <= self.contrast_fraction < 1:
            raise ConfigError(f"contrast_fraction={self.contrast_fraction}: use 0 <= c < 1")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AugmentPolicy:
        return cls(**data).validate()
