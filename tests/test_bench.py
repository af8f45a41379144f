"""The disentanglement benchmark's motion probe: R^2 of what a model's motion vector carries."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from disentanglement import ridge_r2  # noqa: E402


def test_probe_reads_a_carried_factor_and_not_a_missing_one():
    rng = np.random.default_rng(0)
    carried, missing = rng.normal(size=400), rng.normal(size=400)
    mixing = rng.normal(size=(1, 20))
    features = carried[:, None] * mixing + 0.05 * rng.normal(size=(400, 20))  # a motion vector with one factor in it
    r2 = ridge_r2(features, np.stack([carried, missing], axis=1), train=300)
    assert r2[0] > 0.95
    assert abs(r2[1]) < 0.15
