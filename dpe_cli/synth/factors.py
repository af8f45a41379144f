"""A factor regressor for synthetic faces: image -> head pose and expression labels.

It is trained on renders whose labels are exact, so it can *measure* what an edit did to a
synthetic face (pose error against one reference, expression error against another), and its
expression half is the expression network of the training's expression loss on synthetic data.

One network predicts all factors, normalised to about [-1, 1] (``FACTORS`` and ``SCALES``).
The full regressor is saved with format ``dpe-factor-regressor``; :func:`expression_half`
keeps the shared convolutions and only the expression rows of the head, which is an ordinary
:class:`~dpe_cli.synth.regressor.ExpressionRegressor` that ``--expression-weights`` loads
(:func:`pose_half`, the pose rows, for ``--pose-weights``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dpe_cli.atomic import replacing
from dpe_cli.errors import CheckpointError
from dpe_cli.synth.motion import random_expression, random_pose
from dpe_cli.synth.params import Identity, Scene
from dpe_cli.synth.regressor import ExpressionRegressor, save_expression_regressor
from dpe_cli.synth.render import render

FACTOR_FORMAT = "dpe-factor-regressor"
POSE_FACTORS = ("yaw", "pitch", "roll")
EXPRESSION_FACTORS = ("mouth_open", "smile", "blink", "brow_raise")
FACTORS = POSE_FACTORS + EXPRESSION_FACTORS
# label = offset + scale * normalised: angles span +-limit degrees, expressions their ranges.
SCALES = {"yaw": 30.0, "pitch": 20.0, "roll": 20.0, "mouth_open": 0.5, "smile": 1.0, "blink": 0.5, "brow_raise": 1.0}
OFFSETS = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "mouth_open": 0.5, "smile": 0.0, "blink": 0.5, "brow_raise": 0.0}


def normalise(labels: dict[str, float]) -> np.ndarray:
    """The factor vector (``FACTORS`` order) of one frame's labels, in network units."""
    return np.array([(labels[k] - OFFSETS[k]) / SCALES[k] for k in FACTORS], dtype=np.float32)


def denormalise(values: Tensor | np.ndarray) -> np.ndarray:
    """Network outputs (..., len(FACTORS)) back to label units (degrees, expression ranges)."""
    out = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=np.float64)
    return out * np.array([SCALES[k] for k in FACTORS]) + np.array([OFFSETS[k] for k in FACTORS])


def random_renders(count: int, size: int, seed: int, identities: range) -> Iterator[tuple[np.ndarray, dict[str, float]]]:
    """``count`` crops of random identities (drawn from ``identities``), scenes, poses and
    expressions, with their labels; the factors are independent, so none predicts another."""
    rng = np.random.default_rng([seed, 0xFAC])
    for _ in range(count):
        identity = Identity.from_seed(int(rng.integers(identities.start, identities.stop)))
        scene = Scene.from_seed(int(rng.integers(2**31)))
        pose, expression = random_pose(rng), random_expression(rng)
        image = render(identity, pose, expression, (size, size), "crop", scene).image
        yield image, {**asdict(pose), **asdict(expression)}


def to_tensor(images: np.ndarray) -> Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) RGB -> float (N, 3, H, W) in [-1, 1], as the models take."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(127.5).sub(1.0)
    x = x.unsqueeze(0) if x.dim() == 3 else x
    return x.permute(0, 3, 1, 2).contiguous()


