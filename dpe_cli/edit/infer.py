"""The inference stage: a batch of frames' faces driven by their cues, in one model call."""

from __future__ import annotations

import time

import torch

from dpe_cli.edit.drivers import DriverFeed
from dpe_cli.edit.frames import FrameItem
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.stream import StageTimer
from dpe_cli.engine import Engine
from dpe_cli.model import Encoding


class Inference:
    """Fills in each edited face's ``edited`` crop and, for the paste, its ``reference``: the
    model's reconstruction of the source when ``model_reference`` (rendered in the same batch),
    else the source crop when ``keep_reference``. ``portrait`` is a still source's encoding and
    motion, computed once; a video's faces are encoded per batch. Faces with weight 0 are kept."""

    def __init__(self, engine: Engine, request: EditRequest, feed: DriverFeed, timer: StageTimer, *,
                 portrait: tuple[Encoding, torch.Tensor] | None, model_reference: bool, keep_reference: bool) -> None:
        self.engine, self.request, self.feed, self.timer = engine, request, feed, timer
        self.portrait = portrait
        self.model_reference, self.keep_reference = model_reference, keep_reference
        self.frames_edited = 0

    def __call__(self, batch: list[FrameItem]) -> None:
        start = time.perf_counter()
        faces = [face for item in batch for face in item.faces if face.weight > 0]
        if not faces:
            return
        r, engine = self.request, self.engine
        driver_motion = self.feed.motion([face.cue for face in faces])
        weights = torch.tensor([face.weight for face in faces])
        weight = None if bool((weights == 1).all()) else weights
        if self.portrait is not None:
            encoding, source_motion = self.portrait
        else:
            encoding = engine.encode([face.crop for face in faces])
            needs_source = r.motion.needs_source_motion or weight is not None or self.model_reference
            source_motion = engine.motion_of(encoding) if needs_source else None
        motion = r.motion(driver_motion, source_motion, weight)
        edited, references = engine.render(encoding, motion, r.mode, source_motion if self.model_reference else None)
        for k, face in enumerate(faces):
            face.edited = edited[k]
            if references is not None:
                face.reference = references[k]
            elif self.keep_reference:
                face.reference = face.crop
        self.frames_edited += len(faces)
        self.timer.add("infer", time.perf_counter() - start)
