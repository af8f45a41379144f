"""The cycle forward pass and the objectives of DPE training (paper Eq. 6 to 12).

Notation (paper): S source, D driving, e(X, Y) = X with Y's expression (expression generator),
p(X, Y) = X with Y's pose (pose generator).

    S' = e(S, D)    S'' = p(S', D)    should equal D
    D' = p(D, S)    D'' = e(D', S)    should equal S
    S' and D' both have D's expression and S's pose, so they should equal each other.

Generator objective::

    L = w_rec  (|S''-D| + |D''-S| + |S' - sg(D')|)                     reconstruction, L1
      + w_per  (P(S'',D) + P(D'',S) + P(S', sg(D')))                   perceptual, VGG pyramid
      + w_self (P(e(S,S),S) + P(p(S,S),S))                             self-reconstruction
               (L1 instead of P when no VGG network is given)
      + w_exp  (X(S',D) + X(D',D))                                     expression
      + w_pose (H(S',S) + H(D',S))                                     head pose (not in the paper)
      + w_mot  |R (d(D) - d(S)) - (X(D) - X(S))|                       motion (not in the paper)
      + w_adv  (softplus(-Dis(S'')) + softplus(-Dis(D'')))             non-saturating GAN

``sg`` stops the gradient: the terms on <S', D'> must not update the pose generator (the
paper's asymmetric back-propagation), so D' is a target there. The reference detached D' only
inside the VGG term and let its L1 term reach the pose generator; here both are detached. The
discriminator sees the final images S'' and D'' (the reference passed S' and D', bug 3).

The head-pose term is ours. The paper's terms are all met by a degenerate split in which the
expression generator moves everything and the pose generator nothing (then S' = D' = D, the
cycle closes and D keeps its own expression); on synthetic faces training drifts there.
H, a frozen head-pose reader, rules it out: S' must keep S's pose and D' must take it.

The motion term is ours too. Edits can only transfer what the motion vector d carries, and the
image terms teach it a small feature such as the mouth opening very slowly (a mouth is a few
pixels of a 64 px face). The term asks a fixed random projection R of the change of d to equal
the change that the frozen expression network X reads, so d carries expression from the start.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.model import DPE, Encoding
from dpe_cli.train.vgg import PerceptualPyramidLoss


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


class CycleGenerator(nn.Module):
    """The generator's training forward pass, as one module so that DDP can wrap it."""

    def __init__(self, model: DPE, with_self_reconstruction: bool) -> None:
        super().__init__()
        self.model = model
        self.with_self_reconstruction = with_self_reconstruction

    def forward(self, source: Tensor, driving: Tensor) -> dict[str, Tensor]:
        m = self.model
        enc_s, enc_d = m.encode(source), m.encode(driving)
        motion_s, motion_d = m.motion(enc_s.latent), m.motion(enc_d.latent)
        s_expression = m.apply_expression(enc_s, motion_d)  # S' = e(S, D)
        d_pose = m.apply_pose(enc_d, motion_s)  # D' = p(D, S)
        # The intermediates go back through the encoder unclamped, with gradient (as the reference).
        images = {
            "s_expression": s_expression,
            "s_cycle": m.apply_pose(m.encode(s_expression), motion_d),  # S'' = p(S', D)
            "d_pose": d_pose,
            "d_cycle": m.apply_expression(m.encode(d_pose), motion_s),  # D'' = e(D', S)
            "motion_s": motion_s,
            "motion_d": motion_d,
        }
        if self.with_self_reconstruction:
            images["self_expression"] = m.apply_expression(enc_s, motion_s)  # e(S, S)
            images["self_pose"] = m.apply_pose(enc_s, motion_s)  # p(S, S)
        return images


class ReenactmentGenerator(nn.Module):
    """LIA's objective, from which the paper starts (it initialises from a trained LIA): S driven
    by all of D's motion, G_p(w_S + H_p(d_D), F_S), should be D.

    Cyclic training alone gives the encoder no reason to put pose or expression into its latent
    until the generators already move faces, and the generators cannot learn to move faces
    from a latent that carries no motion: from scratch it sits at blurry averages. Direct
    reenactment breaks that loop, as LIA's training does for the released model.
    """

    def __init__(self, model: DPE) -> None:
        super().__init__()
        self.model = model

    def forward(self, source: Tensor, driving: Tensor) -> dict[str, Tensor]:
        m = self.model
        enc_s = m.encode(source)
        motion_d = m.motion(m.encode(driving).latent)
        return {"reenacted": m.apply_pose(enc_s, motion_d), "motion_s": m.motion(enc_s.latent), "motion_d": motion_d}


