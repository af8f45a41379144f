"""The rearranged fast layers compute the specification's functions exactly (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dpe_cli.model.layers import Blur, ConvLayer, ModulatedConv2d, ResBlock, Upsample



@pytest.fixture(autouse=True)
def float64_by_default():
    """Exactness is judged in float64; restore the default for the other test modules."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def fir_1d(x: torch.Tensor, taps: list[float], offsets: list[int], axis: int) -> torch.Tensor:
    """y[m] = sum_t taps[t] * x[m + offsets[t]] (zero outside), along ``axis``."""
    out = torch.zeros_like(x)
    n = x.shape[axis]
    for tap, off in zip(taps, offsets):
        src = torch.zeros_like(x)
        lo, hi = max(0, -off), min(n, n - off)
        src.narrow(axis, lo, hi - lo).copy_(x.narrow(axis, lo + off, hi - lo))
        out += tap * src
    return out


def test_blur_matches_the_spec_formula():
    x = torch.randn(2, 3, 9, 9)
    # Blur before a stride-2 3x3 conv: pads (2, 2), size H+1: y[m] = (x[m-2] + 3x[m-1] + 3x[m] + x[m+1]) / 8
    padded = F.pad(x, (0, 1, 0, 1))
    expected = fir_1d(fir_1d(padded, [1 / 8, 3 / 8, 3 / 8, 1 / 8], [-2, -1, 0, 1], 2), [1 / 8, 3 / 8, 3 / 8, 1 / 8], [-2, -1, 0, 1], 3)
    torch.testing.assert_close(Blur(pad=2).double()(x), expected, rtol=0, atol=1e-12)


def test_upsample_matches_the_spec_formula():
    x = torch.randn(1, 2, 5, 5)
    out = Upsample().double()(x)
    assert out.shape == (1, 2, 10, 10)
    # y[2i] = (x[i-1] + 3x[i]) / 4, y[2i+1] = (3x[i] + x[i+1]) / 4, per axis
    rows = torch.zeros(1, 2, 10, 5)
    rows[:, :, 0::2] = fir_1d(x, [1 / 4, 3 / 4], [-1, 0], 2)
    rows[:, :, 1::2] = fir_1d(x, [3 / 4, 1 / 4], [0, 1], 2)
    expected = torch.zeros(1, 2, 10, 10)
    expected[..., 0::2] = fir_1d(rows, [1 / 4, 3 / 4], [-1, 0], 3)
    expected[..., 1::2] = fir_1d(rows, [3 / 4, 1 / 4], [0, 1], 3)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def modulated_reference(conv: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The specification's per-sample definition (section 2.5), one sample at a time."""
    s = conv.modulation(style)
    outs = []
    for b in range(x.size(0)):
        w = conv.weight[0] * s[b][None, :, None, None] / math.sqrt(conv.weight.shape[2] * conv.weight.shape[3] ** 2)
        if conv.demodulate:
            w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        if conv.upsample:
            t = F.conv_transpose2d(x[b : b + 1], w.transpose(0, 1), stride=2)
            outs.append(conv.blur(t))
        else:
            outs.append(F.conv2d(x[b : b + 1], w, padding=conv.padding))
    return torch.cat(outs)


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("batch, size", [(1, 4), (3, 4), (3, 16)])  # both code paths: weights vs activations
def test_modulated_conv_matches_per_sample_definition(upsample, demodulate, batch, size):
    torch.manual_seed(0)
    conv = ModulatedConv2d(8, 6, 3, style_dim=5, demodulate=demodulate, upsample=upsample).double()
    with torch.no_grad():
        conv.modulation.bias.add_(torch.randn(8) * 0.3)
    x, style = torch.randn(batch, 8, size, size), torch.randn(batch, 5)
    bias = torch.randn(6)
    expected = modulated_reference(conv, x, style) * 1.7 + bias[None, :, None, None]
    torch.testing.assert_close(conv(x, style, bias, gain=1.7), expected, rtol=0, atol=1e-10)


def test_folded_activation_and_residual_gain():
    torch.manual_seed(0)
    block = ResBlock(4, 6).double()
    for p in block.parameters():
        p.data.normal_()
    x = torch.randn(2, 4, 8, 8)

    def layer(conv: ConvLayer, inp: torch.Tensor) -> torch.Tensor:
        out = conv.conv(conv.blur(inp))
        return out if conv.act is None else F.leaky_relu(out + conv.act.bias, 0.2) * math.sqrt(2)

    expected = (layer(block.conv2, layer(block.conv1, x)) + layer(block.skip, x)) / math.sqrt(2)
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-10)
