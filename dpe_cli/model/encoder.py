"""Appearance encoder E: image -> (latent, multi-scale feature maps)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.model.config import DPEConfig
from dpe_cli.model.layers import ConvLayer, EqualConv2d, ResBlock, compute_dtype


class Encoder(nn.Module):
    """A 1x1 stem, ResBlocks down to 4x4, and a 4x4 conv to the latent.

    The feature maps handed to the generators are the stem's and every block's output
    except the 4x4 one, lowest resolution first (8, 16, ..., size).
    """

    def __init__(self, config: DPEConfig) -> None:
        super().__init__()
        resolutions = config.resolutions[::-1] + [4]  # size, size/2, ..., 8, 4
        self.stem = ConvLayer(3, config.channels(config.size), 1)
        self.blocks = nn.ModuleList(
            ResBlock(config.channels(res), config.channels(res // 2)) for res in resolutions[:-1]
        )
        self.to_latent = EqualConv2d(config.channels(4), config.style_dim, 4)

    def forward(self, image: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = self.stem(image)
        features = [x]
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.latent(x), features[-2::-1]

    def latent(self, x: Tensor) -> Tensor:
        """The 4x4 convolution over the 4x4 map without padding: a dense layer, run as one
        (oneDNN's convolution of this shape reaches 3 GFLOP/s; the matrix product 50 times more)."""
        weight = self.to_latent.scaled_weight(1.0, compute_dtype(x.device, self.to_latent.weight.dtype), torch.contiguous_format)
        return F.linear(x.flatten(1), weight.flatten(1))
