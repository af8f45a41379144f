"""Flow-warping synthesis network G(latent, features) -> image (the two DPE generators)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpe_cli.model.config import DPEConfig
from dpe_cli.model.layers import StyledConv, ToFlow, ToRGB, layout_of


class SynthesisLevel(nn.Module):
    """One resolution: upsampling conv, conv, flow warp of the encoder features, RGB skip."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int) -> None:
        super().__init__()
        self.up = StyledConv(in_channels, out_channels, style_dim, upsample=True)
        self.conv = StyledConv(out_channels, out_channels, style_dim)
        self.to_flow = ToFlow(out_channels, style_dim)
        self.to_rgb = ToRGB(out_channels)

    def forward(self, x: Tensor, latent: Tensor, features: Tensor, flow: Tensor | None, rgb: Tensor | None, last: bool = False) -> tuple[Tensor | None, Tensor, Tensor]:
        x = self.conv(self.up(x, latent), latent)
        sampled, x, flow, mask = self.to_flow(x, latent, features, flow, last)
        return x, flow, self.to_rgb(sampled, rgb, mask)


class Synthesis(nn.Module):
    """StyleGAN2-like decoder whose RGB comes from warped encoder features, not from x.

    Every modulation receives the same latent (the reference repeats it 14 times). The output
    is raw: no tanh, no clamp.
    """

    def __init__(self, config: DPEConfig) -> None:
        super().__init__()
        c4 = config.channels(4)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv_in = StyledConv(c4, c4, config.style_dim)
        channels = [c4] + [config.channels(res) for res in config.resolutions]
        self.levels = nn.ModuleList(
            SynthesisLevel(cin, cout, config.style_dim) for cin, cout in zip(channels[:-1], channels[1:])
        )

    @torch.no_grad()
    def start_with_identity_warps(self) -> None:
        """Zero the flow heads and the RGB projections of a new generator: every level starts
        with the identity warp, an open mask (1/2) and no RGB. From StyleGAN's random start the
        warps scramble the encoder features, training shuts the masks to stop that (the sigmoid
        then saturates) and the images stay blurry for thousands of steps."""
        for level in self.levels:
            level.to_flow.conv.weight.zero_()
            level.to_flow.bias.zero_()
            level.to_rgb.conv.weight.zero_()

    def forward(self, latent: Tensor, features: list[Tensor]) -> Tensor:
        # The encoder's layout (channels-last for inference) from the first conv on: oneDNN
        # would otherwise reorder every channels-first map it is given, and back.
        start = self.const.expand(latent.size(0), -1, -1, -1).contiguous(memory_format=layout_of(features[0][:1]))
        x = self.conv_in(start, latent)
        flow = rgb = None
        for i, (level, feature) in enumerate(zip(self.levels, features)):
            x, flow, rgb = level(x, latent, feature, flow, rgb, last=i == len(self.levels) - 1)
        return rgb
