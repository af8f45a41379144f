"""Exact building blocks of the DPE generator and discriminator.

StyleGAN2-style layers with equalized learning rate. Every formula follows
``shared/docs/dpe-architecture.md`` section 2; the comments say where this code computes the
same value differently (and faster) than the reference: modulation is applied to activations
instead of to per-sample weights, so a batch runs as one ordinary convolution instead of a
grouped one, and FIR filtering is a single depthwise convolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


def fir_kernel(gain: float = 1.0) -> Tensor:
    """The normalised 4x4 binomial kernel ``outer(k, k) / sum * gain`` (k = 1, 3, 3, 1)."""
    k = torch.tensor(BLUR_TAPS, dtype=torch.float64)
    kernel = torch.outer(k, k)
    return (kernel / kernel.sum() * gain).to(torch.float32)


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Zero-insertion upsample, zero pad, FIR filter and subsample, per channel.

    One depthwise convolution. The kernel is flipped so that this is a true convolution,
    as in the reference (our kernels are symmetric, so it is only for correctness).
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = kernel.flip(0, 1).to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=down, groups=channels)


class Blur(nn.Module):
    """FIR filter with a fixed kernel (a non-persistent buffer: it is a constant, not a weight)."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0, up: int = 1) -> None:
        super().__init__()
        self.pad = pad
        self.up = up
        self.register_buffer("kernel", fir_kernel(gain), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.up, pad=self.pad)


class Upsample(Blur):
    """2x upsampling of the RGB and flow skips: pads (2, 1) with the 4K kernel."""

    def __init__(self) -> None:
        super().__init__(pad=(2, 1), gain=4.0, up=2)


class EqualConv2d(nn.Module):
    """Convolution whose N(0, 1) weight is scaled by 1/sqrt(fan_in) at run time. No bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; optional fused leaky ReLU (discriminator only)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = 1.0 / math.sqrt(in_features)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if self.activate:
            return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias, 0.2) * SQRT2
        return F.linear(x, self.weight * self.scale, self.bias)


class FusedLeakyReLU(nn.Module):
    """``leaky_relu(x + b, 0.2) * sqrt(2)`` with a per-channel bias of shape (1, C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias, 0.2) * SQRT2


class ConvLayer(nn.Module):
    """EqualConv2d with optional blur-then-stride-2 downsampling and fused activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False, activate: bool = True) -> None:
        super().__init__()
        if downsample:
            p = 2 + (kernel_size - 1)
            self.blur: nn.Module = Blur(pad=((p + 1) // 2, p // 2))
            self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=2, padding=0)
        else:
            self.blur = nn.Identity()
            self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2)
        self.act: nn.Module = FusedLeakyReLU(out_channels) if activate else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(self.blur(x)))


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsamples) plus a 1x1 skip, averaged with 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution, optionally demodulated and/or 2x upsampling.

    The reference scales the weight per sample (grouped convolution). Here the style scales the
    input channels and the demodulation scales the output channels, which is the same linear
    map, so the whole batch shares one convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, demodulate: bool = True, upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2
        if upsample:
            self.blur = Blur(pad=(1, 1), gain=4.0)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.modulation(style)  # (B, Cin)
        weight = self.weight[0] * self.scale  # (Cout, Cin, k, k)
        x = x * s[:, :, None, None]
        if self.upsample:
            # Transposed conv with the unflipped weight, stride 2, size 2H+1, then the 4K blur.
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum_{c,u,v} (W[o,c,u,v] s[b,c])^2 = (s^2) . (sum_{u,v} W^2)  -> (B, Cout)
            energy = (s * s) @ weight.square().sum(dim=(2, 3)).t()
            out = out * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        if self.upsample:
            out = self.blur(out)
        return out


class StyledConv(nn.Module):
    """Demodulated 3x3 modulated conv (optionally upsampling) with fused leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.act = FusedLeakyReLU(out_channels)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return self.act(self.conv(x, style))


class ToRGB(nn.Module):
    """Unmodulated 1x1 projection to RGB: ``lrelu(conv(x) + b1) * sqrt(2) + b2``, plus the upsampled skip."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_channels, 3, 1)
        self.act = FusedLeakyReLU(3)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = Upsample()

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.act(self.conv(x)) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ToFlow(nn.Module):
    """Predicts a flow field and a mask, and warps the encoder features with them.

    Returns ``(warped, x_next, logits)``: the masked warped features (for ToRGB), the features
    for the next conv (warped where the mask is on, ``x`` elsewhere), and the raw 3-channel
    logits, which are accumulated across resolutions before tanh/sigmoid.
    """

    def __init__(self, in_channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = Upsample()
        self._grid_cache: dict[tuple, Tensor] = {}

    def base_grid(self, size: int, like: Tensor) -> Tensor:
        """``linspace(-1, 1)`` grid (x first): built in float64 and rounded to float32 as the
        reference does (also in float64 runs, where this rounding shows at 1e-4), then cast."""
        key = (size, like.dtype, like.device)
        grid = self._grid_cache.get(key)
        if grid is None:
            g = torch.linspace(-1.0, 1.0, size, dtype=torch.float64)
            gy, gx = torch.meshgrid(g, g, indexing="ij")
            grid = torch.stack((gx, gy), dim=-1)[None].float().to(dtype=like.dtype, device=like.device)
            self._grid_cache[key] = grid
        return grid

    def forward(self, x: Tensor, style: Tensor, features: Tensor, skip: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        logits = self.conv(x, style) + self.bias
        if skip is not None:
            logits = logits + self.upsample(skip)
        offset = torch.tanh(logits[:, :2]).permute(0, 2, 3, 1)
        grid = self.base_grid(x.size(2), x) + offset
        mask = torch.sigmoid(logits[:, 2:3])
        warped = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False) * mask
        return warped, warped + x * (1.0 - mask), logits