class SingleEditGenerator(nn.Module):
    """One edit alone: e(S, D) (``mode="expression"``) or p(S, D) (``"pose"``) and, for the
    self-reconstruction, the same edit of S by itself, in one batched generator pass. The other
    path is not run."""

    def __init__(self, model: DPE, mode: str, with_self_reconstruction: bool) -> None:
        super().__init__()
        self.model = model
        self.mode = mode
        self.with_self_reconstruction = with_self_reconstruction

    def forward(self, source: Tensor, driving: Tensor) -> dict[str, Tensor]:
        m = self.model
        apply = m.apply_expression if self.mode == "expression" else m.apply_pose
        enc_s = m.encode(source)
        motion_s, motion_d = m.motion(enc_s.latent), m.motion(m.encode(driving).latent)
        images = {"motion_s": motion_s, "motion_d": motion_d}
        if not self.with_self_reconstruction:
            return {**images, "edited": apply(enc_s, motion_d)}
        twice = Encoding(torch.cat([enc_s.latent, enc_s.latent]), [torch.cat([f, f]) for f in enc_s.features])
        edited, itself = apply(twice, torch.cat([motion_d, motion_s])).chunk(2)
        return {**images, "edited": edited, "self_edited": itself}


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


def _pair_means(per_sample: Tensor, pairs: int) -> Tensor:
    """Sum over pairs of the batch mean, for ``pairs`` equal chunks batched together."""
    return per_sample.view(pairs, -1).mean(dim=1).sum()


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return F.l1_loss(a.float(), b.float())


