"""The authors' checkpoints (``dpe.pt``, training checkpoints, LIA ``vox.pt``): a safe read
and the translation of their names onto ours.

The release names modules after the wrong edit (``dec_pose`` is the expression generator) and
keeps parameters nothing uses (``to_rgb1``, noise strengths). We name modules for what they
do, so names are translated here, once, at load time. Blur kernels are constants in our
model; the file's copies are checked instead of loaded.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from dpe_cli.errors import CheckpointError
from dpe_cli.model import DPE, Discriminator
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


_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = "WeightsUnpickler error:"


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """Why ``torch.load`` failed, in one line: a refused object (what a safe load is for,
    not damage), or the first sentence of the damage, never an empty reason."""
    text = str(exc)
    refused = _REFUSED_GLOBAL.search(text)
    if refused:
        return CheckpointError(
            f"{path} holds code or objects that a safe load refuses ({refused.group(1)}); nothing in it was run",
            "convert it to a plain state dict with the official code, or use a .safetensors file",
        )
    detail = text.split(_UNPICKLER_DETAIL)[-1]
    line = next((line.strip() for line in detail.splitlines() if line.strip()), "")
    reason = line.split(". ")[0].strip(" .:")
    if not any(c.isalnum() for c in reason):
        reason = f"{type(exc).__name__} while reading the data"
    return CheckpointError(f"cannot read {path}: {reason[:120]}", "the file is truncated, corrupt or not a PyTorch checkpoint; download it again")


def load_torch(path: Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers, plus the training
    checkpoints' ``argparse.Namespace`` (their ``args``), which is all they hold."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip errors, unpickling refusals, truncation
        raise _unreadable(path, exc) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state dict", "expected the official dpe.pt ({'gen': ...})")
    return obj


def _strip_module(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def official_generator_state(obj: dict) -> dict[str, Tensor]:
    """The generator state dict of an official file: ``obj["gen"]``, or ``obj`` itself."""
    state = obj.get("gen", obj)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError("the checkpoint has no generator state dict", "expected the official dpe.pt ({'gen': ...})")
    return _strip_module(state)


def translate(
    source: dict[str, Tensor],
    target: nn.Module,
    rule: Callable[[str], Target | None],
    what: str,
    strict: bool = True,
) -> dict[str, Tensor]:
    """Map ``source`` onto ``target``'s names with ``rule`` and check names and shapes.

    Raises a one-line error naming the first unexpected, mis-shaped and missing keys.
    With ``strict=False`` (partial initialisation) keys the target lacks are allowed.
    """
    expected = target.state_dict()
    mapped: dict[str, Tensor] = {}
    unexpected, wrong_shape, bad_constant = [], [], []
    for key, value in source.items():
        name = rule(key)
        if name is None:
            unexpected.append(key)
        elif name == DROP:
            continue
        elif isinstance(name, Constant):
            if not constant_matches(value, name):
                bad_constant.append(key)
        elif name not in expected:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(expected[name].shape):
            wrong_shape.append(f"{key} {tuple(value.shape)} vs {tuple(expected[name].shape)}")
        else:
            mapped[name] = value
    missing = [k for k in expected if k not in mapped] if strict else []
    problems = []
    for label, keys in (("unexpected", unexpected), ("mis-shaped", wrong_shape), ("missing", missing), ("unusual FIR kernel", bad_constant)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    if problems:
        raise CheckpointError(f"{what} does not match the DPE architecture: " + "; ".join(problems), "use the official dpe.pt or a file written by dpe")
    return mapped


def read_official(path: Path) -> tuple[DPE, dict[str, Tensor]]:
    """The model an official generator file describes and its state under our names."""
    state = official_generator_state(load_torch(path))
    try:
        config = infer_config(state)
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"{path} is not a DPE generator checkpoint (no key {exc})", "expected the official dpe.pt") from exc
    model = DPE(config)
    blocks = len(model.encoder.blocks)
    return model, translate(state, model, lambda k: generator_target(k, blocks), f"{path.name}")


def load_discriminator(obj: dict, config: DPEConfig) -> Discriminator:
    """The discriminator of an official training checkpoint (``obj["dis"]``)."""
    dis = Discriminator(config)
    state = _strip_module(obj["dis"])
    dis.load_state_dict(translate(state, dis, discriminator_target, "discriminator"))
    return dis


def lia_initial_state(path: Path, model: DPE) -> dict[str, Tensor]:
    """Encoder, motion MLP and directions from LIA's ``vox.pt`` (how DPE training starts)."""
    obj = load_torch(path)
    state = _strip_module(obj.get("gen", obj))
    blocks = len(model.encoder.blocks)
    keep = {k: v for k, v in state.items() if lia_target(k, blocks) is not None}
    if not keep:
        raise CheckpointError(f"{path} holds no LIA encoder or motion weights", "expected LIA's vox.pt")
    return translate(keep, model, lambda k: lia_target(k, blocks), path.name, strict=False)
