"""Per-frame scores of a generated frame against its references, and their means.

Each metric has its own reference, because the protocols differ in what a generated frame
should match: pixels (PSNR, SSIM, LPIPS) and face geometry against the driver in
reconstruction, identity (CSIM) against the source, expression (AED) and pose (APD) against
the driver or the source depending on the edit. A missing reference means "not measured".

Face metrics need a face in the generated frame and in their reference; a frame where one is
missing gets ``None`` for those metrics, is counted in ``frames_without_face`` and keeps its
pixel metrics. Means are over the frames that have a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpe_cli.closing import Closing
from dpe_cli.eval import facegeom, identity, metrics

METRICS = ("psnr", "ssim", "lpips", "csim", "aed", "apd")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False, "csim": True, "aed": False, "apd": False}
LPIPS_HINT = "LPIPS needs AlexNet and LPIPS weights (nothing downloads): pass --lpips-weights"


class Frame:
    """An RGB uint8 frame whose face analysis is computed once, on first use, and cached;
    share one object wherever the same picture is a reference several times."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.analysed = False
        self.mesh: np.ndarray | None = None
        self.pose: tuple[float, float, float] | None = None
        self.expression: np.ndarray | None = None
        self.embedding: np.ndarray | None = None


@dataclass(frozen=True)
class References:
    """What the generated frame is compared with, metric group by metric group."""

    pixel: Frame | None = None  # PSNR, SSIM, LPIPS
    identity: Frame | None = None  # CSIM
    expression: Frame | None = None  # AED
    pose: Frame | None = None  # APD


class Scorer(Closing):
    """Holds the networks (face mesh, optional dlib and LPIPS) and scores frames."""

    def __init__(self, *, lpips_weights: Sequence[Path] = (), use_identity: bool = True) -> None:
        from dpe_cli.face.landmarks import FaceMesh

        self.unavailable: dict[str, str] = {}
        # Static mode: every frame is analysed on its own, so the generated and reference
        # streams, which alternate through this one mesh, never leak tracking into each other.
        self._mesh = FaceMesh(static_image_mode=True)
        self._lpips = None
        if lpips_weights:
            from dpe_cli.eval.lpips import load_lpips

            self._lpips = load_lpips(list(lpips_weights))
        else:
            self.unavailable["lpips"] = LPIPS_HINT
        self._identity = None
        reason = identity.unavailable_reason() if use_identity else "skipped (--no-csim)"
        if reason is None:
            self._identity = identity.IdentityEncoder()
        else:
            self.unavailable["csim"] = reason

    def close(self) -> None:
        self._mesh.close()

    def _analyse(self, frame: Frame, need_embedding: bool) -> bool:
        """Mesh, pose and expression (and the identity embedding when asked); False without a face."""
        if not frame.analysed:
            frame.analysed = True
            frame.mesh = self._mesh(frame.rgb)
            if frame.mesh is not None:
                frame.pose = facegeom.head_pose(frame.mesh)
                frame.expression = facegeom.expression_descriptor(frame.mesh)
        if frame.mesh is None:
            return False
        if need_embedding and frame.embedding is None and self._identity is not None:
            frame.embedding = self._identity.embed(frame.rgb, frame.mesh)
        return True

    def score(self, generated: Frame, refs: References) -> dict[str, Any]:
        """One row: the six metrics (None when not measured), the head poses, and which inputs
        had no face."""
        row: dict[str, Any] = dict.fromkeys(METRICS)
        row["psnr_capped"] = False
        if refs.pixel is not None:
            ref = refs.pixel.rgb
            row["psnr"], row["psnr_capped"] = metrics.psnr(generated.rgb, ref)
            row["ssim"] = metrics.ssim(generated.rgb, ref)
            if self._lpips is not None:
                row["lpips"] = self._lpips.distance(generated.rgb, ref)
        want_csim = refs.identity is not None and self._identity is not None
        face_refs = {
            "identity_reference": refs.identity if want_csim else None,
            "expression_reference": refs.expression,
            "pose_reference": refs.pose,
        }
        missing = []
        if any(ref is not None for ref in face_refs.values()):
            if not self._analyse(generated, want_csim):
                missing.append("generated")
            for name, ref in face_refs.items():
                if ref is not None and not self._analyse(ref, name == "identity_reference"):
                    missing.append(name)
        has_face = generated.mesh is not None
        if has_face and want_csim and refs.identity.mesh is not None:  # type: ignore[union-attr]
            row["csim"] = identity.cosine(generated.embedding, refs.identity.embedding)  # type: ignore[arg-type,union-attr]
        if has_face and refs.expression is not None and refs.expression.mesh is not None:
            row["aed"] = facegeom.expression_distance(generated.expression, refs.expression.expression)  # type: ignore[arg-type]
        if has_face and refs.pose is not None and refs.pose.mesh is not None:
            row["apd"] = facegeom.pose_distance(generated.pose, refs.pose.pose)  # type: ignore[arg-type]
        for prefix, frame in (("", generated), ("ref_", refs.pose)):
            pose = frame.pose if frame is not None else None
            for axis, value in zip(("yaw", "pitch", "roll"), pose or (None,) * 3):
                row[prefix + axis] = value
        row["no_face"] = ",".join(sorted(set(missing)))
        return row


def summarise(rows: Iterable[dict[str, Any]], unavailable: dict[str, str] | None = None) -> dict[str, Any]:
    """Means over frames: the six metrics (None when no frame has a value), ``psnr_capped``
    (some frame hit the 100 dB cap), ``frames``, ``frames_without_face`` and, under
    ``unavailable``, why a metric could not be computed at all."""
    rows = list(rows)
    out: dict[str, Any] = {}
    for name in METRICS:
        values = [r[name] for r in rows if r.get(name) is not None]
        out[name] = float(np.mean(values)) if values else None
    out["psnr_capped"] = any(r.get("psnr_capped") for r in rows)
    out["frames"] = len(rows)
    out["frames_without_face"] = sum(1 for r in rows if r.get("no_face"))
    out["unavailable"] = dict(unavailable or {})
    return out
