"""StyleGAN2 discriminator (needed for training only)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpe_cli.model.config import DPEConfig
from dpe_cli.model.layers import ConvLayer, EqualLinear, ResBlock


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Append one channel: the std over groups of samples, averaged over (C, H, W)."""
    batch, channels, height, width = x.shape
    group = min(batch, group_size)
    if batch % group:
        group = 1
    y = x.reshape(group, batch // group, 1, channels, height, width)
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(2, 3, 4))  # (B/G, 1)
    y = y.reshape(batch // group, 1, 1, 1).repeat(group, 1, height, width)
    return torch.cat((x, y), dim=1)


class Discriminator(nn.Module):
    """Residual discriminator down to 4x4, minibatch stddev, conv and two linear layers."""

    def __init__(self, config: DPEConfig) -> None:
        super().__init__()
        resolutions = config.resolutions[::-1] + [4]
        c4 = config.channels(4)
        self.stem = ConvLayer(3, config.channels(config.size), 1)
        self.blocks = nn.ModuleList(ResBlock(config.channels(r), config.channels(r // 2)) for r in resolutions[:-1])
        self.final_conv = ConvLayer(c4 + 1, c4, 3)
        self.hidden = EqualLinear(c4 * 16, c4, activate=True)
        self.score = EqualLinear(c4, 1)

    def forward(self, image: Tensor) -> Tensor:
        x = self.stem(image)
        for block in self.blocks:
            x = block(x)
        x = self.final_conv(minibatch_stddev(x))
        return self.score(self.hidden(x.flatten(1)))
