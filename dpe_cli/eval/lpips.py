"""LPIPS (Zhang et al. 2018, AlexNet variant, v0.1) from user-supplied weights.

Nothing downloads at run time, so LPIPS is computed only when the user points
``--lpips-weights`` at files holding the two parts of the network:

- the AlexNet convolutions, under torchvision's names (``features.0.weight`` ... ``features.10.bias``,
  e.g. torchvision's ``alexnet-owt-7be5be79.pth``) or the ``lpips`` package's
  (``net.slice1.0.weight`` ...);
- the five LPIPS linear heads, ``lin0.model.1.weight`` ... ``lin4.model.1.weight``
  (the ``lpips`` package's ``weights/v0.1/alex.pth``).

One merged file, or the two files given as two ``--lpips-weights`` options, both work;
``.pth``/``.pt`` files are read with ``weights_only=True`` and ``.safetensors`` as such.

Computation, as the reference: inputs in [-1, 1] are shifted and scaled per channel, the five
ReLU outputs of AlexNet are unit-normalised along channels, their squared differences
weighted by the linear heads, averaged over space and summed over the five layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dpe_cli.errors import InputError

# (in, out, kernel, stride, padding) of AlexNet's five convolutions, with their torchvision
# indices in ``features``; a max-pool (3, 2) precedes convolutions 2 and 3.
_CONVS = (
    (0, 3, 64, 11, 4, 2),
    (3, 64, 192, 5, 1, 2),
    (6, 192, 384, 3, 1, 1),
    (8, 384, 256, 3, 1, 1),
    (10, 256, 256, 3, 1, 1),
)
_POOL_BEFORE = (False, True, True, False, False)
# The lpips package stores the same convolutions under slices of its own.
_LPIPS_NAMES = {0: "net.slice1.0", 3: "net.slice2.3", 6: "net.slice3.6", 8: "net.slice4.8", 10: "net.slice5.10"}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS-Alex distance; 0 for identical images, larger is more different."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, p) for _, i, o, k, s, p in _CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(o, 1, 1, bias=False) for _, _, o, *_ in _CONVS)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def _features(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for conv, pool in zip(self.convs, _POOL_BEFORE):
            if pool:
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    @torch.inference_mode()
    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Per-image distance of two N x 3 x H x W batches in [-1, 1]."""
        total = torch.zeros(a.shape[0], device=a.device)
        for fa, fb, lin in zip(self._features(a), self._features(b), self.lins):
            total = total + lin((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """LPIPS between two uint8 RGB frames of one size."""
        return float(self(_to_tensor(a), _to_tensor(b))[0])


def _to_tensor(rgb: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def _read_state(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise InputError(f"LPIPS weights not found: {path}", "give `lpips_weights` an existing file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files: one line for the user
        raise InputError(
            f"cannot read LPIPS weights {path}: {type(exc).__name__}", "give a .pth or .safetensors state dict"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path} holds no state dict", "give a .pth or .safetensors state dict")
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def load_lpips(paths: list[Path]) -> LPIPS:
    """An LPIPS network from one or more weight files (merged; see the module docstring)."""
    state: dict[str, Tensor] = {}
    for path in paths:
        state.update(_read_state(Path(path)))
    mapped: dict[str, Tensor] = {}
    missing: list[str] = []
    for n, (index, *_rest) in enumerate(_CONVS):
        for kind in ("weight", "bias"):
            for name in (f"features.{index}.{kind}", f"{_LPIPS_NAMES[index]}.{kind}"):
                if name in state:
                    mapped[f"convs.{n}.{kind}"] = state[name]
                    break
            else:
                missing.append(f"features.{index}.{kind}")
        lin = f"lin{n}.model.1.weight"
        if lin in state:
            mapped[f"lins.{n}.weight"] = state[lin]
        else:
            missing.append(lin)
    if missing:
        raise InputError(
            f"LPIPS weights lack {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
            "give torchvision's AlexNet weights and lpips' v0.1 alex.pth (two --lpips-weights, or one merged file)",
        )
    net = LPIPS()
    try:
        net.load_state_dict(mapped, strict=False)
    except RuntimeError as exc:
        raise InputError(
            "LPIPS weights have the wrong shapes for AlexNet", "use AlexNet (not VGG or SqueezeNet) weights"
        ) from exc
    return net.eval()
