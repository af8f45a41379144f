"""Temporal smoothing of boxes and landmarks: the One-Euro filter."""

from __future__ import annotations

import numpy as np
import pytest

from dpe_cli.face.smoothing import OneEuroFilter


def test_one_euro_filter_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    still = OneEuroFilter(25.0)
    noisy = 0.5 + rng.normal(0, 0.002, (100, 4))
    out = np.array([still(row) for row in noisy])
    assert np.abs(np.diff(out[20:], axis=0)).mean() < 0.3 * np.abs(np.diff(noisy[20:], axis=0)).mean()
    moving = OneEuroFilter(25.0)
    ramp = np.linspace(0, 1, 50)[:, None]  # half a box per second: a head turning
    followed = np.array([moving(row) for row in ramp])
    assert np.abs(followed[-1] - ramp[-1]).max() < 0.04  # lags by about one frame
    assert np.array_equal(OneEuroFilter(25.0)(np.ones(3)), np.ones(3))  # the first sample passes
    with pytest.raises(ValueError):
        OneEuroFilter(0.0)


def test_a_float32_stream_is_filtered_in_float32_like_float64():
    """Flow fields are filtered as float32 (large arrays); the result is the float64 filter's."""
    rng = np.random.default_rng(1)
    samples = rng.normal(0, 0.01, (12, 32, 32, 2))
    single, double = OneEuroFilter(25.0), OneEuroFilter(25.0)
    for sample in samples:
        fast, exact = single(sample.astype(np.float32)), double(sample)
        assert fast.dtype == np.float32 and exact.dtype == np.float64
        assert np.abs(fast - exact).max() < 1e-6
