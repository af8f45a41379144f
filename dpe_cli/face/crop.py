"""One fixed square crop box per video, and cutting the model's 256x256 input out of a frame.

A fixed box (rather than one per frame) keeps the background still in the crops, so the model
sees only the head move, and lets the edit be pasted back without jitter.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from dpe_cli.choices import DEFAULT_BOX_SCALE
from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face.detect import FaceBox, pick_face

# Calibrated on the crops the DPE model was trained on (VoxCeleb-style): mediapipe full-range
# boxes on the DPE demo crops dpe_source_crop.mp4 (228 frames) / dpe_driver_crop.mp4 (334):
#   face side / crop side: median 0.525 / 0.538, 90th percentile 0.542 / 0.561
#   face centre / crop side: x 0.505 / 0.507, y 0.570 / 0.577 (below the centre: the crop
#   shows hair above the face and only a little neck below it)
# The box side is DEFAULT_BOX_SCALE times the 90th-percentile face side: 1 / 0.551 = 1.81, raised
# to 1.85 because in full frames the detector's box is ~3% tighter relative to the face than
# in crops (re-crops at 1.8 came out 0.548 / 0.537 / 0.557). The face centre is put
# FACE_CENTER_Y of the way down the box (mean of 0.570 and 0.577).
# Check, re-cropping every 2nd frame with box() and detecting again (face side / crop side,
# median; centre y / crop side, median): talk_full_844 0.526, 0.571; talk_full_590 0.515,
# 0.575; talk_landscape_1280x720 0.541, 0.557. Both DPE crops snap to the whole frame.
FACE_CENTER_Y = 0.573
SIZE_PERCENTILE = 90  # face side: robust to a few oversized false detections
COVER_PERCENTILE = 95  # faces the box must hold: all but the outliers
# A box this close (fraction of the frame side) to a square frame is snapped to the whole frame,
# so input that is already a face crop goes through unpadded and unresampled.
SNAP_TOLERANCE = 0.06
# Faces remembered for the statistics; longer videos keep a uniform random sample of this many.
SAMPLE_SIZE = 2048


@dataclass(frozen=True)
class CropBox:
    """A square in frame pixels; it may extend beyond the frame (the crop pads there)."""

    x: int
    y: int
    size: int

    def as_tuple(self) -> tuple[int, int, int, int]:
        """x, y, w, h."""
        return self.x, self.y, self.size, self.size


class BoxAccumulator:
    """Builds the video's crop box from per-frame detections, in bounded memory.

    Each frame's chosen face is reduced to (centre x, centre y, side); a reservoir sample of at
    most SAMPLE_SIZE of them is kept, enough for stable medians and percentiles.
    """

    def __init__(self, face_index: int = 0) -> None:
        if face_index < 0:
            raise InputError(f"face index {face_index} is negative", "use 0 for the largest face")
        self.face_index = face_index
        self.frames = 0
        self.frames_with_face = 0
        self.most_faces = 0  # the most faces seen in one frame (to explain a face index too high)
        self._samples: list[tuple[float, float, float]] = []
        self._rng = random.Random(0)  # fixed seed: the same video always gives the same box

    def add(self, faces: list[FaceBox]) -> None:
        """Record one frame's detections (an empty list for a frame without a face)."""
        self.frames += 1
        self.most_faces = max(self.most_faces, len(faces))
        face = pick_face(faces, self.face_index)
        if face is None:
            return
        self.frames_with_face += 1
        cx, cy = face.center
        sample = (cx, cy, max(face.w, face.h))
        if len(self._samples) < SAMPLE_SIZE:
            self._samples.append(sample)
        else:
            slot = self._rng.randrange(self.frames_with_face)
            if slot < SAMPLE_SIZE:
                self._samples[slot] = sample

    def box(self, frame_w: int, frame_h: int, scale: float = DEFAULT_BOX_SCALE) -> CropBox:
        """The fixed box: DPE framing of the typical face, grown if the head moves further.

        Centre = median face centre (moved up per FACE_CENTER_Y), side = scale x the 90th
        percentile face side, enlarged when needed so that all but the 5% most outlying face
        boxes fit inside.
        """
        if not self._samples:
            if self.most_faces:
                raise NoFaceError(
                    f"no face number {self.face_index} in any of the {self.frames} frames (at most {self.most_faces} per frame)",
                    f"use a face index below {self.most_faces}; 0 is the largest face",
                )
            raise NoFaceError(
                f"no face found in any of the {self.frames} frames",
                "use a video with a visible face, or give the crop with `box` x,y,w,h",
            )
        if scale < 1.0:
            raise InputError(f"box scale {scale} is below 1", "use a scale of at least 1")
        samples = np.asarray(self._samples)
        centres, sides = samples[:, :2], samples[:, 2]
        side = scale * float(np.percentile(sides, SIZE_PERCENTILE))
        cx = float(np.median(centres[:, 0]))
        cy = float(np.median(centres[:, 1])) - (FACE_CENTER_Y - 0.5) * side
        reach = np.max(np.abs(centres - (cx, cy)), axis=1) + sides / 2
        side = max(side, 2 * float(np.percentile(reach, COVER_PERCENTILE)))
        box = CropBox(round(cx - side / 2), round(cy - side / 2), math.ceil(side))
        return _snap_to_frame(box, frame_w, frame_h)


