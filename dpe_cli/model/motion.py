"""Motion path: latent -> motion coefficients -> direction vector -> expression / pose shift."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpe_cli.model.layers import DerivedCache, EqualLinear, at_least_float32


class LinearStack(nn.Module):
    """A chain of EqualLinear layers with no activation (as in the release: an affine map
    kept per layer for checkpoint compatibility and training dynamics)."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EqualLinear(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class DirectionBasis(nn.Module):
    """Orthogonal motion basis Q = QR(W + 1e-8) (LAPACK sign convention); returns alpha @ Q^T.

    Q depends only on the weight, so outside of training it is computed once and cached until
    the weight changes (new version counter, dtype or device).
    """

    def __init__(self, style_dim: int, motion_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(style_dim, motion_dim))
        self._derived = DerivedCache()

    def basis(self) -> Tensor:
        def make() -> Tensor:
            return torch.linalg.qr(self.weight + 1e-8, mode="reduced")[0]
        return self._derived.get(self.weight, ("basis",), make)

    def forward(self, alpha: Tensor) -> Tensor:
        with torch.autocast(alpha.device.type, enabled=False):  # float32 at least, as EqualLinear
            return at_least_float32(alpha) @ self.basis().t()
