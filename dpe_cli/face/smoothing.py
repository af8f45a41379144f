"""Temporal smoothing of landmark tracks: the One-Euro filter (Casiez, Roussel and Vogel, 2012).

Face-mesh landmarks jitter by a pixel or two from frame to frame even on a still face; a mask
drawn from them then shimmers at its edges. A fixed low-pass filter would remove the jitter
but lag behind real head motion. The One-Euro filter adapts its cutoff to the speed of the
signal: slow motion (jitter) is smoothed hard, fast motion passes with little lag.
"""

from __future__ import annotations

import math

import numpy as np

# Cutoffs in Hz and a speed coefficient in (signal units per second)^-1. Landmarks are
# smoothed as fractions of the crop box, so the same values fit any resolution; a head that
# turns sweeps ~0.5 box/s, which opens the cutoff to ~0.5 + 20 * 0.5 = 10.5 Hz (about one frame
# of lag at 25 fps), while sub-pixel jitter stays near 0.5 Hz.
MIN_CUTOFF = 0.5
BETA = 20.0
DERIVATIVE_CUTOFF = 1.0


def _alpha(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Smoothing factor of an exponential filter with this cutoff frequency."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Smooths a stream of equally shaped arrays sampled at ``rate`` per second.

    Each element is filtered on its own; ``reset`` forgets the history (e.g. after a cut).
    """

    def __init__(
        self,
        rate: float,
        min_cutoff: float = MIN_CUTOFF,
        beta: float = BETA,
        derivative_cutoff: float = DERIVATIVE_CUTOFF,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"sampling rate must be positive, got {rate}")
        self.dt = 1.0 / rate
        self.min_cutoff, self.beta, self.derivative_cutoff = min_cutoff, beta, derivative_cutoff
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None

    def reset(self) -> None:
        self._value = self._speed = None

    def __call__(self, value: np.ndarray) -> np.ndarray:
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._value.shape != value.shape:
            self._value, self._speed = value.copy(), np.zeros_like(value)
            return value.copy()
        assert self._speed is not None
        speed = (value - self._value) / self.dt
        self._speed += _alpha(self.derivative_cutoff, self.dt) * (speed - self._speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self._speed)
        self._value = self._value + _alpha(cutoff, self.dt) * (value - self._value)
        return self._value.copy()