def _snap_to_frame(box: CropBox, frame_w: int, frame_h: int) -> CropBox:
    """The whole frame when it is square and the box nearly coincides with it, else the box."""
    edges = (box.x, box.y, box.x + box.size - frame_w, box.y + box.size - frame_h)
    if frame_w == frame_h and max(map(abs, edges)) <= SNAP_TOLERANCE * frame_w:
        return CropBox(0, 0, frame_w)
    return box


def parse_box(text: str) -> CropBox:
    """The box of ``--box x,y,w,h`` (pixels; x, y may be negative to reach past the frame).

    A non-square w x h becomes the square of side max(w, h) with the same centre, so the whole
    requested region stays in the crop and the face is not stretched.
    """
    try:
        x, y, w, h = (int(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"`box` {text!r} is not four integers x,y,w,h", "e.g. `box` 120,40,400,400"
        ) from None
    if w <= 0 or h <= 0:
        raise InputError(f"`box` {text!r} has a width or height <= 0", "give a positive w and h")
    side = max(w, h)
    return CropBox(x + (w - side) // 2, y + (h - side) // 2, side)


def box_in_frame(box: CropBox, frame_w: int, frame_h: int) -> tuple[int, int, int, int]:
    """x, y, w, h of the part of the box inside the frame (w or h is 0 when none is)."""
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.size, frame_w), min(box.y + box.size, frame_h)
    return x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A square image resized to size x size: area averaging to shrink (no aliasing), bicubic
    to enlarge (sharper than bilinear), and an untouched copy at the same size."""
    if image.shape[0] == size:
        return image.copy()
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def crop(frame: np.ndarray, box: CropBox, size: int = 256) -> np.ndarray:
    """The box cut out of the frame and resized to size x size.

    Where the box leaves the frame, the edge pixels are repeated (BORDER_REPLICATE): the box is
    never shifted, which would move the face off the position the model expects, and a
    repeated edge is closer to the model's training crops than a black band it would treat as
    content. Those pixels lie outside the frame, so they are never pasted back.
    """
    frame_h, frame_w = frame.shape[:2]
    x, y, w, h = box_in_frame(box, frame_w, frame_h)
    if w == 0 or h == 0:
        raise InputError(
            f"crop box {box.as_tuple()} lies outside the {frame_w}x{frame_h} frame",
            "give a `box` that overlaps the frame",
        )
    region = frame[y : y + h, x : x + w]
    left, top = x - box.x, y - box.y
    right, bottom = box.size - w - left, box.size - h - top
    if left or top or right or bottom:
        region = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return resize_square(region, size)
