"""Who is edited where: the scan's tracks turned into *subjects*, each one person in one shot
with its own DPE crop box, and the frames in which it is edited.

A subject's box is fixed, at the calibrated DPE framing, when the head stays within what a
fixed box at that framing holds; when the face travels further (a pan, a walk) the box keeps
the framing and follows the face's smoothed path instead. A subject is edited from the
track's first frame to its last (stretched to the shot's ends when the detector only missed a
few frames there); the edit fades in and out where the person appears or leaves within a shot,
and starts and stops at once at a hard cut. Frames with no subject are the source's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face.crop import FACE_CENTER_Y, SIZE_PERCENTILE, BoxAccumulator, CropBox
from dpe_cli.face.detect import FaceBox

# A fixed box this much larger than the DPE framing of the face (1.15: the face is within 15 %
# of the calibrated face-to-box ratio) means the face travels: the box moves instead.
MOVING_SLACK = 1.15
# The moving box's path: the face centres smoothed by a Gaussian of this many seconds
# (detector jitter is a few frames; a pan is steady over seconds, which smoothing keeps).
PATH_SIGMA_SECONDS = 0.2
# A track that starts or ends within this of its shot's edge was only missed there.
EDGE_GAP_SECONDS = 0.5


@dataclass
class Subject:
    """One person edited in one shot: output frames ``first`` to ``end`` (exclusive)."""

    key: int
    shot: int
    person: int
    first: int
    end: int
    box: CropBox  # the fixed box, or the box at ``first`` when moving
    path: np.ndarray | None  # moving: (end - first, 3) int x, y, side per frame
    fade_in: int  # frames of the edit's fade at each end (0: starts or stops at once)
    fade_out: int
    face_side: float  # median face side in frame pixels (how well the box frames it)

    @property
    def moving(self) -> bool:
        return self.path is not None

    def box_at(self, frame: int) -> CropBox:
        if self.path is None:
            return self.box
        x, y, side = self.path[min(max(frame - self.first, 0), len(self.path) - 1)]
        return CropBox(int(x), int(y), int(side))

    def presence(self, frame: int) -> float:
        """The weight of the edit at ``frame`` from the subject's fades (1 inside, 0 outside)."""
        if not self.first <= frame < self.end:
            return 0.0
        weight = 1.0
        if self.fade_in:
            weight = min(weight, (frame - self.first + 1) / (self.fade_in + 1))
        if self.fade_out:
            weight = min(weight, (self.end - frame) / (self.fade_out + 1))
        return weight


class Casting:
    """The subjects of a video, asked frame by frame in order."""

    def __init__(self, subjects: Sequence[Subject]) -> None:
        self.subjects = sorted(subjects, key=lambda s: (s.first, s.key))
        self.frames_edited = {s.key: 0 for s in self.subjects}

    @classmethod
    def single(cls, box: CropBox) -> Casting:
        """One subject in every frame with one fixed box: one continuous shot (``--shots none``,
        a given ``--box``, ``--crop none``)."""
        return cls([Subject(0, 0, 0, 0, math.inf, box, None, 0, 0, 0.0)])  # type: ignore[arg-type]

    def active(self, frame: int) -> list[Subject]:
        return [s for s in self.subjects if s.first <= frame < s.end]

    def nearest(self, frame: int) -> Subject:
        """The subject closest in time (crops for a frame that nobody is edited in)."""
        return min(self.subjects, key=lambda s: 0 if s.first <= frame < s.end else min(abs(frame - s.first), abs(frame - s.end + 1)))


def _faces(boxes: np.ndarray) -> list[FaceBox]:
    return [FaceBox(float(x), float(y), float(w), float(h), 1.0) for x, y, w, h in boxes]


def _fixed_box(boxes: np.ndarray, pass_w: int, pass_h: int, scale: float) -> CropBox:
    """The single-box framing of these detections, as ``dpe_cli.edit.framing.find_box`` makes it."""
    accumulator = BoxAccumulator()
    for face in _faces(boxes):
        accumulator.add([face])
    return accumulator.box(pass_w, pass_h, scale=scale)


