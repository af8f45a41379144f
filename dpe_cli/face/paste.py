"""Paste an edit back into its full-resolution frame.

The model works at 64 or 256 px while the face box of a 1080p video is 500 px or more. Pasting
the model's picture (``replace``, what the reference does) resamples the whole face through
the model's resolution: hair, glasses, eyes and skin that an expression edit never touched
come back soft. ``change`` (the default) keeps the frame's own pixels and adds only what the
edit changes: the difference between the edited crop and a low-resolution *reference* of the
source (the model's own reconstruction of it, which cancels the model's systematic errors, or
the source crop), upsampled to the box.

Where the face moves (lips part, eyelids close) the frame's own detail sits in the wrong
place. ``change`` therefore first moves it: the optical flow from the edited crop to the
reference, upsampled to the box, warps the frame's pixels wherever the edit changes the face
and the warp explains that change; the change is then measured against the warped frame, so
sharp lips and lids follow the edit instead of staying behind as a ghost. Where the change is
still large (teeth that appear), the detail is faded out and the model's picture shows,
sharpened by a back-projection step so that it agrees with the edit at the model's size.
``change-fast`` skips the flow and the sharpening (the frame's detail only fades out where the
face changes). An edit that changes nothing returns the frame bit for bit.

Either way the change is blended under a feathered mask of the chosen face regions, drawn from
face-mesh landmarks that a One-Euro filter steadies over time, so the mask does not shimmer.
Outside the box, and wherever the mask is 0, the output is the input frame, bit for bit.
All constants below were chosen on bench/paste_fidelity.py (oracle edits at 64 and 256 px and
the shipped model; the README has the table).
"""

from __future__ import annotations

from typing import NamedTuple

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
CHANGE_LOW = 6.0
CHANGE_HIGH = 30.0
CHANGE_SIGMA = 0.02
# Motion: the frame's detail follows the flow where the change passes MOVE_LOW..MOVE_HIGH, and
# only as far as the warp brings the reference closer to the edit (full trust at a gain of
# MOVE_TRUST levels). The flow is found at FLOW_SCALE times the model's size, at most FLOW_MAX px
# (and at most the box): finer flow gained nothing on the benchmark and costs time.
MOVE_LOW = 2.0
MOVE_HIGH = 8.0
MOVE_TRUST = 10.0
FLOW_SCALE = 3
FLOW_MAX = 384
# Variational refinement steps of the flow at each scale: the preset's 5 cost a quarter more
# time for under 0.06 dB over the face box on both benchmarks (0.35 dB where a 64-px edit
# keeps the face, at 48 dB).
FLOW_REFINE = 2
# A part of a crop enlarged to the box that covers more than 1/RESIZE_WHOLE of the box is cut
# from the whole crop resized: cv2.resize is separable, 4-10x cheaper per pixel than sampling
# the part alone with warpAffine, but it writes the whole box (which costs the caches).
RESIZE_WHOLE = 2
# A box pixel that the flow moves by less than this (in pixels) is copied, not resampled.
MOVE_EPS = 1e-3
SHARPEN_STEPS = 1
# The change methods reach this fraction of the box beyond the regions' landmarks: a jaw that
# drops or a cheek that widens leaves the source's outline, and where the edit changes nothing
# a larger mask adds nothing. (``replace`` keeps the exact regions: it would blur what it covers.)
CHANGE_REACH = 0.02


