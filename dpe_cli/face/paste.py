"""Paste an edit back into its full-resolution frame.

The model works at 64 or 256 px while the face box of a 1080p video is 500 px or more. Pasting
the model's picture (``replace``, what the reference does) resamples the whole face through
the model's resolution: hair, glasses, eyes and skin that an expression edit never touched
come back soft. ``change`` (the default) keeps the frame's own pixels and adds only what the
edit changes: the difference between the edited crop and a low-resolution *reference* of the
source (the model's own reconstruction of it, which cancels the model's systematic errors, or
the source crop), upsampled to the box. Where that change is large (an opened mouth) the
source's fine detail would remain as a ghost of the old lips, so there the source's detail is
faded out and the model's picture shows instead. An edit that changes nothing therefore
returns the frame bit for bit.

Either way the change is blended under a feathered mask of the chosen face regions, drawn from
face-mesh landmarks that a One-Euro filter steadies over time, so the mask does not shimmer.
Outside the box, and wherever the mask is 0, the output is the input frame, bit for bit.
"""

from __future__ import annotations

import cv2
import numpy as np

from dpe_cli.choices import PASTE_METHODS
from dpe_cli.closing import Closing
from dpe_cli.errors import InputError
from dpe_cli.face.crop import CropBox, box_in_frame, crop, resize_square
from dpe_cli.face.detect import as_rgb
from dpe_cli.face.landmarks import FaceMesh
from dpe_cli.face.regions import DEFAULT_FEATHER, feather, parse_regions, region_mask
from dpe_cli.face.smoothing import OneEuroFilter

# Landmarks are found on the box cut from the frame at this size (mediapipe's mesh looks at
# 192 px), and the mask is drawn there, then scaled to the box.
MESH_SIZE = 256
# Change-aware blend: the per-pixel change (largest channel difference, 0-255, smoothed by
# CHANGE_SIGMA of the crop side) fades the source's own detail out between these levels.
# Chosen on bench/paste_fidelity.py (oracle edits at 64 and 256 px, and the shipped model).
CHANGE_LOW = 6.0
CHANGE_HIGH = 30.0
CHANGE_SIGMA = 0.02


def change_weight(delta: np.ndarray) -> np.ndarray:
    """Per pixel of a crop, 0 where the edit's change is small and 1 where it replaces the face."""
    size = delta.shape[0]
    magnitude = np.abs(delta).max(axis=2)
    sigma = CHANGE_SIGMA * size
    magnitude = cv2.GaussianBlur(magnitude, (0, 0), sigma) if sigma >= 0.3 else magnitude
    return np.clip((magnitude - CHANGE_LOW) / (CHANGE_HIGH - CHANGE_LOW), 0.0, 1.0)


class Paster(Closing):
    """Pastes edited crops into the frames of one video, whose crop box is ``box``.

    ``method`` is ``change`` (keep the frame's detail, add the edit's change; needs the
    ``reference`` crop) or ``replace`` (paste the edited picture). ``mask`` names the regions
    (see :mod:`dpe_cli.face.regions`); ``feather`` is the edge's Gaussian sigma as a fraction
    of the box. ``fps`` paces the landmark filter (``smooth=False`` turns it off). A frame in
    which the mesh finds no face keeps the last landmarks, or the box mask before any;
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
        method: str = "change",
        fps: float = 25.0,
        smooth: bool = True,
    ) -> None:
        if method not in PASTE_METHODS:
            raise InputError(f"--paste {method!r} is not a paste method", f"use one of: {', '.join(PASTE_METHODS)}")
        if not 0.0 < feather <= 0.1:
            raise InputError(f"--feather {feather} is out of range", "use a value in (0, 0.1]")
        self.box = box
        self.frame_w, self.frame_h = frame_w, frame_h
        self.regions = parse_regions(mask)
        self.feather = feather
        self.method = method
        self.frames = 0
        self.fallbacks = 0
        self._visible = box_in_frame(box, frame_w, frame_h)
        self._box_mask: np.ndarray | None = None
        self._points: np.ndarray | None = None  # last landmarks, as fractions of the box
        self._filter = OneEuroFilter(fps) if smooth else None
        self._mesh = FaceMesh(static_image_mode=False) if self.regions != ("box",) else None

    def _feathered(self, region: np.ndarray) -> np.ndarray:
        soft = feather(region, self.feather * region.shape[0])
        return cv2.resize(soft, (self.box.size, self.box.size), interpolation=cv2.INTER_LINEAR)

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """The feathered mask (box side square, float32 in [0, 1]) for this frame of the video.

        Call once per frame, in order: it advances the landmark track.
        """
        if self._mesh is not None:
            points = self._mesh(crop(frame, self.box, MESH_SIZE))
            if points is None:
                self.fallbacks += 1
            else:
                points = points[:, :2] / MESH_SIZE
                self._points = self._filter(points) if self._filter is not None else points
            if self._points is not None:
                sigma = self.feather * MESH_SIZE
                return self._feathered(region_mask(self._points * MESH_SIZE, MESH_SIZE, self.regions, sigma))
        if self._box_mask is None:
            self._box_mask = self._feathered(np.ones((MESH_SIZE, MESH_SIZE), np.uint8))
        return self._box_mask

    def paste(self, frame: np.ndarray, edited: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """A copy of ``frame`` with the edit (square RGB uint8 crop) blended into the box.

        ``reference`` is the crop the edit is measured against (``change`` needs it): the
        model's reconstruction of the source, or the source crop, at the edit's size.
        """
        if frame.shape[:2] != (self.frame_h, self.frame_w):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the paster was made for {self.frame_w}x{self.frame_h}")
        edited = as_rgb(edited)
        if edited.shape[0] != edited.shape[1]:
            raise ValueError(f"the edited crop must be square, got {edited.shape}")
        if self.method == "change":
            if reference is None or reference.shape != edited.shape:
                raise ValueError("the change paste needs a reference crop of the edited crop's size")
            delta = edited.astype(np.float32) - reference.astype(np.float32)
        self.frames += 1
        out = frame.copy()
        x, y, w, h = self._visible
        if w == 0 or h == 0 or (self.method == "change" and not delta.any()):
            return out  # nothing of the box is visible, or the edit changes nothing
        size = self.box.size
        visible = np.s_[y - self.box.y : y - self.box.y + h, x - self.box.x : x - self.box.x + w]
        alpha = self.mask(frame)[visible][..., None]
        src = frame[y : y + h, x : x + w].astype(np.float32)
        if self.method == "replace":
            change = resize_square(edited, size)[visible].astype(np.float32) - src
        else:
            change = cv2.resize(delta, (size, size), interpolation=cv2.INTER_CUBIC)[visible]
            weight = change_weight(delta)
            if weight.any():
                # Where the change is large, drop the source's detail (frame minus the upsampled
                # reference): the result there is the upsampled edit itself, without a ghost.
                fade = cv2.resize(weight, (size, size), interpolation=cv2.INTER_LINEAR)[visible][..., None]
                detail = src - resize_square(reference, size)[visible].astype(np.float32)
                change -= fade * detail
        out[y : y + h, x : x + w] = np.clip(np.rint(src + alpha * change), 0, 255).astype(np.uint8)
        return out

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
