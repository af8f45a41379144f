"""The inference stage: a batch of frames' faces driven by their cues, in one model call."""

from __future__ import annotations

import time

import numpy as np
import torch

from dpe_cli.edit.drivers import DriverFeed
from dpe_cli.edit.frames import Face, FrameItem
from dpe_cli.edit.motion import MotionControl
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.stream import StageTimer
from dpe_cli.engine import Engine
from dpe_cli.model import Encoding


class Inference:
    """Fills in each edited face's ``edited`` crop and, for the paste, its ``reference``: the
    model's reconstruction of the source when ``model_reference`` (rendered in the same batch),
    else the source crop when ``keep_reference``. ``portrait`` is a still source's encoding and
    motion, computed once, and so is its reconstruction (a frame driven with the portrait's own
    motion, as at strength 0, is that reconstruction bit for bit); a video's faces are encoded
    per batch. Faces with weight 0 are kept. ``neutral`` is the driver's neutral motion for
    relative driving (None: the driver's first frame).
    Each subject (person in a shot) has its own motion control, so relative driving and
    smoothing start over with each person and never mix two people's motion."""

    def __init__(self, engine: Engine, request: EditRequest, feed: DriverFeed, timer: StageTimer, *,
                 portrait: tuple[Encoding, torch.Tensor] | None, model_reference: bool, keep_reference: bool,
                 neutral: torch.Tensor | None = None) -> None:
        self.engine, self.request, self.feed, self.timer = engine, request, feed, timer
        self.portrait, self.neutral = portrait, neutral
        self._still_reference: np.ndarray | None = None
        self.model_reference, self.keep_reference = model_reference, keep_reference
        self.frames_edited = 0
        self.per_subject: dict[int, int] = {}
        self._controls: dict[int, MotionControl] = {}

    def _motion(self, faces: list[Face], driver: torch.Tensor, source: torch.Tensor | None, weights: torch.Tensor | None) -> torch.Tensor:
        """The batch's motion vectors, each subject's rows through its own control (the first
        subject's is the request's own)."""
        groups: dict[int, list[int]] = {}
        for k, face in enumerate(faces):
            groups.setdefault(face.subject.key, []).append(k)
        if len(groups) == 1:
            return self._control(next(iter(groups)))(driver, source, weights)
        motion = torch.empty_like(driver)
        for key, rows in groups.items():
            idx = torch.tensor(rows)
            part_source = source if source is None or source.size(0) == 1 else source[idx]
            motion[idx] = self._control(key)(driver[idx], part_source, None if weights is None else weights[idx])
        return motion

    def _control(self, key: int) -> MotionControl:
        if key not in self._controls:
            control = self.request.motion if not self._controls else self.request.new_motion()
            if self.neutral is not None:
                control.reference = self.neutral
            self._controls[key] = control
        return self._controls[key]

    def _render_still(self, encoding: Encoding, motion: torch.Tensor, own: torch.Tensor) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """A still portrait's edits, and its one reconstruction (rendered at the first call) as
        every face's reference; rows whose motion is the portrait's own are not rendered again."""
        mode = self.request.mode
        if not self.model_reference:
            return self.engine.render(encoding, motion, mode)
        if self._still_reference is None:
            self._still_reference = self.engine.render(encoding, own, mode)[0][0]
        same = (motion == own).all(dim=1)
        edited: list[np.ndarray] = [self._still_reference] * motion.size(0)
        todo = torch.nonzero(~same).flatten()
        if len(todo):
            for k, picture in zip(todo.tolist(), self.engine.render(encoding, motion[todo], mode)[0]):
                edited[k] = picture
        return edited, [self._still_reference] * motion.size(0)

    def __call__(self, batch: list[FrameItem]) -> None:
        start = time.perf_counter()
        edited_items = [item for item in batch if any(face.weight > 0 for face in item.faces)]
        if not edited_items:
            return
        engine = self.engine
        faces, rows = [], []
        for k, item in enumerate(edited_items):
            for face in item.faces:
                if face.weight > 0:
                    faces.append(face)
                    rows.append(k)
        # One driver motion per frame, shared by the frame's faces.
        driver_motion = self.feed.motion([item.cue for item in edited_items])
        if len(rows) != len(edited_items):
            driver_motion = driver_motion[torch.tensor(rows)]
        weights = torch.tensor([face.weight for face in faces])
        weight = None if bool((weights == 1).all()) else weights
        if self.portrait is not None:
            encoding, source_motion = self.portrait
            motion = self._motion(faces, driver_motion, source_motion, weight)
            edited, references = self._render_still(encoding, motion, source_motion)
        else:
            encoding = engine.encode([face.crop for face in faces])
            needs_source = self.request.motion.needs_source_motion or weight is not None or self.model_reference
            source_motion = engine.motion_of(encoding) if needs_source else None
            motion = self._motion(faces, driver_motion, source_motion, weight)
            edited, references = engine.render(encoding, motion, self.request.mode, source_motion if self.model_reference else None)
        for k, face in enumerate(faces):
            face.edited = edited[k]
            if references is not None:
                face.reference = references[k]
            elif self.keep_reference:
                face.reference = face.crop
            self.per_subject[face.subject.key] = self.per_subject.get(face.subject.key, 0) + 1
        self.frames_edited += len(edited_items)
        self.timer.add("infer", time.perf_counter() - start)
