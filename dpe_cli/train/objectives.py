"""The generator objectives of DPE training (paper Eq. 6 to 12) and the forward passes they read.

Notation (paper): S source, D driving, e(X, Y) = X with Y's expression (expression generator),
p(X, Y) = X with Y's pose (pose generator).

    S' = e(S, D)    S'' = p(S', D)    should equal D
    D' = p(D, S)    D'' = e(D', S)    should equal S
    S' and D' both have D's expression and S's pose, so they should equal each other.

Cyclic objective (the paper's)::

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

Each objective pairs a forward pass (an ``nn.Module``, so that DDP can wrap it; named ``...Pass``
to keep them apart from the model's generators) with the terms it computes on the pass's images;
:class:`Objective` weighs and sums the terms once for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dpe_cli.model import DPE, Encoding
from dpe_cli.train.losses import FactorLoss, LossWeights, MotionTerm, l1, pair_means
from dpe_cli.train.options import SINGLE_EDIT, TrainOptions
from dpe_cli.train.vgg import PerceptualPyramidLoss



class CyclicPass(nn.Module):
    """The cyclic objective's forward pass: S', S'', D', D'' and, for the self-reconstruction,
    e(S, S) and p(S, S)."""

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


class ReenactmentPass(nn.Module):
    """LIA's forward pass, from which the paper starts (it initialises from a trained LIA): S
    driven by all of D's motion, G_p(w_S + H_p(d_D), F_S), should be D.

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


class SingleEditPass(nn.Module):
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


