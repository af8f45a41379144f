"""Name translation for the authors' checkpoints (``dpe.pt``, training checkpoints, LIA ``vox.pt``).

The release names modules after the wrong edit (``dec_pose`` is the expression generator) and
keeps parameters nothing uses (``to_rgb1``, noise strengths). We name modules for what they
do, so names are translated here, once, at load time. Blur kernels are constants in our
model; the file's copies are checked instead of loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor

from dpe_cli.model.config import BASE_CHANNELS, DPEConfig
from dpe_cli.model.layers import fir_kernel


@dataclass(frozen=True)
class Constant:
    """A key whose value must equal a fixed FIR kernel (gain 1 for blur-down, 4 for up)."""

    gain: float


DROP = "drop"  # stored by the release, never used by its forward pass
Target = str | Constant


def _conv_stack(rest: str, last: int, prefix: str) -> Target | None:
    """Keys of the LIA-style stack ``convs.N...`` (encoder and discriminator body)."""
    m = re.fullmatch(r"(\d+)\.(.+)", rest)
    if not m:
        return None
    index, tail = int(m.group(1)), m.group(2)
    if index == 0:
        return {"0.weight": f"{prefix}stem.conv.weight", "1.bias": f"{prefix}stem.act.bias"}.get(tail)
    if index == last and tail == "weight" and prefix.startswith("encoder"):
        return f"{prefix}to_latent.weight"
    block = f"{prefix}blocks.{index - 1}."
    table: dict[str, Target] = {
        "conv1.0.weight": block + "conv1.conv.weight",
        "conv1.1.bias": block + "conv1.act.bias",
        "conv2.0.kernel": Constant(1.0),
        "conv2.1.weight": block + "conv2.conv.weight",
        "conv2.2.bias": block + "conv2.act.bias",
        "skip.0.kernel": Constant(1.0),
        "skip.1.weight": block + "skip.conv.weight",
    }
    return table.get(tail)


def _synthesis(rest: str, prefix: str) -> Target | None:
    fixed: dict[str, Target] = {
        "input.input": prefix + "const",
        "conv1.conv.weight": prefix + "conv_in.conv.weight",
        "conv1.conv.modulation.weight": prefix + "conv_in.conv.modulation.weight",
        "conv1.conv.modulation.bias": prefix + "conv_in.conv.modulation.bias",
        "conv1.activate.bias": prefix + "conv_in.act.bias",
        "conv1.noise.weight": DROP,
    }
    if rest in fixed:
        return fixed[rest]
    if rest.startswith("to_rgb1."):
        return DROP
    m = re.fullmatch(r"convs\.(\d+)\.(.+)", rest)
    if m:
        j, tail = int(m.group(1)), m.group(2)
        base = f"{prefix}levels.{j // 2}.{'up' if j % 2 == 0 else 'conv'}."
        table: dict[str, Target] = {
            "conv.weight": base + "conv.weight",
            "conv.modulation.weight": base + "conv.modulation.weight",
            "conv.modulation.bias": base + "conv.modulation.bias",
            "activate.bias": base + "act.bias",
            "noise.weight": DROP,
        }
        if j % 2 == 0:
            table["conv.blur.kernel"] = Constant(4.0)
        return table.get(tail)
    m = re.fullmatch(r"(to_rgbs|to_flows)\.(\d+)\.(.+)", rest)
    if m:
        head = "to_rgb" if m.group(1) == "to_rgbs" else "to_flow"
        base = f"{prefix}levels.{m.group(2)}.{head}."
        tail = m.group(3)
        if tail == "upsample.kernel":
            return Constant(4.0)
        if head == "to_rgb":
            return {"bias": base + "bias", "conv.0.weight": base + "conv.weight", "conv.1.bias": base + "act.bias"}.get(tail)
        return {
            "bias": base + "bias",
            "conv.weight": base + "conv.weight",
            "conv.modulation.weight": base + "conv.modulation.weight",
            "conv.modulation.bias": base + "conv.modulation.bias",
        }.get(tail)
    return None


_LINEAR_STACKS = {"mlp": "motion_mlp", "mlp_pose": "expression_head", "mlp_exp": "pose_head"}


def generator_target(key: str, encoder_blocks: int) -> Target | None:
    """Our name for an official generator key; ``DROP``, a ``Constant``, or None if unknown."""
    if key.startswith("enc.net_app.convs."):
        return _conv_stack(key[len("enc.net_app.convs."):], encoder_blocks + 1, "encoder.")
    if key.startswith("dec_pose."):  # the release's "pose" decoder edits the expression
        return _synthesis(key[len("dec_pose."):], "expression_generator.")
    if key.startswith("dec_exp."):
        return _synthesis(key[len("dec_exp."):], "pose_generator.")
    if key == "dir.weight":
        return "directions.weight"
    m = re.fullmatch(r"(mlp|mlp_pose|mlp_exp)\.(\d+)\.(weight|bias)", key)
    if m:
        return f"{_LINEAR_STACKS[m.group(1)]}.layers.{m.group(2)}.{m.group(3)}"
    return None


def discriminator_target(key: str) -> Target | None:
    """Our name for an official discriminator key (``ckpt["dis"]``)."""
    if key.startswith("convs."):
        return _conv_stack(key[len("convs."):], -1, "")
    table = {
        "final_conv.0.weight": "final_conv.conv.weight",
        "final_conv.1.bias": "final_conv.act.bias",
        "final_linear.0.weight": "hidden.weight",
        "final_linear.0.bias": "hidden.bias",
        "final_linear.1.weight": "score.weight",
        "final_linear.1.bias": "score.bias",
    }
    return table.get(key)


def lia_target(key: str, encoder_blocks: int) -> Target | None:
    """LIA ``vox.pt`` keys DPE initialises from: encoder, motion MLP (``enc.fc``), directions."""
    if key.startswith("enc.net_app."):
        return generator_target(key, encoder_blocks)
    m = re.fullmatch(r"enc\.fc\.(\d+)\.(weight|bias)", key)
    if m:
        return f"motion_mlp.layers.{m.group(1)}.{m.group(2)}"
    if key == "dec.direction.weight":
        return "directions.weight"
    return None


def infer_config(state: dict[str, Tensor]) -> DPEConfig:
    """Read size, latent size, motion size and width off an official generator state dict."""
    levels = sum(1 for k in state if re.fullmatch(r"dec_pose\.to_flows\.\d+\.bias", k))
    size = 2 ** (levels + 2)
    stem = state["enc.net_app.convs.0.0.weight"]
    direction = state["dir.weight"]
    return DPEConfig(
        size=size,
        style_dim=int(direction.shape[0]),
        motion_dim=int(direction.shape[1]),
        width=float(stem.shape[0]) / BASE_CHANNELS[size] if size in BASE_CHANNELS else 1.0,
    )


def constant_matches(value: Tensor, constant: Constant) -> bool:
    expected = fir_kernel(constant.gain)
    return tuple(value.shape) == tuple(expected.shape) and torch.allclose(value.float(), expected, atol=1e-6)
