"""Does training disentangle pose from expression? Measured on synthetic faces with known labels.

Each measured pair is a source S and a driver D of one held-out identity and scene with
independent random pose and expression (``render_pair``-style, exact labels). For every model:

- expression edit e(S, D): pose error against S (should stay), expression error against D;
- pose edit p(S, D): pose error against D, expression error against S (should stay);
- full reenactment ("both"): pose and expression errors against D.

Baselines without a model: the unedited source and the driver itself, read like the outputs.
Every image is read by the judge (a factor regressor kept out of training) and compared with
the *true* labels of its references, so an unedited image against its own labels shows the
regressor's error (the floor of every number) and against the other image's labels the gap an
edit has to close. Pose error: mean |yaw|, |pitch|, |roll| difference in degrees. Expression
error: mean absolute difference of mouth_open, smile, blink and brow_raise, each on a range of
width 1 (smile and brow_raise span [-1, 1] and are halved), i.e. 0.33 is the error of a random
guess.

:func:`probe` asks how much of each factor the motion vector carries at all, and
:func:`train_regressor` makes the regressors (the judge, and the loss networks of ``dpe train``).
``bench/disentanglement.py`` is the command line over these functions.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dpe_cli.errors import CheckpointError
from dpe_cli.synth.factors import (
    EXPRESSION_FACTORS,
    FACTORS,
    POSE_FACTORS,
    denormalise,
    load_factor_regressor,
    normalise,
    predict,
    random_renders,
    save_expression_half,
    save_pose_half,
    to_tensor,
    train_factor_regressor,
)
from dpe_cli.synth.motion import random_expression, random_pose
from dpe_cli.synth.params import Identity, Scene
from dpe_cli.synth.regressor import ExpressionRegressor
from dpe_cli.synth.render import render

if TYPE_CHECKING:
    from dpe_cli.engine import Engine

HELD_OUT = 100_000  # first held-out identity seed; training data uses seeds far below
REGRESSOR_IDENTITIES = range(0, 10_000)
# Expression factors on a common range of width 1 (smile, brow_raise span [-1, 1]).
EXPRESSION_RANGE = np.array([1.0, 2.0, 1.0, 2.0])
MODES = {"expression": ("source", "driver"), "pose": ("driver", "source"), "both": ("driver", "driver")}


class ModelSizeError(CheckpointError):
    """A model whose crops differ in size from the judge's, so its edits cannot be read."""


def train_regressor(renders: int, size: int, steps: int, width: int, seed: int, identities: range, validation: int,
                    log: Callable[[str], None] | None = None) -> tuple[ExpressionRegressor, dict]:
    """Render ``renders`` labelled crops of ``identities``, fit a factor regressor on all but the
    last ``validation`` and measure it on those; returns the regressor and its record (the
    file's ``info``). ``log`` gets a line after rendering and every 100 steps."""
    say = log or (lambda line: None)
    start = time.time()
    images, targets = [], []
    for image, labels in random_renders(renders, size, seed, identities):
        images.append(image)
        targets.append(normalise(labels))
    x, y = np.stack(images), np.stack(targets)
    say(f"rendered {len(x)} crops at {size} px in {time.time() - start:.0f} s")
    split = len(x) - validation
    model = train_factor_regressor(
        x[:split], y[:split], steps=steps, width=width, seed=seed,
        log=lambda step, loss: say(f"step {step} L1 {loss:.4f}"),
    )  # fmt: skip
    errors = np.abs(predict(model, to_tensor(x[split:])) - denormalise(y[split:]))
    info = {
        "renders": int(split), "validation": int(validation), "size": size, "steps": steps,
        "identity_seeds": [identities.start, identities.stop], "seed": seed,
        "wall_seconds": round(time.time() - start),
        "validation_mae": {k: round(float(v), 4) for k, v in zip(FACTORS, errors.mean(0))},
    }  # fmt: skip
    return model, info


def write_halves(model: ExpressionRegressor, expression_out: Path | None, pose_out: Path | None) -> list[Path]:
    """The loss networks of ``dpe train``: expression and pose rows of a factor regressor, each
    written unless its path is None; returns the paths written."""
    written = []
    for path, save in ((expression_out, save_expression_half), (pose_out, save_pose_half)):
        if path is not None:
            save(model, path)
            written.append(path)
    return written


def pose_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute yaw/pitch/roll difference (degrees), per row."""
    idx = [FACTORS.index(k) for k in POSE_FACTORS]
    return np.abs(a[:, idx] - b[:, idx]).mean(1)


def expression_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute expression difference on unit ranges, per row."""
    idx = [FACTORS.index(k) for k in EXPRESSION_FACTORS]
    return (np.abs(a[:, idx] - b[:, idx]) / EXPRESSION_RANGE).mean(1)


