"""The paste stage: each frame's edited faces put back into the output picture."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from dpe_cli.edit.casting import Subject
from dpe_cli.edit.drivers import Cue
from dpe_cli.edit.frames import FrameItem
from dpe_cli.edit.stream import StageTimer
from dpe_cli.face.paste import Paster


def side_by_side(panels: list[np.ndarray], height: int) -> np.ndarray:
    """Panels scaled to one height, left to right; width padded to even for yuv420p."""
    scaled = [
        p if p.shape[0] == height else cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height), interpolation=cv2.INTER_AREA)
        for p in panels
    ]
    out = np.concatenate(scaled, axis=1)
    if out.shape[1] % 2:
        out = np.pad(out, ((0, 0), (0, 1), (0, 0)))
    return out


def output_size(paste: bool, frame_w: int, frame_h: int, size: int, with_driver: bool) -> tuple[int, int]:
    """The output's width and height: the full frame when pasting, else the model's crop; a
    side-by-side output adds the source and the driver panels at that height."""
    out_w, out_h = (frame_w, frame_h) if paste else (size, size)
    if with_driver:
        probe = side_by_side([np.zeros((out_h, out_w, 3), np.uint8)] * 2 + [np.zeros((size, size, 3), np.uint8)], out_h)
        out_w = probe.shape[1]
    return out_w, out_h


class Compositor:
    """The output picture of a frame: each edited face pasted into the full frame by its
    subject's paster (made by ``paster`` when the subject first appears, closed once it has
    left; None: the output is the edited crop itself), a kept face as it was; with
    ``panel_height``, the source and the driver's ``picture`` of the cue (blank when there is
    none) on its left."""

    def __init__(self, paster: Callable[[Subject], Paster] | None, timer: StageTimer, size: int, *, panel_height: int | None,
                 picture: Callable[[Cue], np.ndarray | None]) -> None:
        self.make_paster, self.timer = paster, timer
        self.panel_height, self.picture = panel_height, picture
        self._blank = np.zeros((size, size, 3), np.uint8)
        self._pasters: dict[int, tuple[Subject, Paster]] = {}
        self.fallbacks = 0

    def _paster(self, subject: Subject, frame: int) -> Paster:
        assert self.make_paster is not None
        if subject.key not in self._pasters:
            self._pasters[subject.key] = (subject, self.make_paster(subject))
        paster = self._pasters[subject.key][1]
        if subject.moving:
            paster.move_to(subject.box_at(frame))
        return paster

    def _retire(self, frame: int) -> None:
        """Close the pasters of subjects whose last frame has passed (bounded memory)."""
        for key, (subject, paster) in list(self._pasters.items()):
            if subject.end <= frame:
                self.fallbacks += paster.fallbacks
                paster.close()
                del self._pasters[key]

    def __call__(self, item: FrameItem) -> np.ndarray:
        out = item.frame
        if self.make_paster is not None:
            self._retire(item.index)
        for face in item.faces:
            if face.edited is None:
                out = out if self.make_paster is not None else face.crop
            elif self.make_paster is not None:
                out = self.timer.timed("paste", self._paster(face.subject, item.index).paste, out, face.edited, face.reference)
            else:
                out = face.edited
        if self.panel_height is None:
            return out
        left = item.frame if item.frame is not None else item.faces[0].crop
        driver = self.picture(item.cue) if item.cue is not None else None
        return side_by_side([left, driver if driver is not None else self._blank, out], self.panel_height)

    def close(self) -> None:
        self._retire(math.inf)  # type: ignore[arg-type]
