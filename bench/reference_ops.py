"""The reference implementation's way of computing, as an in-run baseline for benchmarks.

Same mathematics as ``dpe_cli.model.layers``, with the operation structure of the released
code: weights are scaled on every call; modulated convolutions build per-sample weights and run as grouped convolutions
(groups = batch); FIR filters run one channel at a time (batch and channel axes folded
together, a single-channel kernel, explicit zero insertion and padding); every activation is
a separate bias add, leaky ReLU and gain; residual sums are divided afterwards; the flow
warp is ``grid_sample`` and masks the wide features; the latent is a 4x4 convolution.
``reference_ops()`` swaps these in for the duration of a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from dpe_cli.model import layers
from dpe_cli.model.encoder import Encoder
from dpe_cli.model.layers import SQRT2


def upfirdn2d_per_channel(x: Tensor, kernel: Tensor, up: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    batch, channels, height, width = x.shape
    x = x.reshape(-1, 1, height, width)
    if up > 1:
        x = x.reshape(-1, 1, height, 1, width, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1)).reshape(-1, 1, height * up, width * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    x = F.conv2d(x, kernel.flip(0, 1).to(x.dtype)[None, None])
    return x.reshape(batch, channels, x.shape[2], x.shape[3])


def fused_leaky_relu(x: Tensor, bias: Tensor) -> Tensor:
    return F.leaky_relu(x + bias.reshape(1, -1, 1, 1), 0.2) * SQRT2


def blur(self: layers.Blur, x: Tensor, bias: Tensor | None = None) -> Tensor:
    out = upfirdn2d_per_channel(x, self.kernel, pad=(self.pad, self.pad))[..., :: self.stride, :: self.stride]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def upsample(self: layers.Upsample, x: Tensor) -> Tensor:
    return upfirdn2d_per_channel(x, self.kernel, up=2, pad=(2, 1))


def conv_layer(self: layers.ConvLayer, x: Tensor, gain: float = 1.0) -> Tensor:
    out = self.conv(self.blur(x))
    if self.act is not None:
        out = fused_leaky_relu(out, self.act.bias)
    return out * gain if gain != 1.0 else out


def res_block(self: layers.ResBlock, x: Tensor) -> Tensor:
    return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


def modulated_conv_grouped(self: layers.ModulatedConv2d, x: Tensor, style: Tensor, bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
    batch, in_channels, height, width = x.shape
    s = self.modulation(style)
    weight = self.scale * self.weight * s[:, None, :, None, None]  # (B, Cout, Cin, k, k)
    if self.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4)) + 1e-8)[:, :, None, None, None]
    out_channels, k = weight.shape[1], weight.shape[-1]
    x = x.reshape(1, batch * in_channels, height, width)
    if self.upsample:
        weight = weight.transpose(1, 2).reshape(batch * in_channels, out_channels, k, k)
        out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
        out = self.blur(out.reshape(batch, out_channels, out.shape[2], out.shape[3]))
    else:
        out = F.conv2d(x, weight.reshape(batch * out_channels, in_channels, k, k), padding=self.padding, groups=batch)
        out = out.reshape(batch, out_channels, height, width)
    if bias is not None:  # callers pass the activation's folded bias: unfold it
        out = out + bias.reshape(1, -1, 1, 1) / gain
    return out


def styled_conv(self: layers.StyledConv, x: Tensor, style: Tensor) -> Tensor:
    return fused_leaky_relu(self.conv(x, style), self.act.bias)


def to_rgb(self: layers.ToRGB, x: Tensor, skip: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    if mask is not None:  # the reference masks the wide warped features
        x = x * mask
    out = fused_leaky_relu(self.conv(x), self.act.bias) + self.bias
    return out if skip is None else out + self.upsample(skip)


def equal_conv(self: layers.EqualConv2d, x: Tensor, bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
    return F.conv2d(x, self.weight * (self.scale * gain), bias, stride=self.stride, padding=self.padding)


def to_flow(self: layers.ToFlow, x: Tensor, style: Tensor, features: Tensor, skip: Tensor | None = None, last: bool = False) -> tuple[Tensor, Tensor, Tensor, None]:
    logits = self.conv(x, style) + self.bias
    if skip is not None:
        logits = logits + self.upsample(skip)
    grid = self.base_grid(x.size(2), logits) + torch.tanh(logits[:, :2]).permute(0, 2, 3, 1)
    mask = torch.sigmoid(logits[:, 2:3])
    warped = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
    return warped, warped + x * (1 - mask), logits, None  # ToRGB gets the masked features


def latent(self: Encoder, x: Tensor) -> Tensor:
    return self.to_latent(x).flatten(1)


PATCHES = {
    layers.EqualConv2d: equal_conv,
    layers.ToFlow: to_flow,
    layers.Blur: blur,
    layers.Upsample: upsample,
    layers.ConvLayer: conv_layer,
    layers.ResBlock: res_block,
    layers.ModulatedConv2d: modulated_conv_grouped,
    layers.StyledConv: styled_conv,
    layers.ToRGB: to_rgb,
}
METHODS = {(Encoder, "latent"): latent}


@contextmanager
def reference_ops() -> Iterator[None]:
    """Run the model with the reference's operation structure inside this block."""
    patches = {(cls, "forward"): forward for cls, forward in PATCHES.items()} | METHODS
    saved = {key: getattr(*key) for key in patches}
    for (cls, name), method in patches.items():
        setattr(cls, name, method)
    try:
        yield
    finally:
        for (cls, name), method in saved.items():
            setattr(cls, name, method)
