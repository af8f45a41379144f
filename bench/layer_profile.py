"""Per-layer profile of one model call: time, GFLOP and achieved GFLOP/s of every layer,
against the rate a plain convolution of the same shape reaches on this machine.

A layer is an encoder ConvLayer (or the latent projection), a generator StyledConv, ToFlow or
ToRGB. Its time is wall time between forward hooks (the CPU runs synchronously). Its FLOPs are
those of its matrix-shaped convolutions (torch's flop counter's formula: 2 x MACs), so the
depthwise FIR filters, activations and the warp count as time without FLOPs. The "plain"
column replays each of the layer's convolutions alone: same input shape, channels-last, a
fixed weight already in the run's precision (what oneDNN reaches when it can pack the weight
once), no blur, bias or activation around it. ``layer / plain`` is the gap left to close.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from dpe_cli.model.layers import ConvLayer, EqualConv2d, StyledConv, ToFlow, ToRGB

LAYER_TYPES = (ConvLayer, StyledConv, ToFlow, ToRGB)
CONVS = (F.conv2d, F.conv_transpose2d)


@dataclass
class ConvCall:
    """One dense convolution a layer ran: enough to replay it alone."""

    transposed: bool
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: int
    padding: int
    groups: int

    @property
    def flops(self) -> int:
        """2 x multiply-adds, as torch.utils.flop_counter counts a convolution."""
        weight_macs = 1
        for size in self.weight_shape:
            weight_macs *= size
        batch, _, height, width = self.input_shape
        if self.transposed:
            return 2 * batch * height * width * weight_macs  # every input pixel meets every tap
        out_h = (height + 2 * self.padding - self.weight_shape[2]) // self.stride + 1
        out_w = (width + 2 * self.padding - self.weight_shape[3]) // self.stride + 1
        return 2 * batch * out_h * out_w * weight_macs


@dataclass
class LayerRecord:
    name: str
    seconds: float = 0.0
    convs: list[ConvCall] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return sum(c.flops for c in self.convs)


def _first_int(value) -> int:
    return int(value[0]) if isinstance(value, (tuple, list)) else int(value)


class _Recorder(TorchFunctionMode):
    """Notes every dense convolution against the innermost layer that is running."""

    def __init__(self, stack: list[LayerRecord]) -> None:
        super().__init__()
        self.stack = stack

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in CONVS and self.stack:
            x, weight = args[0], args[1]
            groups = int(kwargs.get("groups", args[6] if len(args) > 6 else 1))  # 7th in both signatures
            if groups == 1:  # depthwise FIR filters are not matrix work
                stride = _first_int(kwargs.get("stride", args[3] if len(args) > 3 else 1))
                padding = _first_int(kwargs.get("padding", args[4] if len(args) > 4 else 0))
                self.stack[-1].convs.append(ConvCall(func is F.conv_transpose2d, tuple(x.shape), tuple(weight.shape), stride, padding, groups))
        return func(*args, **kwargs)


def layer_names(model: nn.Module) -> dict[nn.Module, str]:
    """The profiled layers of ``model`` by qualified name, outermost only."""
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, LAYER_TYPES) or (isinstance(module, EqualConv2d) and name.endswith("to_latent")):
            if not any(name.startswith(other + ".") for other in names.values()):
                names[module] = name
    return names


def profile(model: nn.Module, call: Callable[[], object], repeats: int = 3) -> list[LayerRecord]:
    """Runs ``call`` once to note each layer's convolutions, then ``repeats`` times with only
    the timing hooks (the recorder would slow every op down); keeps each layer's fastest time."""
    names = layer_names(model)
    records = {name: LayerRecord(name) for name in names.values()}
    stack: list[LayerRecord] = []
    starts: list[float] = []
    times: dict[str, float] = {}

    def before(module, _inputs):
        stack.append(records[names[module]])
        starts.append(time.perf_counter())

    def after(module, _inputs, _output):
        name = stack.pop().name
        times[name] = times.get(name, 0.0) + time.perf_counter() - starts.pop()

    handles = [m.register_forward_pre_hook(before) for m in names] + [m.register_forward_hook(after) for m in names]
    try:
        with _Recorder(stack):
            call()
        best: dict[str, float] = {}
        for _ in range(repeats):
            times.clear()
            call()
            for name, seconds in times.items():
                best[name] = min(seconds, best.get(name, float("inf")))
    finally:
        for handle in handles:
            handle.remove()
    for name, record in records.items():
        record.seconds = best.get(name, 0.0)
    return [r for r in records.values() if r.seconds]


def plain_seconds(conv: ConvCall, dtype: torch.dtype, repeats: int = 5) -> float:
    """The fastest of ``repeats`` runs of the convolution alone, weight fixed in ``dtype``."""
    x = torch.randn(conv.input_shape).to(dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(conv.weight_shape).to(dtype).contiguous(memory_format=torch.channels_last)
    fn = F.conv_transpose2d if conv.transposed else F.conv2d
    best = float("inf")
    with torch.inference_mode():
        fn(x, weight, stride=conv.stride, padding=conv.padding)
        for _ in range(repeats):
            start = time.perf_counter()
            fn(x, weight, stride=conv.stride, padding=conv.padding)
            best = min(best, time.perf_counter() - start)
    return best


def group(name: str) -> str:
    """The part of the model a layer belongs to (encoder, or which generator)."""
    return name.split(".")[0]


def summarise(records: list[LayerRecord], dtype: torch.dtype) -> list[dict]:
    rows = []
    for record in records:
        plain = sum(plain_seconds(c, dtype) for c in record.convs)
        gflop = record.flops / 1e9
        rows.append({
            "layer": record.name,
            "ms": round(record.seconds * 1e3, 2),
            "gflop": round(gflop, 3),
            "gflops_per_s": round(gflop / record.seconds, 1) if record.seconds else None,
            "plain_ms": round(plain * 1e3, 2),
            "plain_gflops_per_s": round(gflop / plain, 1) if plain else None,
        })
    return rows


def print_rows(rows: list[dict], total_seconds: float) -> None:
    print(f"{'layer':<44} {'ms':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'plain ms':>9} {'plain GFLOP/s':>13}")
    for row in rows:
        rate = "" if row["gflops_per_s"] is None else f"{row['gflops_per_s']:8.0f}"
        plain = "" if row["plain_gflops_per_s"] is None else f"{row['plain_gflops_per_s']:13.0f}"
        print(f"{row['layer']:<44} {row['ms']:8.2f} {row['gflop']:7.2f} {rate:>8} {row['plain_ms']:9.2f} {plain:>13}")
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(group(row["layer"]), []).append(row)
    for name, members in groups.items():
        ms = sum(r["ms"] for r in members)
        gflop = sum(r["gflop"] for r in members)
        plain = sum(r["plain_ms"] for r in members)
        print(f"{name:<44} {ms:8.1f} {gflop:7.2f} {gflop / ms * 1e3:8.0f} {plain:9.1f} {gflop / plain * 1e3:13.0f}")
    layers_ms = sum(r["ms"] for r in rows)
    print(f"layers {layers_ms:.1f} ms of {total_seconds * 1e3:.1f} ms for the whole call (the rest: heads, MLPs, casts, glue)")

