"""The shipped default model and factor regressors: they load, fit the size limit, and do
their job (the demo that runs on them is in cli/test_examples.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_cli.checkpoint import find_in_directory, read_checkpoint
from dpe_cli.synth.factors import (
    EXPRESSION_FACTORS,
    FACTORS,
    POSE_FACTORS,
    expression_half,
    pose_half,
    load_factor_regressor,
    predict,
    random_renders,
    to_tensor,
)
from dpe_cli.train.expression import ExpressionRegressor, load_expression_encoder
from helpers import ROOT


WEIGHTS = ROOT / "weights"


DEFAULT_MODEL = WEIGHTS / "dpe-synthetic-64.safetensors"


FACTOR_REGRESSOR = WEIGHTS / "regressors" / "synthetic-factors-64.safetensors"


EXPRESSION_REGRESSOR = WEIGHTS / "regressors" / "synthetic-expression-64.safetensors"


POSE_REGRESSOR = WEIGHTS / "regressors" / "synthetic-pose-64.safetensors"


JUDGE = WEIGHTS / "regressors" / "synthetic-judge-64.safetensors"


MAX_BYTES = 20 * 1024 * 1024


def test_default_model_loads_with_its_documented_config() -> None:
    assert DEFAULT_MODEL.stat().st_size <= MAX_BYTES
    model, info = read_checkpoint(DEFAULT_MODEL)
    assert (info.config.size, info.config.width, info.config.style_dim, info.config.motion_dim) == (64, 0.125, 256, 20)
    card = DEFAULT_MODEL.with_suffix(".md").read_text()
    assert "--size 64 --width 0.125 --style-dim 256" in card


def test_weights_folder_offers_the_default_model() -> None:
    """Without official weights, ./weights/ lookup finds the shipped model, not a regressor."""
    if any((WEIGHTS / name).exists() for name in ("dpe.safetensors", "dpe.pt")):
        pytest.skip("official weights are installed, which rightly win the lookup")
    assert find_in_directory(WEIGHTS) == DEFAULT_MODEL


@pytest.mark.parametrize("path", [FACTOR_REGRESSOR, JUDGE], ids=["loss-regressor", "judge"])
def test_regressors_read_labels_better_than_chance(path: Path) -> None:
    regressor = load_factor_regressor(path)
    images, labels = zip(*random_renders(24, 64, seed=7, identities=range(200_000, 200_100)))
    truth = np.array([[lab[k] for k in FACTORS] for lab in labels])
    read = predict(regressor, to_tensor(np.stack(images)))
    error = np.abs(read - truth).mean(0)
    chance = np.abs(truth - truth.mean(0)).mean(0)  # the best constant guess, roughly
    for name in POSE_FACTORS + ("mouth_open",):  # smile is hard to read at 64 px (model card)
        k = FACTORS.index(name)
        assert error[k] < 0.6 * chance[k], (name, error[k], chance[k])


def test_judge_is_independent_of_the_training_loss() -> None:
    """The benchmark's judge was trained on other identities with another seed, so the
    expression loss of training (the loss regressor's half) cannot simply please it."""
    from safetensors import safe_open

    def info(path: Path) -> dict:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads(fh.metadata()["info"])

    judge_ids, loss_ids = info(JUDGE)["identity_seeds"], info(FACTOR_REGRESSOR)["identity_seeds"]
    assert judge_ids[0] >= loss_ids[1] or judge_ids[1] <= loss_ids[0]  # disjoint identities
    assert info(JUDGE)["seed"] != info(FACTOR_REGRESSOR)["seed"]
    judge, loss = load_factor_regressor(JUDGE), load_factor_regressor(FACTOR_REGRESSOR)
    assert not torch.equal(next(judge.parameters()), next(loss.parameters()))


def test_loss_halves_are_the_loss_regressors_rows() -> None:
    regressor = load_factor_regressor(FACTOR_REGRESSOR)
    images = [image for image, _ in random_renders(4, 64, seed=7, identities=range(200_000, 200_100))]
    # The shipped expression half is exactly the expression rows of the full regressor.
    loss_net = load_expression_encoder(EXPRESSION_REGRESSOR)
    assert isinstance(loss_net, ExpressionRegressor)
    rows = [FACTORS.index(k) for k in EXPRESSION_FACTORS]
    x = to_tensor(np.stack(images[:4]))
    assert np.allclose(loss_net(x).numpy(), regressor(x)[:, rows].numpy(), atol=1e-5)
    assert np.allclose(expression_half(regressor)(x).numpy(), loss_net(x).numpy(), atol=1e-6)
    # The same for the pose half (dpe train --pose-weights).
    pose_net = load_expression_encoder(POSE_REGRESSOR, reads="pose")
    rows = [FACTORS.index(k) for k in POSE_FACTORS]
    assert np.allclose(pose_net(x).numpy(), regressor(x)[:, rows].numpy(), atol=1e-5)
    assert np.allclose(pose_half(regressor)(x).numpy(), pose_net(x).numpy(), atol=1e-6)


def test_default_model_edits_expression_and_pose_apart() -> None:
    """What the model card promises, on identities no training saw, read by the judge:
    expression edits move the mouth most of the way to the driver's while keeping the head
    pose; pose edits move the head toward the driver's while keeping the mouth."""
    from dpe_cli.checkpoint import load_model
    from dpe_cli.synth import Identity, Scene, render
    from dpe_cli.synth.motion import random_expression, random_pose

    rng = np.random.default_rng(11)
    images, labels = [], []
    for i in range(24):
        identity, scene = Identity.from_seed(200_200 + i), Scene.from_seed(int(rng.integers(2**31)))
        for _ in range(2):
            pose, expression = random_pose(rng), random_expression(rng)
            images.append(render(identity, pose, expression, (64, 64), "crop", scene).image)
            labels.append([getattr(pose, k) for k in POSE_FACTORS] + [getattr(expression, k) for k in EXPRESSION_FACTORS])
    x, truth = to_tensor(np.stack(images)), np.array(labels)
    source, driver, s_true, d_true = x[0::2], x[1::2], truth[0::2], truth[1::2]
    model, judge = load_model(DEFAULT_MODEL), load_factor_regressor(JUDGE)
    mouth, angles = FACTORS.index("mouth_open"), [FACTORS.index(k) for k in POSE_FACTORS]
    with torch.no_grad():
        unedited = predict(judge, source)
        expression_edit = predict(judge, model.edit(source, driver, "expression"))
        pose_edit = predict(judge, model.edit(source, driver, "pose"))

    def mouth_error(read: np.ndarray, true: np.ndarray) -> float:
        return float(np.abs(read[:, mouth] - true[:, mouth]).mean())

    def pose_error(read: np.ndarray, true: np.ndarray) -> float:
        return float(np.abs(read[:, angles] - true[:, angles]).mean())

    assert mouth_error(expression_edit, d_true) < 0.6 * mouth_error(unedited, d_true)
    assert pose_error(expression_edit, s_true) < pose_error(unedited, s_true) + 1.0
    assert pose_error(pose_edit, d_true) < 0.8 * pose_error(unedited, d_true)
    assert mouth_error(pose_edit, s_true) < mouth_error(unedited, s_true) + 0.05
