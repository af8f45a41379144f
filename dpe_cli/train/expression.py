"""Expression encoders for the expression loss (paper Eq. 10): face image -> expression vector.

The loss only needs *some* frozen network whose output changes with the expression and not with
the pose or identity. Two kinds load from ``--expression-weights``:

``regressor`` -- the project's small CNN (:class:`ExpressionRegressor`), trained on synthetic
    faces. File: a ``.safetensors`` written by :func:`save_expression_regressor`; its metadata
    holds ``format = dpe-expression-regressor`` and ``config`` = JSON ``{dims, width,
    input_size}``; tensors ``convs.{0..4}.weight/bias`` and ``head.weight/bias``.

``resnet50`` -- the DECA / EMOCA expression encoder: a ResNet-50 trunk (torchvision layer names)
    with a regression head ``Linear(2048, 1024) -> ReLU -> Linear(1024, N)``, as those projects
    publish it. Expected keys, under any common prefix P (found automatically)::

        P encoder.conv1.weight, P encoder.bn1.{weight,bias,running_mean,running_var}
        P encoder.layer{1..4}.{block}.{conv1,bn1,conv2,bn2,conv3,bn3}.*   (3, 4, 6, 3 blocks)
        P encoder.layer{1..4}.0.downsample.{0,1}.*
        P layers.0.{weight,bias}  (1024 x 2048)      P layers.2.{weight,bias}  (N x 1024)

    DECA's ``deca_model.tar`` keeps it under ``E_flame`` with N = 236 (shape 100, texture 50,
    expression 50, pose 6, camera 3, light 27); the loss then uses the 50 expression
    coefficients and the 3 jaw-pose values, as SPECTRE does. EMOCA's expression encoder
    (``E_expression``, N = 50) is used whole. EMOCA's Lightning checkpoints pickle config
    objects; export the tensors first (see docs/training.md). Any other N is used whole.

Both files are read without running pickled code (safetensors, or ``torch.load`` with
``weights_only=True``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.errors import CheckpointError
from dpe_cli.synth.regressor import REGRESSOR_FORMAT, ExpressionRegressor, save_expression_regressor
from dpe_cli.synth.regressor import resize as _resize

RESNET_FEATURES = 2048
DECA_OUTPUTS = 236
DECA_EXPRESSION = tuple(range(150, 200)) + tuple(range(203, 206))  # expression + jaw pose
DECA_HEAD_POSE = (200, 201, 202)  # global rotation (axis-angle)
RESNET_INPUT = 224
# DECA crops the face box x 1.25 around the landmarks. In dpe's fixed-box crops the face spans
# about 0.53 of the side with its centre 0.57 down (dpe_cli/face/crop.py), so this square of
# the crop (centre, side, as fractions) matches DECA's framing closely enough for a loss.
RESNET_FACE_CENTER = (0.5, 0.58)
RESNET_FACE_SIDE = 0.75


class Bottleneck(nn.Module):
    """ResNet-50 block: 1x1 reduce, 3x3 (stride here), 1x1 expand, identity or projected skip."""

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * 4
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


class ResNet50Trunk(nn.Module):
    """ResNet-50 without its classifier: image -> 2048-d average-pooled feature."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        layers, in_channels = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            stage = [Bottleneck(in_channels, width, stride)] + [Bottleneck(width * 4, width) for _ in range(blocks - 1)]
            layers.append(nn.Sequential(*stage))
            in_channels = width * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = layers

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class ResNetExpressionEncoder(nn.Module):
    """DECA/EMOCA-style encoder: face region at 224 px in [0, 1] -> trunk -> head -> selection."""

    def __init__(self, outputs: int, selection: tuple[int, ...] | None = None) -> None:
        super().__init__()
        self.encoder = ResNet50Trunk()
        self.layers = nn.Sequential(nn.Linear(RESNET_FEATURES, 1024), nn.ReLU(), nn.Linear(1024, outputs))
        self.register_buffer("selection", torch.tensor(selection or range(outputs)), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        size = image.size(-1)
        side = round(RESNET_FACE_SIDE * size)
        x0 = max(0, min(size - side, round(RESNET_FACE_CENTER[0] * size - side / 2)))
        y0 = max(0, min(size - side, round(RESNET_FACE_CENTER[1] * size - side / 2)))
        face = image[:, :, y0 : y0 + side, x0 : x0 + side]
        x = (_resize(face, RESNET_INPUT).clamp(-1, 1) + 1) / 2
        return self.layers(self.encoder(x)).index_select(1, self.selection)


def _tensor_dicts(obj: dict) -> list[dict[str, Tensor]]:
    """The state dicts in a loaded file: the object itself and any nested one (E_flame, ...)."""
    found = []
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        found.append(obj)
    for value in obj.values():
        if isinstance(value, dict):
            found.extend(_tensor_dicts(value))
    return found


def _resnet_state(candidates: list[dict[str, Tensor]]) -> dict[str, Tensor] | None:
    """The trunk-and-head keys under their common prefix; an expression-only encoder wins."""
    marker = "encoder.conv1.weight"
    prefixes = [(state, key[: -len(marker)]) for state in candidates for key in state if key.endswith(marker)]
    if not prefixes:
        return None
    state, prefix = sorted(prefixes, key=lambda sp: "expression" not in sp[1].lower())[0]
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix + "encoder.") or k.startswith(prefix + "layers.")}


