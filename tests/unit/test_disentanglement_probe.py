"""The disentanglement benchmark's parts: the motion probe's R^2 and the held-out pairs."""

from __future__ import annotations

import numpy as np
import torch

from dpe_cli.eval.disentanglement import held_out_pairs, ridge_r2
from dpe_cli.synth.factors import FACTORS


def test_probe_reads_a_carried_factor_and_not_a_missing_one():
    rng = np.random.default_rng(0)
    carried, missing = rng.normal(size=400), rng.normal(size=400)
    mixing = rng.normal(size=(1, 20))
    features = carried[:, None] * mixing + 0.05 * rng.normal(size=(400, 20))  # a motion vector with one factor in it
    r2 = ridge_r2(features, np.stack([carried, missing], axis=1), train=300)
    assert r2[0] > 0.95
    assert abs(r2[1]) < 0.15


def test_held_out_pairs_share_identity_and_scene_but_not_labels():
    source, driver, s_true, d_true = held_out_pairs(3, 32, seed=0)
    assert source.shape == driver.shape == (3, 3, 32, 32) and s_true.shape == d_true.shape == (3, len(FACTORS))
    assert not np.allclose(s_true, d_true)
    again = held_out_pairs(3, 32, seed=0)
    assert torch.equal(again[0], source) and np.array_equal(again[3], d_true)
