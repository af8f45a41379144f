"""Model configuration: what travels with the weights."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from dpe_cli.errors import InputError

# Channels per resolution in the official release (StyleGAN2 table, channel_multiplier=1).
BASE_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32}
MAX_WIDTH = 2.0  # 512 px at width 2 is about 1 GB of float32 weights
MAX_STYLE_DIM = 1024
MAX_MOTION_DIM = 128


@dataclass(frozen=True)
class DPEConfig:
    """Architecture hyper-parameters. The defaults are the official ``dpe.pt`` release.

    ``width`` scales every channel count (0.25 gives a model 16x cheaper), so that small
    models can be trained and tested on a CPU.
    """

    size: int = 256
    style_dim: int = 512
    motion_dim: int = 20
    width: float = 1.0

    def __post_init__(self) -> None:
        # Bounds a real DPE needs (the official model is 256 px, width 1, 512/20) with room to
        # grow; a checkpoint's metadata is checked against them before anything is allocated,
        # so a lying file cannot make dpe build a model of hundreds of gigabytes.
        if self.size not in (64, 128, 256, 512):
            raise InputError(f"image size {self.size} is not supported", "use 64, 128, 256 or 512")
        if not 0 < self.width <= MAX_WIDTH:
            raise InputError(f"width {self.width} is out of range", f"use a fraction in (0, {MAX_WIDTH:g}], 1 = official")
        if not 1 <= self.style_dim <= MAX_STYLE_DIM:
            raise InputError(f"style_dim {self.style_dim} is out of range", f"use 1 to {MAX_STYLE_DIM}, 512 = official")
        if not 1 <= self.motion_dim <= min(self.style_dim, MAX_MOTION_DIM):
            raise InputError(
                f"motion_dim {self.motion_dim} is out of range for style_dim {self.style_dim}",
                f"motion_dim must be between 1 and style_dim (at most {MAX_MOTION_DIM}), 20 = official",
            )

    def channels(self, resolution: int) -> int:
        return max(1, int(round(BASE_CHANNELS[resolution] * self.width)))

    @property
    def resolutions(self) -> list[int]:
        """Feature/decoder resolutions from 8 up to ``size``."""
        return [2**i for i in range(3, int(math.log2(self.size)) + 1)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DPEConfig":
        known = {k: data[k] for k in ("size", "style_dim", "motion_dim", "width") if k in data}
        return cls(
            size=int(known.get("size", 256)),
            style_dim=int(known.get("style_dim", 512)),
            motion_dim=int(known.get("motion_dim", 20)),
            width=float(known.get("width", 1.0)),
        )
