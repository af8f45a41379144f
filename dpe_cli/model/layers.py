"""Exact building blocks of the DPE generator and discriminator.

StyleGAN2-style layers with equalized learning rate. Every formula follows
``shared/docs/dpe-architecture.md`` section 2. The arithmetic is rearranged for speed without
changing the function (parity with the reference holds to 1e-11 in float64):

- a leaky ReLU commutes with positive scaling, so each layer's bias, its activation gain
  sqrt(2) and a residual block's 1/sqrt(2) are folded into the convolution's weights and bias,
  and the activation runs in place: one pass over the output instead of four;
- modulation scales whichever is smaller per sample: the weights (one convolution per sample,
  demodulation folded in; the large feature maps) or the activations (one convolution for
  the whole batch; the small, wide maps). The reference always builds per-sample weights and
  runs grouped convolutions, which get slower per frame as the batch grows;
- FIR filters are single depthwise convolutions (padding inside the convolution), and the 2x
  upsampling of the RGB and flow skips is a depthwise transposed convolution;
- outside training, the scaled weights are made once (in the autocast's dtype) and kept; the
  flow warp gathers channels-last feature rows (:func:`bilinear_warp`) instead of
  ``grid_sample``, whose output is channels-first; the mask multiplies the 3-channel RGB
  projection instead of the wide warped features (a 1x1 convolution commutes with it).
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


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32, or float64 where it already is (the parity runs)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def compute_dtype(device: torch.device, default: torch.dtype) -> torch.dtype:
    """The dtype a convolution runs in: the autocast's where one is on, else ``default``."""
    return torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else default


