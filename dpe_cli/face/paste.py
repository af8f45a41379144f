"""Paste an edited face crop back into its full frame under a Gaussian-feathered mask.

Only the blend touches the frame: outside the box, and inside it wherever the mask is 0, the
output pixels are the input's own, at full resolution (the reference resamples the whole box
region through 256x256 and back, which blurs it even where nothing was edited).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dpe_cli.closing import Closing
from dpe_cli.errors import InputError
from dpe_cli.face.crop import CropBox, box_in_frame, resize_square
from dpe_cli.face.detect import as_rgb
from dpe_cli.face.landmarks import CHIN, FACE_OVAL, FOREHEAD_TOP, FaceMesh

MASKS = ("face", "box")
# Gaussian sigma as a fraction of the box side. The mask must fall to 0 at the box edge yet be
# 1 on the chin, and in DPE framing the chin is only 0.15 of the box above the bottom edge
# (mesh chin at 0.845-0.854 of the crop height on the DPE demo crops); the ramp spans 5 sigma
# (2.5 each side of its middle), so sigma 0.03 fits it there.
DEFAULT_FEATHER = 0.03
TRUNCATE = 2.5  # the Gaussian kernel's radius in sigmas; the mask is exactly 0 beyond it
# The upper half of the face oval is raised by up to this fraction of the chin-to-forehead
# distance: the oval stops at the top of the forehead and brow edits move skin above it.
FOREHEAD_RAISE = 0.15
GROW = 2.0  # the face region is grown by this many sigmas, so the ramp lies mostly outside it


class Paster(Closing):
    """Pastes edited crops into the frames of one video, whose crop box is ``box``.

    ``mask="face"`` blends only the face (the hull of the face-mesh oval, raised over the
    forehead), keeping the original hair, ears and background; ``mask="box"`` blends the whole
    box with feathered edges. A crop in which the mesh finds no face falls back to the box mask;
    ``fallbacks`` counts those frames (of ``frames`` pasted) for the caller to report.
    """

    def __init__(
        self,
        box: CropBox,
        frame_w: int,
        frame_h: int,
        *,
        mask: str = "face",
        feather: float = DEFAULT_FEATHER,
    ) -> None:
        if mask not in MASKS:
            raise InputError(f"unknown mask {mask!r}", f"use one of: {', '.join(MASKS)}")
        if not 0.0 < feather <= 0.1:
            raise InputError(f"feather {feather} is out of range", "use a value in (0, 0.1]")
        self.box = box
        self.frame_w, self.frame_h = frame_w, frame_h
        self.mask = mask
        self.feather = feather
        self.frames = 0
        self.fallbacks = 0
        self._visible = box_in_frame(box, frame_w, frame_h)
        self._box_masks: dict[int, np.ndarray] = {}  # per crop size: the same for every frame
        self._mesh = FaceMesh(static_image_mode=False) if mask == "face" else None

    def paste(
        self, frame: np.ndarray, edited_crop: np.ndarray, source_crop: np.ndarray | None = None
    ) -> np.ndarray:
        """A copy of ``frame`` with ``edited_crop`` (square RGB uint8) blended into the box.

        The face mask follows the landmarks of ``source_crop`` when given, else of the edited
        crop (whose face shape, e.g. an opened jaw, is the one being pasted).
        """
        if frame.shape[:2] != (self.frame_h, self.frame_w):
            raise ValueError(
                f"frame is {frame.shape[1]}x{frame.shape[0]}, "
                f"the paster was made for {self.frame_w}x{self.frame_h}"
            )
        edited_crop = as_rgb(edited_crop)
        if edited_crop.shape[0] != edited_crop.shape[1]:
            raise ValueError(f"the edited crop must be square, got {edited_crop.shape}")
        self.frames += 1
        out = frame.copy()
        x, y, w, h = self._visible
        if w == 0 or h == 0:
            return out
        alpha = cv2.resize(
            self._mask_for(edited_crop if source_crop is None else source_crop),
            (self.box.size, self.box.size),
            interpolation=cv2.INTER_LINEAR,
        )
        edited = resize_square(edited_crop, self.box.size)
        bx, by = x - self.box.x, y - self.box.y
        a = alpha[by : by + h, bx : bx + w, None]
        src = frame[y : y + h, x : x + w].astype(np.float32)
        new = edited[by : by + h, bx : bx + w].astype(np.float32)
        out[y : y + h, x : x + w] = np.rint(src + a * (new - src)).astype(np.uint8)
        return out

    def _mask_for(self, crop: np.ndarray) -> np.ndarray:
        """Feathered mask in [0, 1] at the crop's size; the box mask when the mesh finds no face."""
        size = crop.shape[0]
        sigma = self.feather * size
        if self._mesh is not None:
            points = self._mesh(crop)
            if points is not None:
                return _feather(_face_region(points[:, :2], size, sigma), sigma)
            self.fallbacks += 1
        if size not in self._box_masks:
            self._box_masks[size] = _feather(np.ones((size, size), np.uint8), sigma)
        return self._box_masks[size]

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None


def _face_region(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Binary size x size mask: the hull of the face oval raised over the forehead, grown by
    GROW sigmas."""
    oval = points[list(FACE_OVAL)]
    chin, top = points[CHIN], points[FOREHEAD_TOP]
    up = top - chin  # follows head roll, unlike the image's vertical
    height = (oval - chin) @ up / max(float(up @ up), 1e-6)  # 0 at the chin, 1 at the top
    raised = oval + FOREHEAD_RAISE * np.clip(2 * height - 1, 0, 1)[:, None] * up
    hull = cv2.convexHull(np.concatenate([oval, raised]).astype(np.float32))
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, np.round(hull * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)
    grow = round(GROW * sigma)
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        region = cv2.dilate(region, kernel)
    return region


def _feather(region: np.ndarray, sigma: float) -> np.ndarray:
    """The region blurred to float32 in [0, 1], exactly 0 within the kernel radius of the edge
    (cleared before the blur, which then cannot reach it), so the paste has no seam there."""
    radius = max(math.ceil(TRUNCATE * sigma), 1)
    soft = np.zeros(region.shape, np.float32)
    inner = np.s_[radius + 1 : -radius - 1, radius + 1 : -radius - 1]
    soft[inner] = region[inner]
    return cv2.GaussianBlur(soft, (2 * radius + 1, 2 * radius + 1), sigma)
