"""The source's side of an edit: each output frame as it travels through the stages.

A :class:`FrameItem` is born in the decode stage (the full frame, when the output needs it, and
its faces cut with their boxes), gets its edits in the inference stage and is composed into
the output picture in the paste stage. A still portrait is one more kind of source: every
output frame carries the same portrait crop (and the same photo, when the edit is pasted into
it), and the driver sets the timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dpe_cli.edit.casting import Casting, Subject
from dpe_cli.edit.drivers import Cue
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.stream import StageTimer, timed
from dpe_cli.face.crop import CropBox, crop
from dpe_cli.video import FrameReader


@dataclass
class Face:
    """One face of one output frame: its crop at the model's size, how much of the edit it gets,
    which subject (person in a shot) it is, and, after inference, the edited crop and the
    reference crop the paste measures the edit against."""

    crop: np.ndarray
    weight: float
    subject: Subject
    edited: np.ndarray | None = None
    reference: np.ndarray | None = None


@dataclass
class FrameItem:
    """One output frame: its number, the full source frame (None when the output is the crop),
    the driver's cue for it (None where the frame is kept) and its faces."""

    index: int
    frame: np.ndarray | None
    cue: Cue | None
    faces: list[Face]


def video_frames(reader: FrameReader, casting: Casting, cues: Iterator[Cue], request: EditRequest, size: int,
                 timer: StageTimer, *, paste: bool, keep_frame: bool) -> Iterator[FrameItem]:
    """Source frames with the crops of the subjects edited in them, the driver's cue and each
    face's weight. The driver advances only through the edited span, whose first frame meets
    the driver's first; where the driver ends (``--driver-end stop``) so does the output. A
    pasted frame carries only the faces that get some of the edit (the rest of it is kept as
    it is); a crop output carries one face in every frame, the nearest subject's crop where
    nobody is edited."""
    for i, frame in enumerate(timed(reader, timer, "decode")):
        span = request.span_weight(request.start + i / float(reader.fps))
        cue = None
        if span is not None:
            cue = next(cues, None)
            if cue is None:
                return
        faces = []
        for subject in casting.active(i):
            weight = (span or 0.0) * subject.presence(i)
            if weight > 0 or not paste:
                faces.append(Face(crop(frame, subject.box_at(i), size), weight, subject))
        if not paste:
            if not faces:
                subject = casting.nearest(i)
                faces.append(Face(crop(frame, subject.box_at(i), size), 0.0, subject))
            faces = faces[:1]
        yield FrameItem(i, frame if keep_frame else None, cue, faces)


def portrait_frames(photo: np.ndarray | None, portrait: np.ndarray, box: CropBox, cues: Iterator[Cue]) -> Iterator[FrameItem]:
    """A still portrait's crop (cut from the photo with ``box``) once per driver cue, fully
    edited; ``photo`` is the frame each edit is pasted into (None: the output is the crop).
    Every item shares the one photo array: the paste copies it, nothing writes into it."""
    subject = Casting.single(box).subjects[0]
    for i, cue in enumerate(cues):
        yield FrameItem(i, photo, cue, [Face(portrait, 1.0, subject)])
