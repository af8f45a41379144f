"""Motion controls: strength, relative driving and temporal smoothing of motion vectors.

DPE edits by adding a head's output to the source latent, and every head is affine, so
blending motion vectors *before* the head blends the edits exactly:
``H(d_s + k (d_t - d_r)) = H(d_s) + k (H(d_t) - H(d_r))``. With strength 1 and absolute
driving the vector is the driver's own, bit for bit the reference behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dpe_cli.errors import InputError


@dataclass
class MotionControl:
    """Turns driver motion vectors into the vectors a batch is rendered with.

    - ``strength`` k scales the transferred motion: 0 reproduces the source, 1 is as driven.
    - ``relative``: the driver's motion relative to its first frame is added to the source's
      own, so the source's expression (or pose) is the starting point.
    - ``smooth`` in [0, 1): exponential moving average over frames against jitter (causal,
      so it works on a stream; 0.5 lags about one frame).
    """

    strength: float = 1.0
    relative: bool = False
    smooth: float = 0.0
    _reference: Tensor | None = field(default=None, init=False, repr=False)
    _state: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not -2.0 <= self.strength <= 3.0:
            raise InputError(f"--strength {self.strength} is out of range", "use a value between -2 and 3 (1 = as driven)")
        if not 0.0 <= self.smooth < 1.0:
            raise InputError(f"--smooth {self.smooth} is out of range", "use a value in [0, 1), 0 = off")

    @property
    def needs_source_motion(self) -> bool:
        return self.relative or self.strength != 1.0

    def _smoothed(self, driver: Tensor) -> Tensor:
        if self.smooth == 0.0:
            return driver
        rows = []
        for row in driver:
            self._state = row if self._state is None else self.smooth * self._state + (1.0 - self.smooth) * row
            rows.append(self._state)
        return torch.stack(rows)

    def __call__(self, driver: Tensor, source: Tensor | None = None) -> Tensor:
        """``driver``: (B, D) vectors of consecutive frames; ``source``: (B or 1, D) or None."""
        driver = self._smoothed(driver)
        if not self.needs_source_motion:
            return driver
        if source is None:
            raise ValueError("source motion is needed for relative driving or strength != 1")
        if self.relative:
            if self._reference is None:
                self._reference = driver[:1].clone()
            return source + self.strength * (driver - self._reference)
        return source + self.strength * (driver - source)

