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


def _alpha(cutoff: float, dt: float) -> float:
    """Smoothing factor of an exponential filter with this cutoff frequency: 1 / (1 + tau / dt)
    with tau = 1 / (2 pi cutoff), written as c / (c + 1) with c = 2 pi cutoff dt."""
    c = 2.0 * math.pi * cutoff * dt
    return c / (c + 1.0)


def _alphas(cutoff: np.ndarray, dt: float) -> np.ndarray:
    """:func:`_alpha` of every element, computed in ``cutoff``'s own array."""
    cutoff *= 2.0 * math.pi * dt
    denominator = cutoff + 1.0
    cutoff /= denominator
    return cutoff


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

    def __call__(self, value: np.ndarray, where: tuple[slice, ...] | None = None) -> np.ndarray:
        """The filtered sample. A float32 stream (a flow field of a frame) is filtered in
        float32, in place where it can be: its arrays are large and it needs no more digits.

        ``where`` (slices), if given, promises that this sample and every one since the reset
        are 0 outside it: only that part is filtered, as the rest stays 0.
        """
        value = np.asarray(value)
        if value.dtype != np.float32:
            value = value.astype(np.float64)
        if self._value is None or self._value.shape != value.shape or self._value.dtype != value.dtype:
            self._value, self._speed = value.copy(), np.zeros_like(value)
            return value.copy()
        assert self._speed is not None
        part = ... if where is None else where
        kept, kept_speed = self._value[part], self._speed[part]
        step = value[part] - kept  # the change since the last sample, then the value's update
        speed = step / self.dt
        speed -= kept_speed
        speed *= _alpha(self.derivative_cutoff, self.dt)
        kept_speed += speed
        cutoff = np.abs(kept_speed)
        cutoff *= self.beta
        cutoff += self.min_cutoff
        step *= _alphas(cutoff, self.dt)
        kept += step
        return self._value.copy()