def _degrade(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random blur and noise, so that the regressor also reads a generator's softer output."""
    sigma = float(torch.rand((), generator=generator)) * 1.2
    if sigma > 0.3:
        radius = 2
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k = torch.exp(-(t**2) / (2 * sigma**2))
        k = k / k.sum()
        c = x.size(1)
        x = F.pad(x, (radius,) * 4, mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    noise = float(torch.rand((), generator=generator)) * 0.04
    return x + noise * torch.randn(x.shape, generator=generator)


def train_factor_regressor(images: np.ndarray, targets: np.ndarray, steps: int = 3000, batch_size: int = 64,
                           width: int = 32, lr: float = 2e-3, seed: int = 0,
                           log: Callable[[int, float], None] | None = None) -> ExpressionRegressor:
    """Fit a regressor to (N, H, W, 3) uint8 images and (N, len(FACTORS)) normalised targets
    with L1 (robust to the few renders where a factor is invisible, e.g. brows under hair).
    ``log(step, loss)`` is called every 100 steps."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ExpressionRegressor(dims=len(FACTORS), width=width, input_size=images.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    y_all = torch.from_numpy(targets)
    for step in range(1, steps + 1):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        x = to_tensor(images[idx.numpy()])
        x = _degrade(x, generator)
        loss = F.l1_loss(model(x), y_all[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if log is not None and step % 100 == 0:
            log(step, loss.item())
    return model.eval().requires_grad_(False)


def factor_half(model: ExpressionRegressor, names: tuple[str, ...]) -> ExpressionRegressor:
    """The same convolutions with only the head rows of ``names`` (a loss network)."""
    config = model.config
    half = ExpressionRegressor(dims=len(names), width=config["width"], input_size=config["input_size"])
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    rows = [FACTORS.index(k) for k in names]
    state["head.weight"] = model.head.weight.detach()[rows].clone()
    state["head.bias"] = model.head.bias.detach()[rows].clone()
    half.load_state_dict(state)
    return half.eval().requires_grad_(False)


def expression_half(model: ExpressionRegressor) -> ExpressionRegressor:
    """The expression rows: the expression network of ``dpe train --expression-weights``."""
    return factor_half(model, EXPRESSION_FACTORS)


def pose_half(model: ExpressionRegressor) -> ExpressionRegressor:
    """The yaw, pitch and roll rows: the pose network of ``dpe train --pose-weights``."""
    return factor_half(model, POSE_FACTORS)


def save_factor_regressor(model: ExpressionRegressor, path: str | Path, info: dict | None = None) -> Path:
    """Write the full regressor; metadata: config, factor names, scales, offsets, ``info``."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FACTOR_FORMAT,
        "config": json.dumps(model.config),
        "factors": json.dumps(list(FACTORS)),
        "scales": json.dumps(SCALES),
        "offsets": json.dumps(OFFSETS),
        "info": json.dumps(info or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def save_expression_half(model: ExpressionRegressor, path: str | Path) -> Path:
    """Write :func:`expression_half` so that ``dpe train --expression-weights`` loads it."""
    return save_expression_regressor(expression_half(model), path)


def save_pose_half(model: ExpressionRegressor, path: str | Path) -> Path:
    """Write :func:`pose_half` so that ``dpe train --pose-weights`` loads it."""
    return save_expression_regressor(pose_half(model), path)


def load_factor_regressor(path: str | Path) -> ExpressionRegressor:
    """A frozen full regressor; its outputs go through :func:`denormalise`."""
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"factor regressor {path} not found", "train it with bench/disentanglement.py or use the shipped weights/ file")
    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata() or {})
    if metadata.get("format") != FACTOR_FORMAT or json.loads(metadata.get("factors", "[]")) != list(FACTORS):
        raise CheckpointError(f"{path.name} is not a factor regressor for {', '.join(FACTORS)}", "use the shipped weights/regressors/synthetic-factors-64.safetensors")
    config = json.loads(metadata["config"])
    model = ExpressionRegressor(int(config["dims"]), int(config["width"]), int(config["input_size"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval().requires_grad_(False)


@torch.no_grad()
def predict(model: ExpressionRegressor, images: Tensor, batch_size: int = 256) -> np.ndarray:
    """Factors in label units for images (N, 3, H, W) in [-1, 1]."""
    outs = [model(images[i : i + batch_size].float().clamp(-1, 1)) for i in range(0, len(images), batch_size)]
    return denormalise(torch.cat(outs))
