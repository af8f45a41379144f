"""Which torch device a run uses: one rule for editing, training, evaluation and loading."""

from __future__ import annotations

import torch

from dpe_cli.errors import InputError


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