class Objective(ABC):
    """What the training loop needs of a generator objective: its forward pass, its terms
    (unweighted, for logging) and their weighted sum, which is the same for every objective.

    A term whose weight is 0, or whose network was not given, is skipped entirely (no compute).
    """

    fakes: tuple[str, ...]  # the images of the pass that the discriminator sees
    shown: tuple[tuple[str, str], ...]  # sample-grid columns after S and D: (label, image key)
    perceptual_terms: tuple[str, ...]  # the weights under which the perceptual network is read

    def __init__(self, weights: LossWeights, perceptual: PerceptualPyramidLoss | None = None, expression: FactorLoss | None = None,
                 pose: FactorLoss | None = None, motion: MotionTerm | None = None) -> None:  # fmt: skip
        self.weights = weights
        self.perceptual = perceptual if any(getattr(weights, term) for term in self.perceptual_terms) else None
        self.expression = expression if weights.expression else None
        self.pose = pose if weights.pose else None
        self.motion = motion if weights.motion else None

    def networks(self) -> list[nn.Module]:
        """The frozen loss networks this objective reads."""
        return [net for net in (self.perceptual, self.expression, self.pose, self.motion) if net is not None]

    @abstractmethod
    def forward_pass(self, model: DPE, preview: bool = False) -> nn.Module:
        """The pass whose images :meth:`terms` reads (a preview skips the self-reconstructions)."""

    @abstractmethod
    def active_terms(self) -> list[str]:
        """The terms that will be computed, in logging order."""

    @abstractmethod
    def terms(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> dict[str, Tensor]:
        """The unweighted terms, named as the fields of :class:`LossWeights`."""

    def __call__(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The weighted total and the terms."""
        terms = self.terms(images, source, driving, discriminator)
        total = sum((getattr(self.weights, name) * value for name, value in terms.items()), torch.zeros((), device=source.device))
        return total, terms


class CyclicObjective(Objective):
    """The paper's bidirectional cyclic objective, with the head-pose and motion terms (ours)."""

    fakes = ("s_cycle", "d_cycle")
    shown = (("S'", "s_expression"), ("S''", "s_cycle"), ("D'", "d_pose"), ("D''", "d_cycle"))
    perceptual_terms = ("perceptual", "self_reconstruction")

    @property
    def needs_self_reconstruction(self) -> bool:
        return self.weights.self_reconstruction > 0

    def forward_pass(self, model: DPE, preview: bool = False) -> nn.Module:
        return CyclicPass(model, self.needs_self_reconstruction and not preview)

    def active_terms(self) -> list[str]:
        w = self.weights
        terms = ["reconstruction"] if w.reconstruction else []
        if self.perceptual is not None and w.perceptual:
            terms.append("perceptual")
        if self.needs_self_reconstruction:
            terms.append("self_reconstruction")
        terms += [name for name in ("expression", "pose", "motion") if getattr(self, name) is not None]
        if w.adversarial:
            terms.append("adversarial")
        return terms

    def terms(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> dict[str, Tensor]:
        w = self.weights
        s1, s2, d1, d2 = images["s_expression"], images["s_cycle"], images["d_pose"], images["d_cycle"]
        d1_target = d1.detach()  # asymmetric back-propagation: <S', D'> never updates p
        terms: dict[str, Tensor] = {}
        if w.reconstruction:
            terms["reconstruction"] = l1(s2, driving) + l1(d2, source) + l1(s1, d1_target)
        if self.perceptual is not None:
            predictions, targets = [], []
            if w.perceptual:
                predictions += [s2, d2, s1]
                targets += [driving, source, d1_target]
            if self.needs_self_reconstruction:
                predictions += [images["self_expression"], images["self_pose"]]
                targets += [source, source]
            if predictions:
                per_sample = self.perceptual.per_sample(torch.cat(predictions), torch.cat(targets))
                per_pair = per_sample.view(len(predictions), -1).mean(dim=1)
                if w.perceptual:
                    terms["perceptual"] = per_pair[:3].sum()
                if self.needs_self_reconstruction:
                    terms["self_reconstruction"] = per_pair[-2:].sum()
        elif self.needs_self_reconstruction:
            # Without VGG, L1 keeps the paper's constraint (its ablation needs it on and off).
            terms["self_reconstruction"] = l1(images["self_expression"], source) + l1(images["self_pose"], source)
        if self.expression is not None:
            terms["expression"] = pair_means(self.expression.per_sample(torch.cat([s1, d1]), driving), 2)
        if self.pose is not None:
            # Both intermediates should have S's head pose: S' keeps it, D' takes it.
            terms["pose"] = pair_means(self.pose.per_sample(torch.cat([s1, d1]), source), 2)
        if self.motion is not None:
            terms["motion"] = self.motion(images["motion_s"], images["motion_d"], source, driving)
        if w.adversarial and discriminator is not None:
            scores = discriminator(torch.cat([s2, d2])).float()
            terms["adversarial"] = pair_means(F.softplus(-scores).flatten(), 2)
        return terms


class ReenactmentObjective(Objective):
    """The loss of :class:`ReenactmentPass`: L1, perceptual (or the pixel pyramid), expression
    and GAN terms on <G_p(w_S + H_p(d_D), F_S), D>, with the cyclic objective's weights. The
    expression term makes the latent carry expressions from the start: small features such as
    a mouth cost too few pixels for the image terms to teach them early."""

    fakes = ("reenacted",)
    shown = (("S->D", "reenacted"),)
    perceptual_terms = ("perceptual",)

    def forward_pass(self, model: DPE, preview: bool = False) -> nn.Module:
        return ReenactmentPass(model)

    def active_terms(self) -> list[str]:
        terms = ["reconstruction"] if self.weights.reconstruction else []
        terms += [name for name in ("perceptual", "expression", "motion") if getattr(self, name) is not None]
        if self.weights.adversarial:
            terms.append("adversarial")
        return terms

    def terms(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> dict[str, Tensor]:
        w, out = self.weights, images["reenacted"]
        terms: dict[str, Tensor] = {}
        if w.reconstruction:
            terms["reconstruction"] = l1(out, driving)
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual.per_sample(out, driving).mean()
        if self.expression is not None:
            terms["expression"] = self.expression.per_sample(out, driving).mean()
        if self.motion is not None:
            terms["motion"] = self.motion(images["motion_s"], images["motion_d"], source, driving)
        if w.adversarial and discriminator is not None:
            terms["adversarial"] = F.softplus(-discriminator(out).float()).mean()
        return terms


class SingleEditObjective(Objective):
    """Refines one edit alone (ours): e(S, D) should read D's expression and S's head pose, or
    p(S, D) D's head pose and S's expression (the expression and head-pose terms, each against
    the image whose factor the edit should show), and the edit of S by itself should be S
    (self-reconstruction: the perceptual or pixel pyramid, else L1).

    Why: in the cyclic objective the factor terms compete with five image terms in which a mouth
    or a brow is a few pixels, and the expression generator must learn a latent shift about as
    large as the latent itself to open a mouth; on the synthetic faces cyclic training did not
    teach it that in thousands of steps, while alone with the factor terms it learns it."""

    fakes = ("edited",)
    perceptual_terms = ("self_reconstruction",)

    def __init__(self, mode: str, weights: LossWeights, perceptual: PerceptualPyramidLoss | None = None,
                 expression: FactorLoss | None = None, pose: FactorLoss | None = None) -> None:  # fmt: skip
        super().__init__(weights, perceptual, expression, pose)
        self.mode = mode
        self.shown = (("e(S,D)" if mode == "expression" else "p(S,D)", "edited"),)

    def forward_pass(self, model: DPE, preview: bool = False) -> nn.Module:
        return SingleEditPass(model, self.mode, bool(self.weights.self_reconstruction) and not preview)

    def active_terms(self) -> list[str]:
        terms = ["self_reconstruction"] if self.weights.self_reconstruction else []
        terms += [name for name in ("expression", "pose") if getattr(self, name) is not None]
        if self.weights.adversarial:
            terms.append("adversarial")
        return terms

    def terms(self, images: dict[str, Tensor], source: Tensor, driving: Tensor, discriminator: nn.Module | None) -> dict[str, Tensor]:
        w, edited = self.weights, images["edited"]
        expression_of, pose_of = (driving, source) if self.mode == "expression" else (source, driving)
        terms: dict[str, Tensor] = {}
        if w.self_reconstruction:
            itself = images["self_edited"]
            terms["self_reconstruction"] = self.perceptual.per_sample(itself, source).mean() if self.perceptual is not None else l1(itself, source)
        if self.expression is not None:
            terms["expression"] = self.expression.per_sample(edited, expression_of).mean()
        if self.pose is not None:
            terms["pose"] = self.pose.per_sample(edited, pose_of).mean()
        if w.adversarial and discriminator is not None:
            terms["adversarial"] = F.softplus(-discriminator(edited).float()).mean()
        return terms


def build_objective(options: TrainOptions, device: torch.device, say: Callable[[str], None], warn: Callable[[str], None]) -> Objective:
    """The run's objective with its loss networks loaded (``options`` are resolved, so every file
    a weight needs was given); says which terms fall back or are off for lack of a file."""
    from dpe_cli.train.expression import load_expression_encoder
    from dpe_cli.train.vgg import load_vgg19

    o, weights = options, options.loss_weights
    perceptual = expression = pose = motion = None
    if o.vgg_weights is not None and (weights.perceptual or weights.self_reconstruction):
        perceptual = PerceptualPyramidLoss(load_vgg19(o.vgg_weights), o.size).to(device)
    elif o.pixel_pyramid and (weights.perceptual or weights.self_reconstruction):
        say("perceptual and self-reconstruction terms use the L1 image pyramid (--pixel-pyramid, no VGG19)")
        perceptual = PerceptualPyramidLoss.pixels(o.size).to(device)
    elif weights.perceptual or weights.self_reconstruction:
        warn("perceptual loss is OFF and self-reconstruction uses L1: no --vgg-weights given (torchvision's vgg19-dcbb9e9d.pth; or --pixel-pyramid)")
    reader = load_expression_encoder(o.expression_weights) if o.expression_weights is not None and (weights.expression or weights.motion) else None
    if reader is not None and weights.motion:
        motion = MotionTerm(reader, o.style_dim, o.motion_dim, o.size).to(device)
    if reader is not None and weights.expression:
        expression = FactorLoss(reader).to(device)
    elif weights.expression:
        warn("expression loss is OFF: no --expression-weights given (DECA's deca_model.tar, EMOCA, or dpe's expression regressor)")
    if weights.pose and o.objective == "reenactment":
        warn("--pose-weight is ignored with --objective reenactment (the head-pose term is part of the cyclic objective)")
    elif weights.pose:
        pose = FactorLoss(load_expression_encoder(o.pose_weights, "pose")).to(device)
    if o.objective == "reenactment":
        return ReenactmentObjective(weights, perceptual, expression, motion=motion)
    if o.objective in SINGLE_EDIT:
        return SingleEditObjective(o.objective, weights, perceptual, expression, pose)
    return CyclicObjective(weights, perceptual, expression, pose, motion)