def layout_of(x: Tensor) -> torch.memory_format:
    """The memory format a convolution on ``x`` runs in; a weight made in it is not copied again."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def frozen(weight: Tensor) -> bool:
    """Whether ``weight`` is a constant here (no gradient wanted), so derived tensors can be kept."""
    return not (torch.is_grad_enabled() and weight.requires_grad)


class DerivedCache:
    """Tensors made from a weight (scaled, cast), kept until the weight changes: its version
    counter, storage, dtype or device. While the weight trains (:func:`frozen` is false) they
    are made on every call, so gradients flow through them."""

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[tuple, Tensor]] = {}

    def clear(self) -> None:
        self._store.clear()

    def get(self, weight: Tensor, key: tuple, make) -> Tensor:
        # A traced graph folds constant weights itself (inductor's freezing).
        if not frozen(weight) or torch.compiler.is_compiling():
            return make()
        stamp = (weight._version, weight.data_ptr(), weight.dtype, weight.device)
        hit = self._store.get(key)
        if hit is None or hit[0] != stamp:
            with torch.no_grad():
                hit = (stamp, make())
            self._store[key] = hit
        return hit[1]


def forget_derived(model: nn.Module) -> None:
    """Drop every kept derived weight of ``model`` (after a run in a precision not used again)."""
    for module in model.modules():
        cache = getattr(module, "_derived", None)
        if isinstance(cache, DerivedCache):
            cache.clear()


def leaky_relu_(x: Tensor) -> Tensor:
    """In place: the input is always a fresh convolution output, which nothing else reads."""
    return F.leaky_relu(x, 0.2, inplace=True)


def _laid_out_product(a: Tensor, b: Tensor, dtype: torch.dtype, layout: torch.memory_format) -> Tensor:
    """``a * b`` laid out as the convolution wants it even when ``a`` is a transposed view (a
    product follows its input's layout, and the convolution would copy it again), rounded
    once to ``dtype`` (the convolution's: an autocast would cast it again)."""
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return (a * b).contiguous()
    return torch.mul(a, b, out=torch.empty(a.shape, dtype=dtype, device=a.device, memory_format=layout))


def _kept_dtype(op, *args: Tensor, like: Tensor | None = None) -> Tensor:
    """``op(*args)`` computed at the widest of their precisions (a float32 style scaling a bf16
    map) and rounded once into the dtype and layout of ``like`` (default: the first argument),
    as the per-sample weights are: both code paths then round alike."""
    like = args[0] if like is None else like
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        return op(*args).to(like.dtype)
    return op(*args, out=torch.empty_like(like))


class Blur(nn.Module):
    """Depthwise FIR filter with equal padding on all sides, optionally adding a bias.

    The kernel is a non-persistent buffer: a constant, not a weight. It is symmetric, so
    correlation (what conv2d does) equals the reference's true convolution.
    """

    def __init__(self, pad: int, gain: float = 1.0, stride: int = 1) -> None:
        super().__init__()
        self.pad = pad
        self.stride = stride  # 2: only every other output, for a 1x1 convolution that strides
        self.register_buffer("kernel", fir_kernel(gain), persistent=False)

    def forward(self, x: Tensor, bias: Tensor | None = None) -> Tensor:
        # A contiguous (repeated, not expanded) weight: oneDNN is much slower on a strided one.
        weight = self.kernel.to(x.dtype)[None, None].repeat(x.size(1), 1, 1, 1)
        return F.conv2d(x, weight, bias, stride=self.stride, padding=self.pad, groups=x.size(1))


class Upsample(nn.Module):
    """2x upsampling of the RGB and flow skips (zero insertion, pads (2, 1), kernel 4K).

    The same map as a depthwise transposed convolution with stride 2 whose output is cropped
    by one pixel on each side.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", fir_kernel(4.0), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.kernel.to(x.dtype)[None, None].repeat(x.size(1), 1, 1, 1)
        return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=x.size(1))


class EqualConv2d(nn.Module):
    """Convolution whose N(0, 1) weight is scaled by 1/sqrt(fan_in) at run time.

    It has no bias of its own; callers pass the following activation's (already scaled).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self._derived = DerivedCache()

    def scaled_weight(self, gain: float, dtype: torch.dtype, layout: torch.memory_format) -> Tensor:
        """``W scale gain`` in ``dtype`` and ``layout``; made once per gain, dtype and layout
        outside training (a 512x512x3x3 weight costs 3 ms to scale, cast and lay out, each call)."""
        return self._derived.get(self.weight, (gain, dtype, layout), lambda: (self.weight * (self.scale * gain)).to(dtype, memory_format=layout))

    def forward(self, x: Tensor, bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
        weight = self.scaled_weight(gain, compute_dtype(x.device, self.weight.dtype), layout_of(x))
        return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; optional fused leaky ReLU (discriminator only)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = 1.0 / math.sqrt(in_features)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        # Styles, motion codes and heads stay float32 under a bf16/fp16 autocast: these small
        # products cost nothing next to the convolutions, and their rounding would reach every
        # modulated layer (on the official-size model bf16 linears cost the edit 3 dB).
        with torch.autocast(x.device.type, enabled=False):
            x = at_least_float32(x)
            if self.activate:
                return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias, 0.2) * SQRT2
            return F.linear(x, self.weight * self.scale, self.bias)


class ActivationBias(nn.Module):
    """The bias b of a fused activation ``leaky_relu(x + b, 0.2) * sqrt(2)``, shape (1, C, 1, 1).

    The activation itself is folded into the preceding convolution: since
    ``leaky_relu(c y) = c leaky_relu(y)`` for c > 0, the layer computes
    ``leaky_relu(conv(x, W g sqrt2) + b g sqrt2)`` for an extra gain g.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def folded(self, gain: float = 1.0) -> Tensor:
        return self.bias.view(-1) * (SQRT2 * gain)


class ConvLayer(nn.Module):
    """EqualConv2d with optional blur-then-stride-2 downsampling and fused activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False, activate: bool = True) -> None:
        super().__init__()
        if downsample:
            p = 2 + (kernel_size - 1)  # pads ((p + 1) // 2, p // 2) are equal for k = 1 and 3
            # A 1x1 convolution with stride 2 reads every other blurred pixel: the blur strides
            # instead, computing a quarter of its output.
            pointwise = kernel_size == 1
            self.blur: nn.Module = Blur(pad=p // 2, stride=2 if pointwise else 1)
            self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=1 if pointwise else 2, padding=0)
        else:
            self.blur = nn.Identity()
            self.conv = EqualConv2d(in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2)
        self.act = ActivationBias(out_channels) if activate else None

    def forward(self, x: Tensor, gain: float = 1.0) -> Tensor:
        """``gain`` scales the output (folded into the weights)."""
        x = self.blur(x)
        if self.act is None:
            return self.conv(x, gain=gain)
        return leaky_relu_(self.conv(x, self.act.folded(gain), SQRT2 * gain))


class ResBlock(nn.Module):
    """Two 3x3 convs (the second downsamples) plus a 1x1 skip, averaged with 1/sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, activate=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x), gain=1 / SQRT2) + self.skip(x, gain=1 / SQRT2)


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution, optionally demodulated and/or 2x upsampling.

    The upsampling path is a stride-2 transposed convolution with the unflipped weight (size
    2H+1) followed by the 4K blur with pads (1, 1). ``bias`` and ``gain`` are the following
    activation's, folded in.
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
            self.blur = Blur(pad=1, gain=4.0)
        self._derived = DerivedCache()

    def _energy(self) -> Tensor:
        """``sum_{u,v} W[o,c,u,v]^2`` (Cout, Cin): it depends on the weight only, so outside
        of training it is computed once and kept until the weight changes."""
        def make() -> Tensor:
            return self.weight[0].square().sum(dim=(2, 3))
        return self._derived.get(self.weight, ("energy",), make)

    def _scaled_weight(self, dtype: torch.dtype, layout: torch.memory_format) -> Tensor:
        """``scale W`` in ``dtype``, the convolution's shape and ``layout``, kept outside training."""
        def make() -> Tensor:
            w = self.weight[0] * self.scale
            return (w.transpose(0, 1) if self.upsample else w).to(dtype, memory_format=layout)
        return self._derived.get(self.weight, (dtype, layout), make)

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """``weight`` is (Cout, Cin, k, k), or (Cin, Cout, k, k) when upsampling."""
        if self.upsample:
            return F.conv_transpose2d(x, weight, stride=2)
        return F.conv2d(x, weight, bias, padding=self.padding)

    def forward(self, x: Tensor, style: Tensor, bias: Tensor | None = None, gain: float = 1.0) -> Tensor:
        s = self.modulation(style)  # (B, Cin), float32 at least (see EqualLinear)
        weight = self.weight[0]  # (Cout, Cin, k, k), unscaled
        batch, _, height, width = x.shape
        # Per output channel: demodulation 1 / sqrt(sum_{c,u,v} (scale W s)^2 + eps) times the gain.
        if self.demodulate:
            with torch.autocast(x.device.type, enabled=False):
                out_scale = torch.rsqrt((s * s) @ self._energy().t() * self.scale**2 + 1e-8) * gain  # (B, Cout)
        else:
            out_scale = torch.full_like(s[:, :1], gain)
        conv_bias = None if self.upsample else bias
        if batch == 1 or weight[:, 0].numel() <= height * width:
            # Per-sample weights scale * W[o,c] s[c] out_scale[o], made in one pass, in the layout
            # the convolution wants: cheaper than touching the feature map.
            factor = (out_scale[:, :, None] * s[:, None, :] * self.scale)[..., None, None]  # (B, Cout, Cin, 1, 1)
            if self.upsample:
                weight, factor = weight.transpose(0, 1), factor.transpose(1, 2)
            dtype, layout = compute_dtype(x.device, weight.dtype), layout_of(x)
            outs = [self._conv(x[i : i + 1], _laid_out_product(weight, factor[i], dtype, layout), conv_bias) for i in range(batch)]
            out = outs[0] if batch == 1 else torch.cat(outs)
        else:
            w = self._scaled_weight(compute_dtype(x.device, weight.dtype), layout_of(x))
            out = self._conv(_kept_dtype(torch.mul, x, s[:, :, None, None]), w, None)
            out_scale = out_scale[:, :, None, None]
            if conv_bias is None:
                out = _kept_dtype(torch.mul, out, out_scale)
            else:
                out = _kept_dtype(torch.addcmul, conv_bias[None, :, None, None], out, out_scale, like=out)
        if self.upsample:
            out = self.blur(out, bias)
        return out


class StyledConv(nn.Module):
    """Demodulated 3x3 modulated conv (optionally upsampling) with fused leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.act = ActivationBias(out_channels)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        return leaky_relu_(self.conv(x, style, self.act.folded(), SQRT2))


class ToRGB(nn.Module):
    """Unmodulated 1x1 projection to RGB: ``lrelu(conv(x) + b1) * sqrt(2) + b2``, plus the upsampled skip.

    ``mask`` is a per-pixel factor of ``x`` (the flow's mask of the warped features), applied
    to the 3-channel projection instead of the wide input: the same map, since a 1x1
    convolution commutes with a per-pixel scale.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_channels, 3, 1)
        self.act = ActivationBias(3)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.upsample = Upsample()

    def forward(self, x: Tensor, skip: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            out = leaky_relu_(self.conv(x, self.act.folded(), SQRT2))
        else:
            projected = at_least_float32(self.conv(x, gain=SQRT2))
            out = leaky_relu_(torch.addcmul(self.act.folded()[None, :, None, None], projected, mask.to(projected.dtype)))
        out = out + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def bilinear_warp(features: Tensor, grid: Tensor) -> Tensor:
    """``grid_sample(features, grid)`` (bilinear, zero padding, align_corners=False) as one
    weighted gather of channels-last feature rows: the same sums (equal in float64), the
    features' dtype and layout kept, and several times faster on a CPU, where ``grid_sample``
    writes channels-first output. Sampling positions are found in ``grid``'s precision (at
    least float32), so a bf16 feature map is read at exact places; a batch expanded from one
    feature map (stride 0) is read from that one map."""
    batch, channels, height, width = features.shape
    ix = (grid[..., 0] + 1) * (width / 2) - 0.5  # unnormalised as grid_sample does, align_corners=False
    iy = (grid[..., 1] + 1) * (height / 2) - 0.5
    x0, y0 = ix.floor(), iy.floor()
    fx, fy = ix - x0, iy - y0
    x0, y0 = x0.long(), y0.long()
    shared = features.stride(0) == 0
    offset = 0 if shared else (torch.arange(batch, device=features.device) * (height * width)).view(batch, 1, 1)
    rows, weights = [], []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xs, ys = x0 + dx, y0 + dy
            inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
            rows.append(ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1) + offset)
            weights.append(wx * wy * inside)
    source = features[:1] if shared else features
    table = source.permute(0, 2, 3, 1).reshape(-1, channels)  # a view for channels-last maps
    out = F.embedding_bag(
        torch.stack(rows, -1).view(-1, 4), table, per_sample_weights=torch.stack(weights, -1).view(-1, 4).to(table.dtype), mode="sum"
    )
    return out.view(batch, grid.size(1), grid.size(2), channels).permute(0, 3, 1, 2)


class ToFlow(nn.Module):
    """Predicts a flow field and a mask, and warps the encoder features with them.

    Returns ``(sampled, x_next, logits, mask)``: the warped features before the mask (ToRGB
    applies it), the features for the next conv (warped where the mask is on, ``x``
    elsewhere), the raw 3-channel logits, which are accumulated across resolutions before
    tanh/sigmoid, and the mask.
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

    def forward(self, x: Tensor, style: Tensor, features: Tensor, skip: Tensor | None = None, last: bool = False) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        """``last``: no next conv reads ``x_next`` (the top level), so it is not made (None)."""
        logits = self.conv(x, style, self.bias.view(-1))
        # The flow is sampling coordinates: at least float32 even under a bf16/fp16 autocast,
        # whose 8-bit mantissa would misplace a 256-px grid by up to half a pixel (a lower
        # precision costs the warp 10 dB against float32; the convolutions stay fast).
        exact = torch.promote_types(logits.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            logits = logits.to(exact)
            if skip is not None:
                logits = logits + self.upsample(skip.to(exact))
            offset = torch.tanh(logits[:, :2]).permute(0, 2, 3, 1)
            grid = self.base_grid(x.size(2), logits) + offset
            mask = torch.sigmoid(logits[:, 2:3])
            if torch.is_grad_enabled():  # training: the reference's sampler and its gradients
                sampled = F.grid_sample(features.to(exact), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            else:
                sampled = bilinear_warp(features, grid)
            if last:
                return sampled, None, logits, mask
            # A contiguous mask: the logits' channel slice would slow the broadcast threefold.
            blend = mask.to(sampled.dtype).contiguous()
            return sampled, torch.lerp(x.to(sampled.dtype), sampled, blend), logits, mask