class GeneratorObjective:
    """Computes the weighted generator loss and its terms (unweighted, for logging).

    A term whose weight is 0, or whose network was not given, is skipped entirely (no compute).
    """

    fakes = ("s_cycle", "d_cycle")  # what the discriminator sees
    shown = (("S'", "s_expression"), ("S''", "s_cycle"), ("D'", "d_pose"), ("D''", "d_cycle"))  # sample grids

    def __init__(self, weights: LossWeights, perceptual: PerceptualPyramidLoss | None, expression: FactorLoss | None,
                 pose: FactorLoss | None = None, motion: MotionTerm | None = None) -> None:
        self.weights = weights
        self.perceptual = perceptual if weights.perceptual or weights.self_reconstruction else None
        self.expression = expression if weights.expression else None
        self.pose = pose if weights.pose else None
        self.motion = motion if weights.motion else None

    @property
    def needs_self_reconstruction(self) -> bool:
        return self.weights.self_reconstruction > 0

    def network(self, model: DPE, preview: bool = False) -> nn.Module:
        """The forward pass this loss reads (a preview skips the self-reconstructions)."""
        return CycleGenerator(model, self.needs_self_reconstruction and not preview)

    def active_terms(self) -> list[str]:
        w = self.weights
        terms = ["reconstruction"] if w.reconstruction else []
        if self.perceptual is not None and w.perceptual:
            terms.append("perceptual")
        if self.needs_self_reconstruction:
            terms.append("self_reconstruction")
        if self.expression is not None:
            terms.append("expression")
        if self.pose is not None:
            terms.append("pose")
        if self.motion is not None:
            terms.append("motion")
        if w.adversarial:
            terms.append("adversarial")
        return terms

    def __call__(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> tuple[Tensor, dict[str, Tensor]]:
        w = self.weights
        s1, s2, d1, d2 = images["s_expression"], images["s_cycle"], images["d_pose"], images["d_cycle"]
        d1_target = d1.detach()  # asymmetric back-propagation: <S', D'> never updates p
        terms: dict[str, Tensor] = {}
        if w.reconstruction:
            terms["reconstruction"] = _l1(s2, driving) + _l1(d2, source) + _l1(s1, d1_target)
        if self.perceptual is not None:
            predictions, targets = [], []
            if w.perceptual:
                predictions += [s2, d2, s1]
                targets += [driving, source, d1_target]
            if self.needs_self_reconstruction:
                predictions += [images["self_expression"], images["self_pose"]]
                targets += [source, source]
            pairs = len(predictions)
            if pairs:
                per_sample = self.perceptual.per_sample(torch.cat(predictions), torch.cat(targets))
                per_pair = per_sample.view(pairs, -1).mean(dim=1)
                if w.perceptual:
                    terms["perceptual"] = per_pair[:3].sum()
                if self.needs_self_reconstruction:
                    terms["self_reconstruction"] = per_pair[-2:].sum()
        elif self.needs_self_reconstruction:
            # Without VGG, L1 keeps the paper's constraint (its ablation needs it on and off).
            terms["self_reconstruction"] = _l1(images["self_expression"], source) + _l1(images["self_pose"], source)
        if self.expression is not None:
            per_sample = self.expression.per_sample(torch.cat([s1, d1]), driving)
            terms["expression"] = _pair_means(per_sample, 2)
        if self.pose is not None:
            # Both intermediates should have S's head pose: S' keeps it, D' takes it.
            per_sample = self.pose.per_sample(torch.cat([s1, d1]), source)
            terms["pose"] = _pair_means(per_sample, 2)
        if self.motion is not None:
            terms["motion"] = self.motion(images["motion_s"], images["motion_d"], source, driving)
        if w.adversarial and discriminator is not None:
            scores = discriminator(torch.cat([s2, d2])).float()
            terms["adversarial"] = _pair_means(F.softplus(-scores).flatten(), 2)
        total = sum((getattr(w, name) * value for name, value in terms.items()), torch.zeros((), device=source.device))
        return total, terms


class ReenactmentObjective:
    """The generator loss of :class:`ReenactmentGenerator`: L1, perceptual (or the pixel pyramid),
    expression and GAN terms on <G_p(w_S + H_p(d_D), F_S), D>, with the cyclic objective's
    weights. The expression term makes the latent carry expressions from the start: small
    features such as a mouth cost too few pixels for the image terms to teach them early."""

    fakes = ("reenacted",)
    shown = (("S->D", "reenacted"),)

    def __init__(self, weights: LossWeights, perceptual: PerceptualPyramidLoss | None, expression: FactorLoss | None,
                 motion: MotionTerm | None = None) -> None:
        self.weights = weights
        self.perceptual = perceptual if weights.perceptual else None
        self.expression = expression if weights.expression else None
        self.motion = motion if weights.motion else None

    def network(self, model: DPE, preview: bool = False) -> nn.Module:
        return ReenactmentGenerator(model)

    def active_terms(self) -> list[str]:
        w = self.weights
        terms = ["reconstruction"] if w.reconstruction else []
        if self.perceptual is not None:
            terms.append("perceptual")
        if self.expression is not None:
            terms.append("expression")
        if self.motion is not None:
            terms.append("motion")
        if w.adversarial:
            terms.append("adversarial")
        return terms

    def __call__(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> tuple[Tensor, dict[str, Tensor]]:
        w, out = self.weights, images["reenacted"]
        terms: dict[str, Tensor] = {}
        if w.reconstruction:
            terms["reconstruction"] = _l1(out, driving)
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual.per_sample(out, driving).mean()
        if self.expression is not None:
            terms["expression"] = self.expression.per_sample(out, driving).mean()
        if self.motion is not None:
            terms["motion"] = self.motion(images["motion_s"], images["motion_d"], source, driving)
        if w.adversarial and discriminator is not None:
            terms["adversarial"] = F.softplus(-discriminator(out).float()).mean()
        total = sum((getattr(w, name) * value for name, value in terms.items()), torch.zeros((), device=source.device))
        return total, terms


class SingleEditObjective:
    """Refines one edit alone (ours): e(S, D) should read D's expression and S's head pose, or
    p(S, D) D's head pose and S's expression (the expression and head-pose terms, each against
    the image whose factor the edit should show), and the edit of S by itself should be S
    (self-reconstruction: the perceptual or pixel pyramid, else L1).

    Why: in the cyclic objective the factor terms compete with five image terms in which a mouth
    or a brow is a few pixels, and the expression generator must learn a latent shift about as
    large as the latent itself to open a mouth; on the synthetic faces cyclic training did not
    teach it that in thousands of steps, while alone with the factor terms it learns it."""

    fakes = ("edited",)

    def __init__(self, mode: str, weights: LossWeights, perceptual: PerceptualPyramidLoss | None, expression: FactorLoss | None,
                 pose: FactorLoss | None = None) -> None:
        self.mode = mode
        self.shown = (("e(S,D)" if mode == "expression" else "p(S,D)", "edited"),)
        self.weights = weights
        self.perceptual = perceptual if weights.self_reconstruction else None
        self.expression = expression if weights.expression else None
        self.pose = pose if weights.pose else None

    def network(self, model: DPE, preview: bool = False) -> nn.Module:
        return SingleEditGenerator(model, self.mode, bool(self.weights.self_reconstruction) and not preview)

    def active_terms(self) -> list[str]:
        w = self.weights
        terms = ["self_reconstruction"] if w.self_reconstruction else []
        if self.expression is not None:
            terms.append("expression")
        if self.pose is not None:
            terms.append("pose")
        if w.adversarial:
            terms.append("adversarial")
        return terms

    def __call__(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> tuple[Tensor, dict[str, Tensor]]:
        w, edited = self.weights, images["edited"]
        expression_of, pose_of = (driving, source) if self.mode == "expression" else (source, driving)
        terms: dict[str, Tensor] = {}
        if w.self_reconstruction:
            itself = images["self_edited"]
            terms["self_reconstruction"] = self.perceptual.per_sample(itself, source).mean() if self.perceptual is not None else _l1(itself, source)
        if self.expression is not None:
            terms["expression"] = self.expression.per_sample(edited, expression_of).mean()
        if self.pose is not None:
            terms["pose"] = self.pose.per_sample(edited, pose_of).mean()
        if w.adversarial and discriminator is not None:
            terms["adversarial"] = F.softplus(-discriminator(edited).float()).mean()
        total = sum((getattr(w, name) * value for name, value in terms.items()), torch.zeros((), device=source.device))
        return total, terms


def discriminator_loss(discriminator: nn.Module, source: Tensor, driving: Tensor, fakes: list[Tensor]) -> Tensor:
    """Non-saturating D loss: reals S and D, the generated ``fakes`` (detached; S'' and D''
    in cyclic training).

    Reals and fakes go through in separate passes so that the minibatch-stddev statistic is
    never computed over a mix of the two.
    """
    real = discriminator(torch.cat([source, driving])).float()
    fake = discriminator(torch.cat([f.detach() for f in fakes])).float()
    return _pair_means(F.softplus(-real).flatten(), 2) + _pair_means(F.softplus(fake).flatten(), len(fakes))