def held_out_pairs(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Sources and drivers: one held-out identity and scene per pair, independent pose and
    expression for each image. Returns images in [-1, 1] and their true factors."""
    rng = np.random.default_rng([seed, 0xBE4C])
    sources, drivers, s_labels, d_labels = [], [], [], []
    for i in range(count):
        identity = Identity.from_seed(HELD_OUT + i)
        scene = Scene.from_seed(int(rng.integers(2**31)))
        for images, labels in ((sources, s_labels), (drivers, d_labels)):
            pose, expression = random_pose(rng), random_expression(rng)
            images.append(render(identity, pose, expression, (size, size), "crop", scene).image)
            labels.append([getattr(pose, k) for k in POSE_FACTORS] + [getattr(expression, k) for k in EXPRESSION_FACTORS])
    return to_tensor(np.stack(sources)), to_tensor(np.stack(drivers)), np.array(s_labels), np.array(d_labels)


def _row(name: str, predicted: np.ndarray, pose_ref: np.ndarray, expression_ref: np.ndarray) -> dict:
    per_factor = np.abs(predicted - np.where(np.isin(FACTORS, POSE_FACTORS), pose_ref, expression_ref)).mean(0)
    return {
        "name": name,
        "pose_error_deg": round(float(pose_error(predicted, pose_ref).mean()), 2),
        "expression_error": round(float(expression_error(predicted, expression_ref).mean()), 3),
        "per_factor": {k: round(float(v), 3) for k, v in zip(FACTORS, per_factor)},
    }


def _engine(path: str | Path) -> Engine:
    """A model on the CPU in the default memory layout, so that the published figures hold."""
    from dpe_cli.engine import Engine

    return Engine.load(path, "cpu", "fp32", channels_last=False)  # published figures: float32


def _edits(engine: Engine, source: torch.Tensor, driver: torch.Tensor, mode: str, batch: int = 32) -> torch.Tensor:
    """Each source edited by its driver, clamped to [-1, 1]."""
    chunks = []
    for i in range(0, len(source), batch):
        motion = engine.motion(driver[i : i + batch])
        chunks.append(engine.drive(engine.encode(source[i : i + batch]), motion, mode).clamp(-1, 1))
    return torch.cat(chunks)


@torch.no_grad()
def measure(regressor_path: Path, models: Sequence[tuple[str, str | Path]], pairs: int, seed: int) -> dict:
    """Edits of every model in ``models`` ((name, weights) pairs) on ``pairs`` held-out pairs, read by
    the regressor at ``regressor_path``: the benchmark's record, rows by edit (see :func:`table`).
    Raises :class:`ModelSizeError` for a model of another size than the regressor's."""
    regressor = load_factor_regressor(regressor_path)
    size = int(regressor.config["input_size"])
    source, driver, s_true, d_true = held_out_pairs(pairs, size, seed)
    truth = {"source": s_true, "driver": d_true}
    s_read, d_read = predict(regressor, source), predict(regressor, driver)
    # Every output is read by the regressor and compared with the true labels, so the rows
    # of the unedited images give the floor (the regressor's own error) and the gap.
    rows = {mode: [_row("unedited source", s_read, truth[p], truth[e]), _row("driver itself", d_read, truth[p], truth[e])]
            for mode, (p, e) in MODES.items()}
    rows["self"] = [_row("unedited source", s_read, s_true, s_true)]
    for name, path in models:
        engine = _engine(path)
        if engine.size != size:
            raise ModelSizeError(f"{path}: model size {engine.size} differs from the regressor's {size}")
        for mode, (p, e) in MODES.items():
            rows[mode].append(_row(name, predict(regressor, _edits(engine, source, driver, mode)), truth[p], truth[e]))
        rows["self"].append(_row(name, predict(regressor, _edits(engine, source, source, "both")), s_true, s_true))
    return {
        "pairs": pairs, "size": size, "seed": seed, "held_out_identities": [HELD_OUT, HELD_OUT + pairs],
        "regressor": str(regressor_path),
        "rows": rows, "torch": torch.__version__, "machine": platform.machine(),
    }  # fmt: skip


def table(result: dict) -> str:
    """Markdown: one row per (edit, model), errors against the references that edit should match."""
    refs = {**MODES, "self": ("source", "source")}
    title = {"expression": "expression edit e(S, D)", "pose": "pose edit p(S, D)", "both": "full reenactment", "self": "self-reconstruction (S driven by S)"}
    lines = ["| edit | model | pose error (deg) vs | expression error vs | mouth-open error |", "| --- | --- | --- | --- | --- |"]
    for mode, entries in result["rows"].items():
        pose_ref, expression_ref = refs[mode]
        for r in entries:
            mouth = r["per_factor"]["mouth_open"]
            lines.append(f"| {title[mode]} | {r['name']} | {r['pose_error_deg']:.2f} ({pose_ref}) | {r['expression_error']:.3f} ({expression_ref}) | {mouth:.3f} |")
    return "\n".join(lines)


def ridge_r2(features: np.ndarray, targets: np.ndarray, train: int, strength: float = 30.0) -> np.ndarray:
    """R^2 on rows ``train:`` of a ridge regression fitted on rows ``:train`` (standardised
    features), one value per target column."""
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    x = (features - mean) / std
    a = x[:train]
    coef = np.linalg.solve(a.T @ a + strength * np.eye(a.shape[1]), a.T @ (targets[:train] - targets[:train].mean(0)))
    predicted = x[train:] @ coef + targets[:train].mean(0)
    residual = ((predicted - targets[train:]) ** 2).mean(0)
    return 1 - residual / targets[train:].var(0)


def probe(models: Sequence[tuple[str, str | Path]], pairs: int, size: int, seed: int) -> Iterator[tuple[str, np.ndarray]]:
    """How much of each factor's change the motion vector d = Dir(A(w)) carries: (name, R^2 per
    factor in ``FACTORS`` order) for each model, as each is done.

    For pairs of one held-out identity, d(D) - d(S) is regressed (ridge, fitted on 3/4 of the
    pairs) onto the true change of each factor; R^2 is taken on the other 1/4. Editing can
    only transfer what d carries, so a factor near 0 here cannot move in any edit.
    """
    source, driver, s_true, d_true = held_out_pairs(pairs, size, seed)
    for name, path in models:
        engine = _engine(path)
        change = engine.motion(driver) - engine.motion(source)
        yield name, ridge_r2(change.numpy().astype(np.float64), d_true - s_true, pairs * 3 // 4)
