"""The loss terms that DPE's objectives are made of: their weights, the frozen-network terms
(expression, head pose, motion), and the discriminator's loss. How the terms combine into each
objective is in :mod:`dpe_cli.train.objectives`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class LossWeights:
    """Paper defaults: reconstruction 1, lambda_p = lambda_e = 20, GAN 1. The self-reconstruction
    pairs belong to the paper's perceptual loss, so their default weight is lambda_p too; 0
    switches a term off (the self-reconstruction ablation). ``pose`` and ``motion`` are not in the
    paper (off)."""

    reconstruction: float = 1.0
    perceptual: float = 20.0
    self_reconstruction: float = 20.0
    expression: float = 20.0
    adversarial: float = 1.0
    pose: float = 0.0
    motion: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class FactorLoss(nn.Module):
    """Mean absolute difference of what a frozen network reads (expression or head-pose
    vectors); the target's vector is a constant."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def per_sample(self, prediction: Tensor, target: Tensor) -> Tensor:
        """``prediction`` may hold several chunks the size of ``target`` that share its images
        as targets: each target is read once."""
        predicted = self.encoder(prediction).float()
        with torch.no_grad():
            wanted = self.encoder(target).float()
        return (predicted.view(-1, *wanted.shape) - wanted).abs().mean(dim=2).flatten()


class MotionTerm(nn.Module):
    """|R (d(D) - d(S)) - (X(D) - X(S))|: the motion vector must carry what the frozen
    expression network X reads. R is a fixed random projection (seed 0, so a resumed run
    meets the same one) onto the first ``min(outputs, motion_dim // 2)`` outputs of X (DECA's
    expression coefficients come in order of importance), which leaves half of the motion
    directions free for head pose."""

    def __init__(self, encoder: nn.Module, style_dim: int, motion_dim: int, image_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        with torch.no_grad():
            outputs = encoder(torch.zeros(1, 3, image_size, image_size)).size(1)
        self.dims = min(outputs, max(1, motion_dim // 2))
        generator = torch.Generator().manual_seed(0)
        projection = torch.randn(self.dims, style_dim, generator=generator) / math.sqrt(style_dim)
        self.register_buffer("projection", projection, persistent=False)

    def forward(self, motion_s: Tensor, motion_d: Tensor, source: Tensor, driving: Tensor) -> Tensor:
        with torch.no_grad():
            read_s, read_d = self.encoder(torch.cat([source, driving])).float().chunk(2)
            wanted = (read_d - read_s)[:, : self.dims]
        carried = (motion_d.float() - motion_s.float()) @ self.projection.t()
        return (carried - wanted).abs().mean()


def pair_means(per_sample: Tensor, pairs: int) -> Tensor:
    """Sum over pairs of the batch mean, for ``pairs`` equal chunks batched together."""
    return per_sample.view(pairs, -1).mean(dim=1).sum()


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference in fp32 (autocast may hand over half-precision images)."""
    return F.l1_loss(a.float(), b.float())


def discriminator_loss(discriminator: nn.Module, source: Tensor, driving: Tensor, fakes: list[Tensor]) -> Tensor:
    """Non-saturating D loss: reals S and D, the generated ``fakes`` (detached; S'' and D''
    in cyclic training).

    Reals and fakes go through in separate passes so that the minibatch-stddev statistic is
    never computed over a mix of the two.
    """
    real = discriminator(torch.cat([source, driving])).float()
    fake = discriminator(torch.cat([f.detach() for f in fakes])).float()
    return pair_means(F.softplus(-real).flatten(), 2) + pair_means(F.softplus(fake).flatten(), len(fakes))
