"""The rearranged fast layers compute the specification's functions exactly (float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dpe_cli.model.layers import Blur, ConvLayer, EqualConv2d, ModulatedConv2d, ResBlock, ToFlow, ToRGB, Upsample, bilinear_warp


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


@pytest.mark.parametrize("layout", ["channels_last", "channels_first", "expanded"])
def test_bilinear_warp_equals_grid_sample(layout):
    """The inference warp samples exactly what grid_sample does, also outside the map (zeros),
    at integer positions, and from one map expanded over a batch."""
    torch.manual_seed(0)
    features = torch.randn(1 if layout == "expanded" else 3, 5, 7, 9)
    if layout == "channels_last":
        features = features.contiguous(memory_format=torch.channels_last)
    if layout == "expanded":
        features = features.expand(3, -1, -1, -1)
    grid = torch.rand(3, 6, 8, 2) * 2.6 - 1.3
    grid[0, 0, 0] = torch.tensor([-1 + 1 / 9, -1 + 1 / 7])  # a pixel centre: one tap
    expected = F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(bilinear_warp(features, grid), expected, rtol=0, atol=1e-12)


def test_flow_and_rgb_heads_give_the_training_path_outside_training():
    """ToFlow's gather warp (no gradients) and its grid_sample path (training) agree, and the
    mask applied to ToRGB's projection equals the reference's masked input."""
    torch.manual_seed(0)
    flow, rgb = ToFlow(6, 5), ToRGB(6)
    for p in [*flow.parameters(), *rgb.parameters()]:
        p.data.normal_(0, 0.5)
    x, style, features, skip = torch.randn(2, 6, 8, 8), torch.randn(2, 5), torch.randn(2, 6, 8, 8), torch.randn(2, 3, 4, 4)
    trained = flow(x, style, features, skip)  # gradients on: grid_sample
    with torch.no_grad():
        inferred = flow(x, style, features, skip)
        for a, b in zip(trained, inferred):
            torch.testing.assert_close(a.detach(), b, rtol=0, atol=1e-12)
        sampled, x_next, _, mask = inferred
        torch.testing.assert_close(x_next, sampled * mask + x * (1 - mask), rtol=0, atol=1e-12)
        conv = F.conv2d(sampled * mask, rgb.conv.weight * rgb.conv.scale)
        expected = F.leaky_relu(conv + rgb.act.bias, 0.2) * math.sqrt(2) + rgb.bias
        torch.testing.assert_close(rgb(sampled, None, mask), expected, rtol=0, atol=1e-12)


def test_kept_weights_follow_a_changed_weight():
    """Outside training the scaled (and cast) weights are made once; changing the weights in
    place (an optimiser step, load_state_dict) or converting the module makes them again."""
    torch.manual_seed(0)
    conv, modulated = EqualConv2d(4, 3, 3, padding=1), ModulatedConv2d(4, 3, 3, style_dim=2, demodulate=False)
    x, style = torch.randn(2, 4, 4, 4), torch.randn(2, 2)  # batch 2, 3x3x3 taps > 4x4 pixels: the fixed-weight path
    with torch.no_grad():
        before, modulated_before = conv(x), modulated(x, style)
        conv.weight.mul_(2)
        modulated.load_state_dict({k: 3 * v if k == "weight" else v for k, v in modulated.state_dict().items()})
        torch.testing.assert_close(conv(x), 2 * before, rtol=0, atol=1e-12)
        torch.testing.assert_close(modulated(x, style), 3 * modulated_before, rtol=0, atol=1e-12)
        conv.float()
        assert conv(x.float()).dtype == torch.float32
