"""The small CNN that reads factors from face crops, and its ``dpe-expression-regressor`` file.

It is trained on synthetic renders (:mod:`~dpe_cli.synth.factors`) and used whole or in part
as a loss network by ``dpe train`` (``--expression-weights``, ``--pose-weights``): keeping the
network here lets both use it without ``synth`` depending on ``train``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.atomic import replacing

REGRESSOR_FORMAT = "dpe-expression-regressor"


class ExpressionRegressor(nn.Module):
    """Five stride-2 3x3 convolutions with leaky ReLU, global average pool, linear head."""

    def __init__(self, dims: int = 32, width: int = 32, input_size: int = 128) -> None:
        super().__init__()
        self.config = {"dims": dims, "width": width, "input_size": input_size}
        channels = [3, width, 2 * width, 4 * width, 8 * width, 8 * width]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(channels[:-1], channels[1:]))
        self.head = nn.Linear(channels[-1], dims)
        self.input_size = input_size

    def forward(self, image: Tensor) -> Tensor:
        """``image`` is RGB in [-1, 1], any square size."""
        x = resize(image, self.input_size)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.head(x.mean(dim=(2, 3)))


def resize(image: Tensor, size: int) -> Tensor:
    """Square images (N, C, H, W) to ``size``, antialiased when shrinking; unchanged if already there."""
    if image.size(-1) == size and image.size(-2) == size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=image.size(-1) > size)


def save_expression_regressor(model: ExpressionRegressor, path: str | Path) -> Path:
    """Write a regressor so that ``--expression-weights`` can load it."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": REGRESSOR_FORMAT, "config": json.dumps(model.config)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path
