"""Checkpoint parity: the official weights must compute what the reference computes."""

from __future__ import annotations

import pytest
import torch

from dpe_cli import load_model

STAGES = {"exp": "expression", "pose": "pose", "both": "both"}


@pytest.fixture(scope="module")
def model64(official_checkpoint):
    return load_model(official_checkpoint, dtype=torch.float64)


@pytest.fixture(scope="module")
def model32(official_checkpoint):
    return load_model(official_checkpoint, dtype=torch.float32)


def test_intermediates_match_reference(model64, parity_fixture):
    inter = parity_fixture["intermediates"]
    src = parity_fixture["source"].double()
    drv = parity_fixture["driving"].double()
    with torch.no_grad():
        enc_s = model64.encode(src)
        enc_d = model64.encode(drv)
        alpha = model64.motion_mlp(enc_d.latent)
        direction = model64.directions(alpha)
        q = model64.directions.basis()
        torch.testing.assert_close(enc_s.latent, inter["latent_source"].double(), rtol=0, atol=1e-4)
        torch.testing.assert_close(enc_d.latent, inter["latent_driving"].double(), rtol=0, atol=1e-4)
        assert [tuple(f.shape) for f in enc_s.features] == [tuple(s) for s in inter["feature_shapes"]]
        torch.testing.assert_close(q, inter["direction_basis_Q"].double(), rtol=0, atol=1e-5)
        torch.testing.assert_close(alpha, inter["alpha_driving"].double(), rtol=0, atol=1e-4)
        torch.testing.assert_close(direction, inter["direction_driving"].double(), rtol=0, atol=1e-4)
        # The official "mlp_pose" is our expression head, "mlp_exp" our pose head.
        torch.testing.assert_close(model64.expression_head(direction), inter["mlp_pose_of_direction"].double(), rtol=0, atol=1e-4)
        torch.testing.assert_close(model64.pose_head(direction), inter["mlp_exp_of_direction"].double(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("stage", list(STAGES))
def test_float64_parity(model64, parity_fixture, stage):
    with torch.no_grad():
        out = model64.edit(parity_fixture["source"].double(), parity_fixture["driving"].double(), STAGES[stage])
    ref = parity_fixture["outputs_float64"][stage]
    assert (out - ref).abs().max().item() <= 1e-7


@pytest.mark.parametrize("stage", list(STAGES))
def test_float32_parity(model32, parity_fixture, stage):
    with torch.no_grad():
        out = model32.edit(parity_fixture["source"], parity_fixture["driving"], STAGES[stage])
    diff = (out - parity_fixture["outputs"][stage]).abs()
    assert diff.mean().item() <= 1e-4
    assert diff.max().item() <= 5e-2
