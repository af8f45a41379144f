"""The DPE generator: encoder, motion path, expression and pose heads and generators."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from dpe_cli.choices import MODES, Mode
from dpe_cli.errors import InputError
from dpe_cli.model.config import DPEConfig
from dpe_cli.model.encoder import Encoder
from dpe_cli.model.motion import DirectionBasis, LinearStack
from dpe_cli.model.synthesis import Synthesis


@dataclass
class Encoding:
    """What the encoder gives for a batch of faces: the latent and the feature pyramid.

    Kept as an object so that a still source can be encoded once and reused for every
    driving frame (``expand``).
    """

    latent: Tensor
    features: list[Tensor]

    def __len__(self) -> int:
        return self.latent.size(0)

    def expand(self, batch: int) -> "Encoding":
        """The same (single) face repeated ``batch`` times, without copying memory."""
        if len(self) == batch:
            return self
        if len(self) != 1:
            raise ValueError(f"cannot expand an encoding of {len(self)} faces to {batch}")
        return Encoding(
            self.latent.expand(batch, -1),
            [f.expand(batch, -1, -1, -1) for f in self.features],
        )


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise InputError(f"unknown edit mode {mode!r}", "use expression, pose or both")
    return mode  # type: ignore[return-value]


class DPE(nn.Module):
    """Disentangled pose and expression editing (Pang et al., CVPR 2023).

    ``edit(S, D, "expression")`` keeps the pose of S and takes the expression of D;
    ``"pose"`` does the reverse; ``"both"`` applies expression then pose. Editing adds a
    head's output, computed from the driver's motion, to the source latent.
    """

    def __init__(self, config: DPEConfig | None = None) -> None:
        super().__init__()
        self.config = config or DPEConfig()
        style, motion = self.config.style_dim, self.config.motion_dim
        self.encoder = Encoder(self.config)
        self.motion_mlp = LinearStack([style] * 5 + [motion])
        self.directions = DirectionBasis(style, motion)
        self.expression_head = LinearStack([style] * 4)
        self.pose_head = LinearStack([style] * 4)
        self.expression_generator = Synthesis(self.config)
        self.pose_generator = Synthesis(self.config)

    def encode(self, image: Tensor) -> Encoding:
        latent, features = self.encoder(image)
        return Encoding(latent, features)

    def motion(self, latent: Tensor) -> Tensor:
        """The motion vector d = Dir(A(w)) in latent space, from which both heads read."""
        return self.directions(self.motion_mlp(latent))

    def apply_expression(self, source: Encoding, motion: Tensor) -> Tensor:
        """Expression generator G_e(w + H_e(d), F): the pose of ``source`` is kept."""
        return self.expression_generator(source.latent + self.expression_head(motion), source.features)

    def apply_pose(self, source: Encoding, motion: Tensor) -> Tensor:
        """Pose generator G_p(w + H_p(d), F): the expression of ``source`` is kept."""
        return self.pose_generator(source.latent + self.pose_head(motion), source.features)

    def drive(self, source: Encoding, motion: Tensor, mode: Mode = "expression") -> Tensor:
        """Render ``source`` driven by motion vectors (one per sample; see :meth:`motion`)."""
        source = source.expand(motion.size(0))
        if mode == "expression":
            return self.apply_expression(source, motion)
        if mode == "pose":
            return self.apply_pose(source, motion)
        if mode == "both":
            # The intermediate image goes back through the encoder unclamped, as in the reference.
            intermediate = self.encode(self.apply_expression(source, motion))
            return self.apply_pose(intermediate, motion)
        check_mode(mode)
        raise AssertionError("unreachable")

    def edit(self, source: Tensor, driving: Tensor, mode: Mode = "expression") -> Tensor:
        """Edit ``source`` (N x 3 x H x W, RGB in [-1, 1]) with the motion of ``driving``.

        Returns the raw generator output (not clamped), exactly as the reference stages
        ``exp`` / ``pose`` / ``both``. A single source or driver is broadcast over the batch.
        """
        check_mode(mode)
        motion = self.motion(self.encode(driving).latent)
        batch = max(source.size(0), motion.size(0))
        return self.drive(self.encode(source), motion.expand(batch, -1), mode)
