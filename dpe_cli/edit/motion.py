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

from dpe_cli.bounds import check_all


@dataclass
class MotionControl:
    """Turns driver motion vectors into the vectors a batch is rendered with.

    Each frame has a *target*: the driver's vector (absolute), or with ``relative`` the
    source's vector at the first edited frame plus the driver's change since its own first
    frame (or since ``reference``, the driver's vector at a neutral frame of the user's choosing),
    so the edit starts from the source's own expression (or pose). The frame is then
    rendered with ``s + k * w * (target - s)``, ``s`` the source's own vector:

    - ``strength`` k: 0 reproduces the source, 1 is as driven;
    - a per-frame weight w in [0, 1] (the fade in and out of an edited span), given per call;
    - ``smooth`` in [0, 1): exponential moving average of the driver over frames against
      jitter (causal, so it works on a stream; 0.5 lags about one frame).

    A source driven by itself with ``relative`` is thus rendered with its own vectors.
    """

    strength: float = 1.0
    relative: bool = False
    smooth: float = 0.0
    reference: Tensor | None = None  # (1, D) or (D,): the driver's neutral for ``relative``; None: its first frame
    _reference: Tensor | None = field(default=None, init=False, repr=False)
    _anchor: Tensor | None = field(default=None, init=False, repr=False)
    _state: Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_all({"strength": self.strength, "smooth": self.smooth})

    @property
    def needs_source_motion(self) -> bool:
        """Whether frames at full weight need the source's own vectors."""
        return self.relative or self.strength != 1.0

    def _smoothed(self, driver: Tensor) -> Tensor:
        if self.smooth == 0.0:
            return driver
        rows = []
        for row in driver:
            self._state = row if self._state is None else self.smooth * self._state + (1.0 - self.smooth) * row
            rows.append(self._state)
        return torch.stack(rows)

    def __call__(self, driver: Tensor, source: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
        """``driver``: (B, D) vectors of consecutive frames; ``source``: (B or 1, D) or None;
        ``weight``: (B,) per-frame weights, None for 1."""
        driver = self._smoothed(driver)
        if not self.needs_source_motion and weight is None:
            return driver  # bit for bit the driver's vectors, as the reference renders them
        if source is None:
            raise ValueError("the source's motion is needed for relative driving, strength != 1 or weights")
        target = driver
        if self.relative:
            if self._reference is None:
                neutral = driver[:1] if self.reference is None else self.reference.reshape(1, -1).to(driver)
                self._reference, self._anchor = neutral.clone(), source[:1].clone()
            target = self._anchor + (driver - self._reference)
        scale = torch.full((driver.size(0), 1), self.strength, dtype=driver.dtype, device=driver.device)
        if weight is not None:
            scale = scale * weight.to(driver)[:, None]
        return source + scale * (target - source)
