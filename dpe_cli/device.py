"""Which torch device a run uses: one rule for editing, training, evaluation and loading."""

from __future__ import annotations

from pathlib import Path

import torch

from dpe_cli.errors import InputError


CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # the CPU's own bf16 dot products (Cooper Lake, Sapphire Rapids, Zen 4)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty where it cannot be read)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def choose_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The precision a run uses and why. ``auto`` is bf16 where the hardware computes it
    natively (a CUDA device with bf16, a CPU with AVX-512 BF16 or AMX: there it is about twice
    as fast as float32; :meth:`Engine.load` then keeps it only for a model whose check face
    bf16 draws within 45 dB of float32, see :mod:`dpe_cli.precision_check`), else
    float32: elsewhere the CPU would emulate bf16, slower than float32. fp16 is never chosen:
    it is only as accurate where its range suffices, which no measurement here has shown."""
    if precision != "auto":
        return precision, "asked for"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: the CUDA device computes bf16"
        return "fp32", "auto: this CUDA device has no bf16 (fp16 only when asked)"
    found = sorted(cpu_flags() & BF16_FLAGS)
    if found:
        return "bf16", f"auto: the CPU computes bf16 ({', '.join(found)})"
    return "fp32", "auto: the CPU has no AVX-512 BF16 or AMX (bf16 would be emulated, slower than fp32)"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"unknown device {device!r}", "use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device} requested but CUDA is not available", "use `device` cpu or auto")
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {device!r}", "use auto, cpu, cuda or cuda:N")
    return resolved
