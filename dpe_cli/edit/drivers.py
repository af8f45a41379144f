"""The driver's side of an edit: one *cue* per edited output frame, and its motion vectors.

A driver is read either frame by frame (its crops, cut with its fixed box and decoded on the
output's timeline) or from a :class:`DriverTrack` that ``dpe batch`` encoded once for many jobs
(the cues are then frame numbers into the track). Both feeds give the inference stage the same
two things: the next cue, and the motion of a batch of cues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Union

import numpy as np
import torch

from dpe_cli.edit.framing import Framing
from dpe_cli.edit.stream import StageTimer, batched, timed
from dpe_cli.engine import Engine
from dpe_cli.errors import InputError
from dpe_cli.face.crop import CropBox, crop
from dpe_cli.video import FrameReader, MediaInfo, read_image

if TYPE_CHECKING:
    from dpe_cli.edit.request import EditRequest

@dataclass(frozen=True)
class DriverCrop:
    """A driver frame's crop at the model's size, and at the side-by-side panel's height when
    the output shows the driver (cut from the frame with the same box, not the model's input
    enlarged)."""

    model: np.ndarray
    panel: np.ndarray | None = None


Cue = Union[DriverCrop, int]  # a driver crop, or a frame number into a DriverTrack


@dataclass(frozen=True)
class DriverTrack:
    """A driver's crop box and the motion vector of each of its frames on one timeline."""

    framing: Framing
    motion: torch.Tensor  # (frames, D), float32


class DriverCache:
    """Drivers encoded once for many jobs (``dpe batch``): keyed by the file's identity, the
    output frame rate and everything that changes the crops or the vectors. A cached driver is
    framed over its whole length, where a single run frames only the part it uses."""

    def __init__(self) -> None:
        self._tracks: dict[tuple, DriverTrack] = {}
        self.hits = 0

    def __len__(self) -> int:
        return len(self._tracks)

    def track(self, request: EditRequest, engine: Engine, info: MediaInfo, fps: Fraction | None,
              frame: Callable[[], Framing], timer: StageTimer) -> DriverTrack:
        """The driver's track, encoded now unless a job with the same key did; ``frame`` finds
        its box over the driver's whole length."""
        r = request
        stat = info.path.stat()
        key = (str(info.path.resolve()), stat.st_size, stat.st_mtime_ns, fps, r.crop, r.box_scale, r.driver_face_index,
               str(engine.weights), r.precision, str(engine.device))
        if key in self._tracks:
            self.hits += 1
            return self._tracks[key]
        framing = frame()
        if info.kind == "image":
            motion = engine.motion([crop(read_image(info.path), framing.box, engine.size)])
        else:
            chunks = []
            reader = FrameReader(info.path, fps=fps)
            try:
                for frames in batched(timed(reader, timer, "decode"), 16):
                    chunks.append(engine.motion([crop(f, framing.box, engine.size) for f in frames]))
            finally:
                reader.close()
            if not chunks:
                raise InputError(f"driver {info.path.name} has no frames", "use another driver")
            motion = torch.cat(chunks)
        self._tracks[key] = DriverTrack(framing, motion)
        return self._tracks[key]


class CropFeed:
    """Driver crops on the output timeline (``fps``; None: the driver's own frames, once);
    what happens at the driver's end follows ``driver_end`` (loop, hold, stop). ``panel`` is
    the side-by-side panel's height (None: no panel)."""

    def __init__(self, info: MediaInfo, box: CropBox, fps: Fraction | None, driver_end: str, engine: Engine, timer: StageTimer,
                 panel: int | None = None) -> None:
        self.info, self.box, self.fps, self.driver_end = info, box, fps, driver_end
        self.engine, self.timer, self.panel = engine, timer, panel
        self._still_motion: torch.Tensor | None = None

    def _crop(self, frame: np.ndarray) -> DriverCrop:
        panel = crop(frame, self.box, self.panel) if self.panel is not None else None
        return DriverCrop(crop(frame, self.box, self.engine.size), panel)

    def cues(self) -> Iterator[DriverCrop]:
        if self.info.kind == "image":
            still = self._crop(read_image(self.info.path))
            while True:
                yield still
        reader = FrameReader(self.info.path, fps=self.fps)
        last = None
        while True:
            for frame in timed(reader, self.timer, "decode"):
                last = self._crop(frame)
                yield last
            if last is None or self.driver_end == "stop" or self.fps is None:
                return
            if self.driver_end == "hold":
                while True:
                    yield last

    def motion(self, cues: list[DriverCrop]) -> torch.Tensor:
        """The motion of each crop; a still driver's is computed once."""
        if self.info.kind != "image":
            return self.engine.motion([cue.model for cue in cues])
        if self._still_motion is None:
            self._still_motion = self.engine.motion([cues[0].model])
        return self._still_motion.expand(len(cues), -1)

    @staticmethod
    def picture(cue: DriverCrop) -> np.ndarray:
        return cue.panel if cue.panel is not None else cue.model


class TrackFeed:
    """Frame numbers into a cached :class:`DriverTrack`, following the output timeline as
    :class:`CropFeed` does (``single_pass``: the driver's own frames, once)."""

    def __init__(self, track: DriverTrack, still: bool, single_pass: bool, driver_end: str) -> None:
        self.track, self.still, self.single_pass, self.driver_end = track, still, single_pass, driver_end

    def cues(self) -> Iterator[int]:
        frames = len(self.track.motion)
        if self.still:
            while True:
                yield 0
        yield from range(frames)
        if self.single_pass or self.driver_end == "stop":
            return
        while True:
            if self.driver_end == "hold":
                yield frames - 1
            else:
                yield from range(frames)

    def motion(self, cues: list[int]) -> torch.Tensor:
        return self.track.motion[torch.tensor(cues)]

    @staticmethod
    def picture(cue: int) -> None:
        return None  # the track keeps vectors, not pictures


DriverFeed = Union[CropFeed, TrackFeed]
