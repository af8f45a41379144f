"""Where an edit is pasted: feathered masks of face regions drawn from face-mesh landmarks.

``face`` is the whole face (the oval, raised over the forehead, whose skin brow edits move);
``mouth`` the lower face from under the nose to below the chin (what speech and dubbing
change, jaw included); ``eyes`` the eyes with their brows; ``box`` the whole crop box. Several
regions may be joined, e.g. ``mouth,eyes``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dpe_cli.choices import DEFAULT_FEATHER, REGIONS
from dpe_cli.errors import InputError
from dpe_cli.face.landmarks import (
    CHIN,
    FACE_OVAL,
    FOREHEAD_TOP,
    LEFT_BROW,
    LEFT_EYE,
    LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
)

# Gaussian sigma as a fraction of the box side. The mask must fall to 0 at the box edge yet be
# 1 on the chin, and in DPE framing the chin is only 0.15 of the box above the bottom edge
# (mesh chin at 0.845-0.854 of the crop height on the DPE demo crops); the ramp spans 5 sigma
# (2.5 each side of its middle), so sigma 0.03 fits it there.
TRUNCATE = 2.5  # the Gaussian kernel's radius in sigmas; the mask is exactly 0 beyond it
# The upper half of the face oval is raised by up to this fraction of the chin-to-forehead
# distance: the oval stops at the top of the forehead and brow edits move skin above it.
FOREHEAD_RAISE = 0.15
GROW = 2.0  # every region is grown by this many sigmas, so the ramp lies mostly outside it
# Part regions reach further, as fractions of the chin-to-forehead distance: an opened jaw
# drops below the source's chin (the mouth region is stretched down by JAW_DROP), and raised
# brows and closing lids move the skin around them (the eyes are grown by EYES_MARGIN).
JAW_DROP = 0.12
EYES_MARGIN = 0.07
LOWER_FACE = 0.3  # oval points below this height (0 chin, 1 forehead top) belong to the mouth


def parse_regions(text: str) -> tuple[str, ...]:
    """``"mouth,eyes"`` -> ("mouth", "eyes"); unknown or empty names are an InputError."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [name for name in names if name not in REGIONS]
    if not names or bad:
        raise InputError(
            f"`mask` {text!r} is not a region", f"use one of {', '.join(REGIONS)}, or several joined by commas"
        )
    if "box" in names and len(names) > 1:
        raise InputError(f"`mask` {text!r} joins box with other regions", "box already holds them all")
    return names


def _height(points: np.ndarray, index: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chosen points, their height along the chin-to-forehead axis (0 chin, 1 top), the axis."""
    chin, top = points[CHIN], points[FOREHEAD_TOP]
    up = top - chin  # follows head roll, unlike the image's vertical
    chosen = points[list(index)]
    return chosen, (chosen - chin) @ up / max(float(up @ up), 1e-6), up


def _fill_hull(region: np.ndarray, points: np.ndarray) -> None:
    hull = cv2.convexHull(points.astype(np.float32))
    cv2.fillConvexPoly(region, np.round(hull * 16).astype(np.int32), 1, cv2.LINE_8, shift=4)


def _grow(region: np.ndarray, pixels: float) -> np.ndarray:
    grow = round(pixels)
    if grow <= 0:
        return region
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate(region, kernel)


def region_mask(points: np.ndarray, size: int, regions: tuple[str, ...], sigma: float, reach: float = 0.0) -> np.ndarray:
    """Binary size x size mask of the regions, from (468+, 2) landmark pixels of a size-px crop,
    grown by ``reach`` more pixels."""
    region = np.zeros((size, size), np.uint8)
    if "box" in regions:
        region[:] = 1
        return region
    face_height = float(np.linalg.norm(points[FOREHEAD_TOP] - points[CHIN]))  # for the margins
    for name in regions:
        part = np.zeros_like(region)
        if name == "face":
            oval, height, up = _height(points, FACE_OVAL)
            raised = oval + FOREHEAD_RAISE * np.clip(2 * height - 1, 0, 1)[:, None] * up
            _fill_hull(part, np.concatenate([oval, raised]))
            margin = 0.0
        elif name == "mouth":
            oval, height, up = _height(points, FACE_OVAL)
            lower = np.concatenate([points[list(LIPS)], oval[height < LOWER_FACE]])
            _fill_hull(part, np.concatenate([lower, lower - JAW_DROP * up]))
            margin = 0.0
        else:  # eyes: one hull per eye with its brow
            for eye in (LEFT_EYE + LEFT_BROW, RIGHT_EYE + RIGHT_BROW):
                _fill_hull(part, points[list(eye)])
            margin = EYES_MARGIN * face_height
        region |= _grow(part, margin)
    return _grow(region, GROW * sigma + reach)


def feather(region: np.ndarray, sigma: float) -> np.ndarray:
    """The region blurred to float32 in [0, 1], exactly 0 within the kernel radius of the edge
    (cleared before the blur, which then cannot reach it), so the paste has no seam there."""
    radius = max(math.ceil(TRUNCATE * sigma), 1)
    soft = np.zeros(region.shape, np.float32)
    inner = np.s_[radius + 1 : -radius - 1, radius + 1 : -radius - 1]
    soft[inner] = region[inner]
    return cv2.GaussianBlur(soft, (2 * radius + 1, 2 * radius + 1), sigma)