def _path(frames: np.ndarray, boxes: np.ndarray, first: int, end: int, side: float, fps: float) -> np.ndarray:
    """Per-frame (x, y, side) of a box of constant ``side`` that follows the smoothed face."""
    span = np.arange(first, end)
    cx = np.interp(span, frames, boxes[:, 0] + boxes[:, 2] / 2)
    cy = np.interp(span, frames, boxes[:, 1] + boxes[:, 3] / 2)
    sigma = max(PATH_SIGMA_SECONDS * fps, 1e-3)
    reach = int(math.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    smooth = [np.convolve(np.pad(c, reach, mode="edge"), kernel, mode="valid") for c in (cx, cy)]
    x = smooth[0] - side / 2
    y = smooth[1] - (FACE_CENTER_Y - 0.5) * side - side / 2
    return np.stack([x, y, np.full_like(x, side)], axis=1)


@dataclass(frozen=True)
class Cast:
    """How subjects are chosen and framed (from the request)."""

    scale: float
    fade: float  # seconds
    faces: str  # "one" or "all"
    face_index: int = 0
    person: int | None = None  # a person number picked by photo


def _ranked_people(tracks: list, people: dict[int, int]) -> list[int]:
    """The people of one shot, largest face first (``--face-index`` counts in this order)."""
    size: dict[int, float] = {}
    for t in tracks:
        side = float(np.median(np.maximum(t.boxes[:, 2], t.boxes[:, 3])))
        size[people[t.id]] = max(size.get(people[t.id], 0.0), side)
    return sorted(size, key=lambda p: -size[p])


def _chosen(scan, cast: Cast) -> list:
    """The tracks to edit, shot by shot."""
    chosen = []
    for k in range(len(scan.shots)):
        tracks = [t for t in scan.tracks if t.shot == k]
        if cast.faces == "all":
            chosen += tracks
            continue
        ranked = _ranked_people(tracks, scan.people)
        if cast.person is not None:
            wanted = cast.person
        elif cast.face_index < len(ranked):
            wanted = ranked[cast.face_index]
        else:
            continue
        chosen += [t for t in tracks if scan.people[t.id] == wanted]
    if not chosen:
        if cast.person is not None:
            raise InputError("the person of the photo appears in no shot", "check --person, or edit by --face-index")
        most = max((len({scan.people[t.id] for t in scan.tracks if t.shot == k}) for k in range(len(scan.shots))), default=0)
        raise NoFaceError(f"no face number {cast.face_index} in any shot (at most {most} per shot)", f"use a face index below {max(most, 1)}; 0 is the largest face")
    return chosen


def _cut_at(scan, shot: int, at_start: bool) -> bool:
    """Whether the shot's start (or end) is a hard cut or the video's edge, where the edit
    may start or stop at once (a gradual transition fades it)."""
    if at_start:
        return scan.shots[shot].begins in ("start", "cut")
    return shot + 1 >= len(scan.shots) or scan.shots[shot + 1].begins == "cut"


def cast_subjects(scan, cast: Cast) -> Casting:
    """The subjects of a scanned video (see the module's docstring)."""
    fps, gap = scan.fps, round(EDGE_GAP_SECONDS * scan.fps)
    fade = round(cast.fade * fps)
    subjects = []
    for key, track in enumerate(sorted(_chosen(scan, cast), key=lambda t: (int(t.frames[0]), t.id))):
        shot = scan.shots[track.shot]
        first, end = int(track.frames[0]), int(track.frames[-1]) + 1
        starts_shot, ends_shot = first - shot.start <= gap, shot.end - end <= gap
        first, end = (shot.start if starts_shot else first), (shot.end if ends_shot else end)
        fixed = _fixed_box(track.boxes, scan.pass_width, scan.pass_height, cast.scale)
        sides = np.maximum(track.boxes[:, 2], track.boxes[:, 3])
        framed = cast.scale * float(np.percentile(sides, SIZE_PERCENTILE))
        path = None
        if fixed.size > MOVING_SLACK * framed and not _whole_frame(fixed, scan):
            path = _path(track.frames, track.boxes, first, end, framed, fps)
        subjects.append(_to_frame(Subject(
            key, track.shot, scan.people[track.id], first, end, fixed, path,
            0 if starts_shot and _cut_at(scan, track.shot, True) else fade,
            0 if ends_shot and _cut_at(scan, track.shot, False) else fade,
            float(np.median(sides)),
        ), scan))
    return Casting(subjects)


def _whole_frame(box: CropBox, scan) -> bool:
    return box.as_tuple() == (0, 0, scan.pass_width, scan.pass_height)


def _to_frame(subject: Subject, scan) -> Subject:
    """The subject's boxes in the frame's pixels (the pass ran at reduced size)."""
    s = scan.shrink
    if _whole_frame(subject.box, scan):
        subject.box = CropBox(0, 0, scan.width)
    elif s < 1:
        subject.box = CropBox(round(subject.box.x / s), round(subject.box.y / s), round(subject.box.size / s))
    if subject.path is not None:
        side = round(subject.path[0, 2] / s)
        subject.path = np.stack([np.rint(subject.path[:, 0] / s), np.rint(subject.path[:, 1] / s), np.full(len(subject.path), side)], axis=1).astype(np.int64)
        subject.box = subject.box_at(subject.first)
    subject.face_side /= s
    return subject