def _load_resnet(state: dict[str, Tensor], path: Path, reads: str) -> ResNetExpressionEncoder:
    head = state.get("layers.2.weight")
    if head is None or head.dim() != 2:
        raise CheckpointError(f"{path.name} has a ResNet-50 trunk but no regression head (layers.2.weight)", "see the key layout in docs/training.md")
    outputs = int(head.shape[0])
    if reads == "pose" and outputs != DECA_OUTPUTS:
        raise CheckpointError(f"{path.name} reads no head pose ({outputs} outputs; DECA has {DECA_OUTPUTS})", "give DECA's deca_model.tar or dpe's pose regressor with --pose-weights")
    selection = (DECA_HEAD_POSE if reads == "pose" else DECA_EXPRESSION) if outputs == DECA_OUTPUTS else None
    model = ResNetExpressionEncoder(outputs, selection)
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    unexpected = [k for k in state if k not in expected]
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if wrong or unexpected or missing:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}" for label, keys in (("mis-shaped", wrong), ("unexpected", unexpected), ("missing", missing)) if keys)
        raise CheckpointError(f"{path.name} is not a DECA/EMOCA-style ResNet-50 encoder ({detail})", "see the key layout in docs/training.md")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return model


def _load_regressor(tensors: dict[str, Tensor], metadata: dict[str, str], path: Path) -> ExpressionRegressor:
    try:
        config = json.loads(metadata["config"])
        model = ExpressionRegressor(int(config["dims"]), int(config["width"]), int(config["input_size"]))
        model.load_state_dict(tensors)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path.name} is a damaged expression regressor file ({str(exc)[:120]})", "train or export it again") from exc
    return model


def load_expression_encoder(path: str | Path, reads: str = "expression") -> nn.Module:
    """A frozen expression encoder (eval mode) from a regressor or DECA/EMOCA-style file.

    ``reads="pose"``: the head-pose reader of the same files instead (DECA's global rotation,
    or a dpe regressor of pose factors, used whole) for ``--pose-weights``.
    """
    from dpe_cli.checkpoint import detect_format
    from dpe_cli.checkpoint.official import load_torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"expression weights {path} not found", "give a regressor .safetensors or DECA's deca_model.tar with --expression-weights")
    model: nn.Module
    if detect_format(path) == "safetensors":
        from safetensors.torch import load_file, safe_open

        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
        tensors = load_file(str(path))
        if metadata.get("format") == REGRESSOR_FORMAT:
            model = _load_regressor(tensors, metadata, path)
        else:
            state = _resnet_state([tensors])
            if state is None:
                raise CheckpointError(f"{path.name} holds no expression encoder", "see the key layout in docs/training.md")
            model = _load_resnet(state, path, reads)
    else:
        state = _resnet_state(_tensor_dicts(load_torch(path)))
        if state is None:
            raise CheckpointError(f"{path.name} holds no ResNet-50 expression encoder (no '*encoder.conv1.weight' key)", "see the key layout in docs/training.md")
        model = _load_resnet(state, path, reads)
    return model.eval().requires_grad_(False)
