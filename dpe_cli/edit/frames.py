"""The source's side of an edit: each output frame as it travels through the stages.

A :class:`FrameItem` is born in the decode stage (the full frame, when the output needs it, and
its faces cut with their boxes), gets its edits in the inference stage and is composed into
the output picture in the paste stage. A still portrait is one more kind of source: every
output frame carries the same portrait crop, and the driver sets the timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dpe_cli.edit.drivers import Cue
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.stream import StageTimer, timed
from dpe_cli.face.crop import CropBox, crop
from dpe_cli.video import FrameReader


@dataclass
class Face:
    """One face of one output frame: its crop at the model's size, the driver's cue for it
    (None where the frame is kept), how much of the edit it gets, and, after inference, the
    edited crop and the reference crop the paste measures the edit against."""

    crop: np.ndarray
    cue: Cue | None
    weight: float
    edited: np.ndarray | None = None
    reference: np.ndarray | None = None


@dataclass
class FrameItem:
    """One output frame: the full source frame (None when the output is the crop) and its faces."""

    frame: np.ndarray | None
    faces: list[Face]


def video_frames(reader: FrameReader, box: CropBox, cues: Iterator[Cue], request: EditRequest, size: int,
                 timer: StageTimer, keep_frame: bool) -> Iterator[FrameItem]:
    """Source frames with their face crop, driver cue and weight. The driver advances only
    through the edited span, whose first frame meets the driver's first; where the driver ends
    (``--driver-end stop``) so does the output."""
    for i, frame in enumerate(timed(reader, timer, "decode")):
        weight = request.span_weight(request.start + i / float(reader.fps))
        cue = None
        if weight is not None:
            cue = next(cues, None)
            if cue is None:
                return
        yield FrameItem(frame if keep_frame else None, [Face(crop(frame, box, size), cue, weight or 0.0)])


def portrait_frames(portrait: np.ndarray, cues: Iterator[Cue]) -> Iterator[FrameItem]:
    """A still portrait's crop once per driver cue, fully edited."""
    for cue in cues:
        yield FrameItem(None, [Face(portrait, cue, 1.0)])
