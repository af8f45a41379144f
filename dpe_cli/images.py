"""Pictures <-> model tensors: the one place where uint8 RGB frames become the model's input
and its output becomes frames again.

The model takes N x 3 x H x W RGB in [-1, 1], normalised as the reference does
(``(x / 255 - 0.5) * 2``, which differs from ``x / 127.5 - 1`` in the last float bit), and
its raw output is clamped and rounded back to uint8 (the reference truncates; rounding is the
better estimate and the difference is at most one grey level).
"""

from __future__ import annotations

import numpy as np
import torch


def to_model(
    images: list[np.ndarray] | np.ndarray, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, channels_last: bool = True
) -> torch.Tensor:
    """HxWx3 uint8 RGB images -> N x 3 x H x W in [-1, 1]. Channels-last is the layout oneDNN's
    convolutions run fastest in; its sums run in another order, so outputs may differ by a
    grey level from the default layout's (evaluation keeps the default, for stable figures)."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(images) if isinstance(images, list) else images)).to(device)
    batch = (batch.permute(0, 3, 1, 2).to(dtype) / 255.0 - 0.5) * 2.0
    return batch.contiguous(memory_format=torch.channels_last) if channels_last else batch.contiguous()


def from_model(batch: torch.Tensor) -> list[np.ndarray]:
    """Raw model output (any float dtype) -> HxWx3 uint8 RGB images, clamped and rounded."""
    pixels = ((batch.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return list(pixels.permute(0, 2, 3, 1).cpu().numpy())