def _ramp(magnitude: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 below ``low``, 1 above ``high``, linear between: a per-pixel weight from a change
    (smoothed first by a Gaussian of CHANGE_SIGMA times the crop side, cut at three sigmas:
    OpenCV's default four cost 40 % more for a hundredth of a grey level)."""
    sigma = CHANGE_SIGMA * magnitude.shape[0]
    if sigma >= 0.3:
        reach = 2 * int(np.ceil(3 * sigma)) + 1
        magnitude = cv2.GaussianBlur(magnitude, (reach, reach), sigma)
    return np.clip((magnitude - low) / (high - low), 0.0, 1.0)


def _largest_channel(delta: np.ndarray) -> np.ndarray:
    """Per pixel, the largest absolute channel of an RGB difference (three elementwise maxima:
    several times faster than a reduction over the last axis)."""
    magnitude = np.abs(delta)
    return np.maximum(np.maximum(magnitude[..., 0], magnitude[..., 1]), magnitude[..., 2])


def _channels(weight: np.ndarray, count: int) -> np.ndarray:
    """A weight map repeated over ``count`` channels: multiplying by this is several times faster
    than broadcasting over a channel axis of 1."""
    return cv2.merge([weight] * count)


def change_weight(delta: np.ndarray) -> np.ndarray:
    """Per pixel of a crop, 0 where the edit's change is small and 1 where it replaces the face."""
    return _ramp(_largest_channel(delta), CHANGE_LOW, CHANGE_HIGH)


def _stretch(weight: np.ndarray, size: int) -> np.ndarray:
    """A weight map resized to size x size, linearly (no over- or undershoot)."""
    return cv2.resize(weight, (size, size), interpolation=cv2.INTER_LINEAR)


def _seen_small(image: np.ndarray, side: int, size: int, rows: tuple[int, int], cols: tuple[int, int],
                origin: tuple[int, int] = (0, 0), zero_outside: bool = False) -> np.ndarray:
    """Rows ``rows`` and columns ``cols`` (half-open) of a side x side box image as the edit's
    size sees it: resampled linearly to the whole multiple of ``size`` nearest ``side``, then
    area-averaged by that whole factor. Area averaging by a fractional factor costs twice as
    much, the two agree within 0.03 dB on the benchmark, and this can be computed for any
    rectangle of the output at the same sampling points as for the whole (warpAffine rounds
    them to 1/32 of a pixel; most of a whole box is resized whole). ``image`` may be a part of the box whose
    top-left pixel is ``origin`` (y, x): either one that reaches past what these pixels read, or,
    with ``zero_outside``, a difference that is 0 elsewhere."""
    factor = max(1, round(side / size))
    scale = side / (factor * size)
    (r0, r1), (c0, c1) = rows, cols
    if image.shape[:2] == (side, side) and (r1 - r0) * (c1 - c0) * RESIZE_WHOLE > size * size:
        # Most of a whole box: cut from it resized whole, which samples the same points.
        larger = cv2.resize(image, (factor * size, factor * size), interpolation=cv2.INTER_LINEAR)
        larger = larger[factor * r0 : factor * r1, factor * c0 : factor * c1]
    else:
        # Pixel (u, v) of the multiple-size image samples the box at ((u + 0.5) * scale - 0.5, ...).
        to_image = np.float32([[scale, 0, (factor * c0 + 0.5) * scale - 0.5 - origin[1]],
                               [0, scale, (factor * r0 + 0.5) * scale - 0.5 - origin[0]]])
        border = cv2.BORDER_CONSTANT if zero_outside else cv2.BORDER_REPLICATE
        larger = cv2.warpAffine(image, to_image, (factor * (c1 - c0), factor * (r1 - r0)),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)
    return larger if factor == 1 else cv2.resize(larger, (c1 - c0, r1 - r0), interpolation=cv2.INTER_AREA)


def _small_span(start: int, stop: int, side: int, size: int, margin: int) -> tuple[int, int]:
    """The edit-size pixels whose view of box pixels [start, stop) reaches them, plus ``margin``."""
    return max(0, start * size // side - margin - 1), min(size, -(-stop * size // side) + margin + 1)


class _Rect:
    """The rectangle around a crop's nonzero weights (plus a margin), in the crop's pixels
    and in the box's: the costly steps run only where the edit changes something. Enlarging
    into it samples exactly where enlarging the whole crop would, so nothing shifts."""

    def __init__(self, weight: np.ndarray, side: int) -> None:
        size = weight.shape[0]
        nonzero = weight > 0
        rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
        margin = max(2, round(0.06 * size))
        self.small = (max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, size),
                      max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, size))
        self.large = tuple(round(v * side / size) for v in self.small)
        self._side = side

    @classmethod
    def part(cls, side: int, bounds: tuple[int, int, int, int]) -> _Rect:
        """A rectangle (y0, y1, x0, x1) of a crop of this side, as a rectangle of itself."""
        rect = cls.__new__(cls)
        rect.small = rect.large = bounds
        rect._side = side
        return rect

    def within(self, bounds: tuple[int, int, int, int] | None) -> _Rect | None:
        """This rectangle cut down to ``bounds`` (in the box's pixels), or None where they do not meet."""
        if bounds is None:
            return None
        y0, y1, x0, x1 = self.large
        y0, y1, x0, x1 = max(y0, bounds[0]), min(y1, bounds[1]), max(x0, bounds[2]), min(x1, bounds[3])
        if y0 >= y1 or x0 >= x1:
            return None
        return _Rect.part(self._side, (y0, y1, x0, x1))

    def of_large(self, image: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.large
        return image[y0:y1, x0:x1]

    def enlarged(self, image: np.ndarray, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
        """The large rectangle's part of ``image`` (the whole crop, at any size) enlarged to the
        box (a large one cut from the whole crop resized, see RESIZE_WHOLE)."""
        y0, y1, x0, x1 = self.large
        if (y1 - y0) * (x1 - x0) * RESIZE_WHOLE > self._side**2:
            return cv2.resize(image, (self._side, self._side), interpolation=interpolation)[y0:y1, x0:x1]
        scale = image.shape[0] / self._side
        # Box pixel (x, y) sits at image coordinate ((x + 0.5) * scale - 0.5), as in cv2.resize.
        to_image = np.float32([[scale, 0, (x0 + 0.5) * scale - 0.5], [0, scale, (y0 + 0.5) * scale - 0.5]])
        return cv2.warpAffine(image, to_image, (x1 - x0, y1 - y0), flags=interpolation | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)


def _moving_part(field: np.ndarray, side: int, part: tuple[int, int, int, int]) -> tuple[int, int, int, int] | None:
    """The rectangle (y0, y1, x0, x1, in the box's pixels) outside which ``field`` (over the
    whole crop, at its own resolution, 0 outside ``part`` of it) moves no box pixel by MOVE_EPS
    of a pixel or more, or None where it moves nothing: warping outside it would copy the pixels."""
    scale = side / field.shape[0]
    inner = field[part[0] : part[1], part[2] : part[3]]
    moves = np.maximum(np.abs(inner[..., 0]), np.abs(inner[..., 1])) >= MOVE_EPS / scale
    rows, cols = np.flatnonzero(moves.any(axis=1)) + part[0], np.flatnonzero(moves.any(axis=0)) + part[2]
    if rows.size == 0:
        return None
    # A box pixel reads the field bilinearly: one field pixel of margin covers its neighbours.
    y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, field.shape[0])
    x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, field.shape[1])
    return (int(np.floor(y0 * scale)), int(np.ceil(y1 * scale)), int(np.floor(x0 * scale)), int(np.ceil(x1 * scale)))


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """The smallest rectangle (y0, y1, x0, x1) holding both."""
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


class _Move(NamedTuple):
    """The frame's detail moved with the edit: within ``rect`` (of the box; None where the
    trusted flow moves nothing), the moved box minus the box (``difference``), and how that
    changes the box seen at the edit's size (``shift``)."""

    rect: _Rect | None
    difference: np.ndarray | None
    shift: np.ndarray

    def add_to(self, target: np.ndarray, at: tuple[int, int, int, int]) -> None:
        """Adds the difference to ``target``, a part of the box at (y0, y1, x0, x1), where they overlap."""
        if self.rect is None:
            return
        moved = self.rect.large
        y0, y1, x0, x1 = max(at[0], moved[0]), min(at[1], moved[1]), max(at[2], moved[2]), min(at[3], moved[3])
        if y0 < y1 and x0 < x1:
            target[y0 - at[0] : y1 - at[0], x0 - at[2] : x1 - at[2]] += \
                self.difference[y0 - moved[0] : y1 - moved[0], x0 - moved[2] : x1 - moved[2]]


class _DetailMover:
    """Moves a box's full-resolution pixels along the motion between two model-size crops.

    ``steady`` (a One-Euro filter, or None) smooths the displacement over a video's frames, in
    fractions of the crop like the landmarks: flow found on noisy frames jitters, and edges
    moved by it would shimmer where the edit holds still.
    """

    def __init__(self, steady: OneEuroFilter | None) -> None:
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._flow.setFinestScale(0)
        self._flow.setVariationalRefinementIterations(FLOW_REFINE)
        self._steady = steady
        # The flow's resolution and the rectangle (at it) outside which every field since the
        # filter's reset was 0: the filter runs only there.
        self._touched: tuple[int, tuple[int, int, int, int]] | None = None
        self._grids: dict[int, np.ndarray] = {}  # side -> (x, y) of every pixel, side x side x 2
        self._kept: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # a box and its _views

    def _grid(self, rect: _Rect, side: int) -> np.ndarray:
        """The pixel coordinates (x, y) of the rectangle's large part, of a box of this side."""
        if side not in self._grids:
            if len(self._grids) > 2:
                self._grids.clear()
            ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
            self._grids[side] = np.dstack([xs, ys])
        y0, y1, x0, x1 = rect.large
        return self._grids[side][y0:y1, x0:x1]

    def _views(self, box: np.ndarray, work: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The box at the flow's resolution, and that at the edit's size; a still's are kept."""
        kept = self._kept
        if kept is not None and kept[0] is box and kept[1].shape[0] == work and kept[2].shape[0] == size:
            return kept[1], kept[2]
        near = box if work == box.shape[0] else resize_square(box, work)
        self._kept = (box, near, resize_square(near, size))
        return near, self._kept[2]

    def __call__(self, box: np.ndarray, edited: np.ndarray, reference: np.ndarray) -> _Move | None:
        """How ``box`` (float32, side S) changes when its detail moves along with the edit, or
        None where nothing moves."""
        side, size = box.shape[0], edited.shape[0]
        delta = edited.astype(np.float32) - reference
        change = _largest_channel(delta)
        moving = _ramp(change, MOVE_LOW, MOVE_HIGH)
        if not moving.any():
            if self._steady is not None:
                self._steady.reset()
                self._touched = None
            return None
        rect = _Rect(moving, side)
        work = min(side, FLOW_SCALE * size, FLOW_MAX)  # the flow's resolution
        y0, y1, x0, x1 = (round(v * work / size) for v in rect.small)
        gray = [np.ascontiguousarray(cv2.cvtColor(resize_square(c, work), cv2.COLOR_RGB2GRAY)[y0:y1, x0:x1])
                for c in (edited, np.clip(reference, 0, 255).astype(np.uint8))]
        # The displacement in the flow's pixels, over the whole crop: edited(p) ~ reference(p + field).
        field = np.zeros((work, work, 2), np.float32)
        inside = field[y0:y1, x0:x1]  # the field is 0 outside this rectangle until it is steadied
        inside[:] = self._flow.calc(gray[0], gray[1], None)
        inside *= _channels(_stretch(moving, work)[y0:y1, x0:x1], 2)
        # Keep the move only where it explains the edit: where the reference, moved the same
        # way, comes closer to the edited crop than the unmoved reference is (the box moved at
        # the flow's resolution, then seen at the edit's size). Moving by the trusted part of the
        # flow puts an edge part of the way; a blend of moved and unmoved pixels would show both edges.
        near, near_small = self._views(box, work, size)
        flow_rect = _Rect.part(work, (y0, y1, x0, x1))  # the field is 0 outside: no move there
        grid = self._grid(flow_rect, work)
        trial = near.copy()
        # Linear suffices here: the trial is only seen at the edit's size.
        flow_rect.of_large(trial)[:] = self._warp(near, field, flow_rect, grid, cv2.INTER_LINEAR)
        gain = change - _largest_channel(delta - (resize_square(trial, size) - near_small))
        inside *= _channels(_stretch(_ramp(gain, 0.0, MOVE_TRUST), work)[y0:y1, x0:x1], 2)
        part = (y0, y1, x0, x1)
        if self._steady is not None:
            if self._touched is not None and self._touched[0] == work:
                part = _union(self._touched[1], part)
            self._touched = (work, part)
            field = self._steady(field / work, np.s_[part[0] : part[1], part[2] : part[3]])
            field *= work
        shift = np.zeros_like(near_small)
        moves = rect.within(_moving_part(field, side, part))
        if moves is None:
            return _Move(None, None, shift)
        difference = self._warp(box, field, moves, self._grid(moves, side), cv2.INTER_CUBIC)
        difference -= moves.of_large(box)
        # The move seen at the edit's size: the view of the moved part's difference (0 elsewhere).
        y0, y1, x0, x1 = moves.large
        rows, cols = _small_span(y0, y1, side, size, 1), _small_span(x0, x1, side, size, 1)
        shift[rows[0] : rows[1], cols[0] : cols[1]] = _seen_small(difference, side, size, rows, cols, (y0, x0), zero_outside=True)
        return _Move(moves, difference, shift)

    @staticmethod
    def _warp(box: np.ndarray, field: np.ndarray, rect: _Rect, grid: np.ndarray, interpolation: int) -> np.ndarray:
        """The rectangle's large part (whose pixel coordinates ``grid`` holds) of ``box`` sampled
        where ``field`` (a displacement in its own pixels, over the whole crop) points."""
        if box.shape[0] == field.shape[0]:
            where = rect.of_large(field) + grid  # the field's own pixels: nothing to enlarge
        else:
            where = rect.enlarged(field, cv2.INTER_LINEAR)
            where *= box.shape[0] / field.shape[0]
            where += grid
        return cv2.remap(box, where, None, interpolation, borderMode=cv2.BORDER_REPLICATE)


class Paster(Closing):
    """Pastes edited crops into the frames of one video, whose crop box is ``box``.

    ``method`` is ``change`` (keep the frame's detail, moved along the edit's motion, and add
    the edit's change; needs the ``reference`` crop), ``change-fast`` (the same without the
    motion) or ``replace`` (paste the edited picture). ``mask`` names the regions
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
        still: bool = False,
    ) -> None:
        if method not in PASTE_METHODS:
            raise InputError(f"`paste_method` {method!r} is not a paste method", f"use one of: {', '.join(PASTE_METHODS)}")
        if not 0.0 < feather <= 0.1:
            raise InputError(f"`feather` {feather} is out of range", "use a value in (0, 0.1]")
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
        self._mover = _DetailMover(OneEuroFilter(fps) if smooth else None) if method == "change" else None
        self._mesh = FaceMesh(static_image_mode=still) if self.regions != ("box",) else None
        self.still = still
        self._still_mask: np.ndarray | None = None
        self._still_box: np.ndarray | None = None
        self._still_alpha: tuple[tuple[np.ndarray, np.ndarray], tuple[slice, slice]] | None = None

    def move_to(self, box: CropBox) -> None:
        """Follow a moving box (of the same side: the masks are drawn at that size); the
        landmark track goes on, as the landmarks are kept relative to the box."""
        if box.size != self.box.size:
            raise ValueError(f"a moving box keeps its side: {box.size} != {self.box.size}")
        self.box = box
        self._visible = box_in_frame(box, self.frame_w, self.frame_h)

    def _feathered(self, region: np.ndarray) -> np.ndarray:
        soft = feather(region, self.feather * region.shape[0])
        return cv2.resize(soft, (self.box.size, self.box.size), interpolation=cv2.INTER_LINEAR)

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """The feathered mask (box side square, float32 in [0, 1]) for this frame of the video.

        Call once per frame, in order: it advances the landmark track (a still's mask is found once).
        """
        if self._still_mask is not None:
            return self._still_mask
        mask = self._mask(frame)
        if self.still:
            self._still_mask = mask
        return mask

    def _mask(self, frame: np.ndarray) -> np.ndarray:
        if self._mesh is not None:
            points = self._mesh(crop(frame, self.box, MESH_SIZE))
            if points is None:
                self.fallbacks += 1
            else:
                points = points[:, :2] / MESH_SIZE
                self._points = self._filter(points) if self._filter is not None else points
            if self._points is not None:
                sigma = self.feather * MESH_SIZE
                reach = CHANGE_REACH * MESH_SIZE if self.method != "replace" else 0.0
                return self._feathered(region_mask(self._points * MESH_SIZE, MESH_SIZE, self.regions, sigma, reach))
        if self._box_mask is None:
            self._box_mask = self._feathered(np.ones((MESH_SIZE, MESH_SIZE), np.uint8))
        return self._box_mask

    def paste(self, frame: np.ndarray, edited: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        """A copy of ``frame`` with the edit (square RGB uint8 crop) blended into the box.

        ``reference`` is the crop the edit is measured against (the change methods need it):
        the model's reconstruction of the source, or the source crop, at the edit's size.
        """
        if frame.shape[:2] != (self.frame_h, self.frame_w):
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, the paster was made for {self.frame_w}x{self.frame_h}")
        edited = as_rgb(edited)
        if edited.shape[0] != edited.shape[1]:
            raise ValueError(f"the edited crop must be square, got {edited.shape}")
        if self.method != "replace" and (reference is None or reference.shape != edited.shape):
            raise ValueError("the change paste needs a reference crop of the edited crop's size")
        self.frames += 1
        out = frame.copy()
        x, y, w, h = self._visible
        if w == 0 or h == 0 or (self.method != "replace" and np.array_equal(edited, reference)):
            return out  # nothing of the box is visible, or the edit changes nothing
        size = self.box.size
        visible = np.s_[y - self.box.y : y - self.box.y + h, x - self.box.x : x - self.box.x + w]
        alpha, (rows, cols) = self._alpha(frame, visible)
        if alpha[1].size == 0:
            return out  # the mask is 0 over the visible part
        # From here on only the mask's nonzero rectangle of the visible part: the rest is the frame.
        inside = np.s_[visible[0].start + rows.start : visible[0].start + rows.stop,
                       visible[1].start + cols.start : visible[1].start + cols.stop]
        target = np.s_[y + rows.start : y + rows.stop, x + cols.start : x + cols.stop]
        if self.method == "replace":
            result = resize_square(edited, size)[inside]
        else:
            box = self._box_of(frame)
            result = cv2.add(box[inside], self._change(box, edited, reference)[inside], dtype=cv2.CV_8U)  # rounded, 0..255
        # The frame and the result mixed by alpha (one pass over bytes); where alpha is 0 that
        # is the frame, bit for bit (OpenCV divides by the weights' sum plus 1e-5: < 0.003 of a level).
        out[target] = cv2.blendLinear(frame[target], result, *alpha)
        return out

    def _alpha(self, frame: np.ndarray, visible: tuple[slice, slice]) -> tuple[tuple[np.ndarray, np.ndarray], tuple[slice, slice]]:
        """The weights of the frame (1 - mask) and of the edit (the mask) over the rectangle of
        the visible part where the mask is nonzero, and that rectangle within the visible part;
        a still's are made once."""
        if self._still_alpha is not None:
            return self._still_alpha
        mask = self.mask(frame)[visible]
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        inner = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)) if rows.size else (slice(0, 0), slice(0, 0))
        part = np.ascontiguousarray(mask[inner])
        alpha = (1.0 - part, part), inner
        if self.still:
            self._still_alpha = alpha
        return alpha

    def _box_of(self, frame: np.ndarray) -> np.ndarray:
        """The frame's box as float32 (edge pixels repeated outside the frame); a still's is cut
        once (callers get it read-only: the change is computed into a new array)."""
        if self._still_box is not None:
            return self._still_box
        whole = crop(frame, self.box, self.box.size).astype(np.float32)
        if self.still:
            whole.flags.writeable = False
            self._still_box = whole
        return whole

    def _change(self, box: np.ndarray, edited: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """What the edit adds to the box (float32, full resolution), applied to its own pixels."""
        side, size = box.shape[0], edited.shape[0]
        edited_f = edited.astype(np.float32)
        reference_f = reference.astype(np.float32)
        move = self._mover(box, edited, reference_f) if self._mover is not None else None
        if move is not None:
            # Measure the change against the moved frame, seen at the model's size through the
            # reference (so the model's own errors still cancel).
            reference_f += move.shift
        delta = edited_f - reference_f
        change = resize_square(delta, side)
        if move is not None:
            move.add_to(change, (0, side, 0, side))
        weight = change_weight(delta)
        if not weight.any():
            return change
        # Where the change is large, drop the (moved) frame's detail, the frame minus the
        # upsampled reference: the result there is the upsampled edit itself, without a ghost.
        rect = _Rect(weight, side)
        fade = _channels(rect.enlarged(weight, cv2.INTER_LINEAR), 3)
        detail = rect.of_large(box) - rect.enlarged(reference_f)
        if move is not None:
            move.add_to(detail, rect.large)
        detail *= fade
        part = rect.of_large(change)
        part -= detail
        if move is not None:
            # Sharpen there: steps that make the result agree with the edit at the model's size.
            # The residual is needed where the enlarging reads it: the small rectangle and the
            # bicubic kernel's reach around it; the view reads the box a few pixels around those.
            y0, y1, x0, x1 = rect.small
            rows, cols = (max(0, y0 - 3), min(size, y1 + 3)), (max(0, x0 - 3), min(size, x1 + 3))
            reach = np.s_[max(0, rows[0] * side // size - 2) : min(side, -(-rows[1] * side // size) + 2),
                          max(0, cols[0] * side // size - 2) : min(side, -(-cols[1] * side // size) + 2)]
            origin = (reach[0].start, reach[1].start)
            for _ in range(SHARPEN_STEPS):
                result = box[reach] + change[reach]
                residual = np.zeros_like(edited_f)
                residual[rows[0] : rows[1], cols[0] : cols[1]] = (
                    edited_f[rows[0] : rows[1], cols[0] : cols[1]] - _seen_small(result, side, size, rows, cols, origin))
                part += fade * rect.enlarged(residual)
        return change

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
