"""The editing job: decode -> crop -> edit -> paste -> encode, streamed.

Two passes over the source. The first finds one fixed crop box (``framing``); the second
runs decoding, inference and paste-back/encoding as overlapping stages joined by bounded
queues (``stream``), so memory does not grow with the video's length. The output is written
to a temporary file and renamed only when complete.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from dpe_cli.choices import AUDIO_CHOICES, CROP_CHOICES, DRIVER_END_CHOICES, PRECISIONS, REFERENCES
from dpe_cli.edit.framing import Framing, find_box, whole_frame
from dpe_cli.edit.motion import MotionControl
from dpe_cli.edit.stream import Prefetch, Sink, StageTimer
from dpe_cli.engine import Engine
from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face.crop import DEFAULT_BOX_SCALE, CropBox, box_in_frame, crop, parse_box
from dpe_cli.face.paste import DEFAULT_FEATHER, PASTE_METHODS, Paster
from dpe_cli.face.regions import parse_regions
from dpe_cli.model import Mode, check_mode
from dpe_cli.progress import Reporter
from dpe_cli.video import AudioSource, FrameReader, MediaInfo, VideoWriter, check_output_path, probe, read_image
from dpe_cli.weights import model_note

MAX_BOX_SCALE = 4.0  # a box 4x the face already shows the shoulders; more only costs memory
MAX_FADE = 10.0
MAX_BOX_FRAMES = 3  # a --box side beyond 3x the frame would only pad (and allocate) emptiness


@dataclass
class EditRequest:
    """Everything one editing run needs. ``paste`` puts the edited face back into the full
    frames (only sound when the pose is kept, i.e. expression edits); otherwise the output
    is the face crop.

    Paste-back: ``paste_method`` "change" keeps the frame's own pixels, moves them where the
    edit moves the face, and adds the edit's change against ``paste_reference`` ("model": the
    model's reconstruction of the source, one more generator pass per frame, exact where the
    edit changes nothing; "source": the source crop, faster); "change-fast" does the same
    without moving the detail (faster, softer where the face moves); "replace" pastes the
    model's picture. ``mask`` names the face regions
    pasted (face, mouth, eyes, box, or several joined by commas).

    ``edit_start``/``edit_end`` (seconds of the source) edit only that span, fading the
    strength in and out over ``fade`` seconds at its ends; every other frame is the source's.
    ``start``/``duration`` instead cut the output. ``face_index`` picks the source's face,
    ``driver_face_index`` the driver's (0 = the largest). ``portrait`` (reenact) requires the
    source to be a still image.
    """

    source: Path
    driver: Path
    output: str
    mode: Mode = "expression"
    paste: bool | None = None  # None: pasted back exactly when the pose is kept (expression edits)
    weights: Path | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int | None = None  # None: 1 on a CPU (larger batches are slower per frame there), 8 on CUDA
    audio: str = "source"
    driver_end: str = "loop"
    crf: int = 18
    side_by_side: bool = False
    overwrite: bool = False
    start: float = 0.0
    duration: float | None = None
    strength: float = 1.0
    relative: bool = False
    smooth: float = 0.0
    crop: str = "auto"
    box: str | None = None
    box_scale: float = DEFAULT_BOX_SCALE
    face_index: int = 0
    driver_face_index: int = 0
    portrait: bool = False
    mask: str = "face"
    feather: float = DEFAULT_FEATHER
    paste_method: str = "change"
    paste_reference: str = "model"
    edit_start: float | None = None
    edit_end: float | None = None
    fade: float = 0.25
    motion: MotionControl = field(init=False)

    def __post_init__(self) -> None:
        self.source, self.driver = Path(self.source), Path(self.driver)
        self.output = str(self.output)
        check_mode(self.mode)
        for name, value, choices in (
            ("--audio", self.audio, AUDIO_CHOICES),
            ("--driver-end", self.driver_end, DRIVER_END_CHOICES),
            ("--crop", self.crop, CROP_CHOICES),
            ("--precision", self.precision, PRECISIONS),
            ("--paste", self.paste_method, PASTE_METHODS),
            ("--paste-reference", self.paste_reference, REFERENCES),
        ):
            if value not in choices:
                raise InputError(f"{name} {value!r} is not valid", f"use one of: {', '.join(choices)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size} must be at least 1", "e.g. --batch-size 4")
        for name, value in (("--start", self.start), ("--duration", self.duration), ("--edit-start", self.edit_start),
                            ("--edit-end", self.edit_end), ("--fade", self.fade), ("--box-scale", self.box_scale), ("--feather", self.feather)):
            if value is not None and not math.isfinite(value):
                raise InputError(f"{name} {value} is not a number", "give a finite value")
        if self.start < 0 or (self.duration is not None and self.duration <= 0):
            raise InputError("--start must be >= 0 and --duration > 0", f"got {self.start} and {self.duration}")
        if not 1.0 <= self.box_scale <= MAX_BOX_SCALE:
            raise InputError(f"--box-scale {self.box_scale} is out of range", f"use 1 to {MAX_BOX_SCALE:g} (default {DEFAULT_BOX_SCALE:g})")
        if not 0.0 < self.feather <= 0.1:
            raise InputError(f"--feather {self.feather} is out of range", "use a value in (0, 0.1]")
        if not 0.0 <= self.fade <= MAX_FADE:
            raise InputError(f"--fade {self.fade} is out of range", f"use 0 to {MAX_FADE:g} seconds")
        if (self.edit_start is not None and self.edit_start < 0) or (
            self.edit_start is not None and self.edit_end is not None and self.edit_end <= self.edit_start
        ) or (self.edit_end is not None and self.edit_end <= 0):
            raise InputError(f"the edited span {self.edit_start}..{self.edit_end} s is empty or negative", "give 0 <= --edit-start < --edit-end")
        parse_regions(self.mask)
        if self.face_index < 0 or self.driver_face_index < 0:
            raise InputError("a face index is negative", "0 is the largest face")
        if self.box is not None and self.crop == "none":
            raise InputError("--box and --crop none contradict each other", "give only one of them")
        if self.paste is None:
            self.paste = self.mode == "expression"
        elif self.paste and self.mode != "expression":
            raise InputError(f"a {self.mode} edit cannot be pasted back", "a new head pose no longer lines up with the frame; the output is the face crop")
        self.motion = MotionControl(self.strength, self.relative, self.smooth)


def _timed(items: Iterable, timer: StageTimer, stage: str) -> Iterator:
    iterator = iter(items)
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            timer.add(stage, time.perf_counter() - start)
        yield item


def _batched(items: Iterable, n: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, n)):
        yield batch


def _side_by_side(panels: list[np.ndarray], height: int) -> np.ndarray:
    """Panels scaled to one height, left to right; width padded to even for yuv420p."""
    scaled = [
        p if p.shape[0] == height else cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height), interpolation=cv2.INTER_AREA)
        for p in panels
    ]
    out = np.concatenate(scaled, axis=1)
    if out.shape[1] % 2:
        out = np.pad(out, ((0, 0), (0, 1), (0, 0)))
    return out


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

    def track(self, job: "EditJob", info: MediaInfo, fps: Fraction | None) -> DriverTrack:
        r, engine = job.request, job.engine
        assert engine is not None
        stat = info.path.stat()
        key = (str(info.path.resolve()), stat.st_size, stat.st_mtime_ns, fps, r.crop, r.box_scale, r.driver_face_index,
               str(engine.weights), r.precision, str(engine.device))
        if key in self._tracks:
            self.hits += 1
            return self._tracks[key]
        framing = job._framing(info, role="driver")
        size = engine.size
        if info.kind == "image":
            motion = engine.motion([crop(read_image(info.path), framing.box, size)])
        else:
            chunks = []
            reader = FrameReader(info.path, fps=fps)
            try:
                for frames in _batched(_timed(reader, job.timer, "decode"), 16):
                    chunks.append(engine.motion([crop(f, framing.box, size) for f in frames]))
            finally:
                reader.close()
            if not chunks:
                raise InputError(f"driver {info.path.name} has no frames", "use another driver")
            motion = torch.cat(chunks)
        self._tracks[key] = DriverTrack(framing, motion)
        return self._tracks[key]


@dataclass
class _Item:
    """One output frame on its way through the stages."""

    frame: np.ndarray | None  # the full source frame (kept when pasting or side by side)
    crop: np.ndarray  # the source's face crop at the model's size (the portrait for reenact)
    driver: np.ndarray | int | None  # the driver's crop, or its frame in a cached track; None: kept
    weight: float  # how much of the edit the frame gets; 0 keeps it


class EditJob:
    """One run of an editing request; ``run`` returns the report (the CLI's ``--json``)."""

    def __init__(self, request: EditRequest, reporter: Reporter | None = None, engine: Engine | None = None, drivers: DriverCache | None = None) -> None:
        self.request = request
        self.reporter = reporter or Reporter()
        self.engine = engine
        self.drivers = drivers
        self.timer = StageTimer()

    # -- set-up ------------------------------------------------------------------------------
    def _probe_inputs(self) -> tuple[MediaInfo, MediaInfo]:
        source, driver = probe(self.request.source), probe(self.request.driver)
        if self.request.portrait and source.kind != "image":
            raise InputError(f"{source.path.name} is a video, not a still portrait", "give a portrait image, or edit the video with `dpe edit-expression` / `dpe edit-pose`")
        if source.kind == "image" and self.request.paste:
            raise InputError(f"{source.path.name} is a still image", "use `dpe reenact` to animate a portrait")
        if self.request.start and source.kind == "image":
            raise InputError("--start/--duration apply to a source video", "drop them for a still portrait")
        return source, driver

    def _framing(self, info: MediaInfo, *, role: str, start: float = 0.0, duration: float | None = None) -> Framing:
        """The fixed crop box of the source or the driver (``role``); errors name which."""
        r = self.request
        if r.crop == "none":
            return whole_frame(info)
        if role == "source" and r.box is not None:
            box = parse_box(r.box)
            x, y, w, h = (int(v) for v in r.box.split(","))
            if w != h:
                self.reporter.note(f"--box {r.box} is not square: the {box.size}x{box.size} square around its centre is used")
            if box.size > MAX_BOX_FRAMES * max(info.width, info.height) or not any(box_in_frame(box, info.width, info.height)[2:]):
                raise InputError(f"--box {r.box} does not fit the {info.width}x{info.height} source", f"give a box that overlaps the frame, at most {MAX_BOX_FRAMES}x its size")
            return Framing(box, 0, 0)
        began = time.perf_counter()
        index = r.face_index if role == "source" else r.driver_face_index
        try:
            return find_box(info, start=start, duration=duration, face_index=index, scale=r.box_scale, reporter=self.reporter, label=f" ({role})")
        except NoFaceError as exc:
            option = "--face-index" if role == "source" else "--driver-face-index"
            hint = exc.hint.replace("use a face index", f"use {option}") if exc.hint else None
            if role == "source" and "no face found" in exc.message:
                hint = "use a source with a visible face, or give its crop with --box x,y,w,h"
            elif role == "driver" and "no face found" in exc.message:
                hint = "drive with a video or image that shows a face"
            raise NoFaceError(f"{role} {info.path.name}: {exc.message}", hint) from None
        finally:
            self.timer.add("detect", time.perf_counter() - began)

    # -- streams ----------------------------------------------------------------------------
    def _driver_crops(self, info: MediaInfo, box: CropBox, fps: Fraction | None) -> Iterator[np.ndarray]:
        """Driver crops on the output timeline; what happens at its end follows --driver-end."""
        size = self.engine.size
        if info.kind == "image":
            still = crop(read_image(info.path), box, size)
            while True:
                yield still
        reader = FrameReader(info.path, fps=fps)
        last = None
        while True:
            for frame in _timed(reader, self.timer, "decode"):
                last = crop(frame, box, size)
                yield last
            if last is None or self.request.driver_end == "stop" or fps is None:
                return
            if self.request.driver_end == "hold":
                while True:
                    yield last

    def _driver_frames(self, frames: int, still: bool, single_pass: bool) -> Iterator[int]:
        """Frame numbers of a cached driver on the output timeline, as ``_driver_crops`` goes."""
        if still:
            while True:
                yield 0
        yield from range(frames)
        if single_pass or self.request.driver_end == "stop":
            return
        while True:
            if self.request.driver_end == "hold":
                yield frames - 1
            else:
                yield from range(frames)

    def _span_weight(self, t: float) -> float | None:
        """How much of the edit the frame at ``t`` (seconds of the source) gets: None outside
        the edited span, else a weight in [0, 1] that ramps linearly over ``fade`` seconds at
        the span's ends (1 everywhere without a span)."""
        r = self.request
        begin = r.edit_start if r.edit_start is not None else -math.inf
        end = r.edit_end if r.edit_end is not None else math.inf
        if not begin <= t < end:
            return None
        if r.fade == 0 or (math.isinf(begin) and math.isinf(end)):
            return 1.0
        return min(1.0, (t - begin) / r.fade, (end - t) / r.fade)

    def _frames(self, reader: FrameReader, box: CropBox, driver: Iterator[np.ndarray | int]) -> Iterator[_Item]:
        """Source frames with their crop, driver crop and weight. The driver advances only
        through the edited span, whose first frame meets the driver's first; where the driver
        ends (``--driver-end stop``) so does the output."""
        keep_frame = self.request.paste or self.request.side_by_side
        for i, frame in enumerate(_timed(reader, self.timer, "decode")):
            weight = self._span_weight(self.request.start + i / float(reader.fps))
            driver_crop = None
            if weight is not None:
                driver_crop = next(driver, None)
                if driver_crop is None:
                    return
            yield _Item(frame if keep_frame else None, crop(frame, box, self.engine.size), driver_crop, weight or 0.0)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        r = self.request
        began = time.perf_counter()
        output_path = check_output_path(r.output, r.overwrite, inputs=(r.source, r.driver))
        source_info, driver_info = self._probe_inputs()
        still_source = source_info.kind == "image"
        if still_source and driver_info.kind == "image":
            raise InputError("both the portrait and the driver are still images", "drive the portrait with a video")
        if still_source and (r.edit_start is not None or r.edit_end is not None):
            raise InputError("--edit-start/--edit-end apply to a source video", "drop them for a still portrait")
        if self.engine is None:
            self.engine = Engine.load(r.weights, r.device, r.precision)
            self.engine.announce(self.reporter)
        batch_size = r.batch_size or (8 if self.engine.device.type == "cuda" else 1)

        # Detection and the driver's framing cover only the frames that are edited.
        span_start = max(r.start, r.edit_start or 0.0)
        cut_end = r.start + r.duration if r.duration is not None else math.inf
        span_end = min(cut_end, r.edit_end if r.edit_end is not None else math.inf)
        if not still_source and span_start >= min(span_end, source_info.duration):
            raise InputError(
                f"the edited span starts at {span_start:g} s, past the end of {source_info.path.name} ({source_info.duration:.2f} s) or of the cut",
                "give --start/--edit-start within the video",
            )
        span = None if math.isinf(span_end) else span_end - span_start
        source_framing = self._framing(source_info, role="source", start=span_start, duration=span)
        # The driver is framed on the part that will be used (it may be longer than the source).
        driver_span = None if still_source else (span or max(source_info.duration - span_start, 1e-3))
        track = None
        if self.drivers is not None and not r.side_by_side:
            track = self.drivers.track(self, driver_info, None if still_source else source_info.fps)
            driver_framing = track.framing
        else:
            driver_framing = self._framing(driver_info, role="driver", duration=driver_span)
        size = self.engine.size

        def driver_stream(single_pass: bool) -> Iterator[np.ndarray | int]:
            if track is not None:
                return self._driver_frames(len(track.motion), driver_info.kind == "image", single_pass)
            return self._driver_crops(driver_info, driver_framing.box, None if single_pass else fps)

        if still_source:
            timeline = FrameReader(driver_info.path)  # the driver sets frames, rate and length
            fps = timeline.fps
            portrait_crop = crop(read_image(source_info.path), source_framing.box, size)
            portrait = self.engine.encode([portrait_crop])
            portrait_motion = self.engine.motion_of(portrait)
            items: Iterable[_Item] = (
                _Item(None, portrait_crop, c, 1.0) for c in driver_stream(single_pass=True)
            )
            duration_cap = None
        else:
            timeline = FrameReader(source_info.path, start=r.start, duration=r.duration)
            fps = timeline.fps
            items = self._frames(timeline, source_framing.box, driver_stream(single_pass=False))
            portrait = portrait_motion = None
            duration_cap = r.duration
        total = timeline.frame_count_estimate

        if r.paste:
            out_w, out_h = source_info.width, source_info.height
        else:
            out_w = out_h = size
        if r.side_by_side:
            probe_frame = _side_by_side([np.zeros((out_h, out_w, 3), np.uint8)] * 2 + [np.zeros((size, size, 3), np.uint8)], out_h)
            out_w = probe_frame.shape[1]

        audio = self._audio(source_info, driver_info, still_source, duration_cap)
        writer = VideoWriter(r.output, width=out_w, height=out_h, fps=fps, crf=r.crf, audio=audio, overwrite=r.overwrite, inputs=(r.source, r.driver))
        if writer.audio_dropped:
            self.reporter.note("a PNG sequence has no audio track; the audio was not kept")
        paster = (
            Paster(source_framing.box, source_info.width, source_info.height, mask=r.mask, feather=r.feather, method=r.paste_method, fps=float(fps))
            if r.paste
            else None
        )
        model_reference = paster is not None and r.paste_method != "replace" and r.paste_reference == "model"
        driver_still = driver_info.kind == "image"
        fixed_motion: list[torch.Tensor] = []
        frames_edited = 0

        def infer(batch: list[_Item]) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
            """(edited crop, reference crop) per item; (None, None) where the frame is kept."""
            nonlocal frames_edited
            start = time.perf_counter()
            rows = [i for i, item in enumerate(batch) if item.weight > 0]
            results: list[tuple[np.ndarray | None, np.ndarray | None]] = [(None, None)] * len(batch)
            if not rows:
                return results
            chosen = [batch[i] for i in rows]
            driver_crops = [item.driver for item in chosen]
            if track is not None:
                driver_motion = track.motion[torch.tensor(driver_crops)]
            elif driver_still:
                if not fixed_motion:
                    fixed_motion.append(self.engine.motion(driver_crops[:1]))
                driver_motion = fixed_motion[0].expand(len(chosen), -1)
            else:
                driver_motion = self.engine.motion(driver_crops)
            weights = torch.tensor([item.weight for item in chosen])
            weight = None if bool((weights == 1).all()) else weights
            needs_source = r.motion.needs_source_motion or weight is not None or model_reference
            if still_source:
                encoding, source_motion = portrait, portrait_motion
            else:
                encoding = self.engine.encode([item.crop for item in chosen])
                source_motion = self.engine.motion_of(encoding) if needs_source else None
            motion = r.motion(driver_motion, source_motion, weight)
            edited, references = self.engine.render(encoding, motion, r.mode, source_motion if model_reference else None)
            for k, i in enumerate(rows):
                reference = references[k] if references is not None else (batch[i].crop if paster is not None else None)
                results[i] = (edited[k], reference)
            frames_edited += len(rows)
            self.timer.add("infer", time.perf_counter() - start)
            return results

        stage = self.reporter.stage(f"editing ({r.mode})", total)
        frames_written = 0
        blank = np.zeros((size, size, 3), np.uint8)

        def emit(item: _Item, edited: np.ndarray | None, reference: np.ndarray | None) -> None:
            nonlocal frames_written
            if edited is None:
                out = item.frame if paster is not None else item.crop  # a frame that is kept
            elif paster is not None:
                out = self.timer.timed("paste", paster.paste, item.frame, edited, reference)
            else:
                out = edited
            if r.side_by_side:
                left = item.frame if item.frame is not None else item.crop
                out = _side_by_side([left, item.driver if isinstance(item.driver, np.ndarray) else blank, out], out_h)
            self.timer.timed("encode", writer.write, out)
            frames_written += 1
            stage.advance()

        depth = 2 * batch_size
        source_stream = Prefetch(items, depth=depth, name="decode")
        try:
            with writer:
                sink = Sink(lambda job: emit(*job), depth=depth, name="paste-encode")
                try:
                    for batch in _batched(source_stream, batch_size):
                        for item, (edited, reference) in zip(batch, infer(batch)):
                            sink.put((item, edited, reference))
                except BaseException:
                    sink.abort()  # stop writing before the writer discards its file
                    raise
                sink.close()
                if frames_written == 0:
                    raise InputError("no frames to edit", "check --start/--duration and the inputs")
        finally:
            source_stream.close()
            timeline.close()
            stage.close()
            if paster is not None:
                paster.close()

        decode_errors = getattr(timeline, "decode_errors", 0)
        if decode_errors:
            which = "driver" if still_source else "source"
            self.reporter.note(f"the {which} had {decode_errors} decode error(s): ffmpeg concealed them, so some frames may show damage (re-encode the file to check)")
        self.timer.add("total", time.perf_counter() - began)
        report = self._report(source_info, driver_info, source_framing, driver_framing, output_path, writer, fps, frames_written, paster, audio)
        return {**report, "batch_size": batch_size, "frames_edited": frames_edited, "decode_errors": decode_errors}

    def _audio(self, source: MediaInfo, driver: MediaInfo, still_source: bool, duration: float | None) -> AudioSource | None:
        choice = self.request.audio
        if choice == "none":
            return None
        if choice == "source":
            if still_source:
                return None
            return AudioSource(source.path, start=self.request.start, duration=duration)
        if driver.kind == "image":
            return None
        return AudioSource(driver.path, start=0.0, duration=None)

    def _report(self, source: MediaInfo, driver: MediaInfo, source_framing: Framing, driver_framing: Framing, output: Path, writer: VideoWriter, fps: Fraction, frames: int, paster: Paster | None, audio: AudioSource | None) -> dict:
        r = self.request
        return {
            "source": str(source.path),
            "driver": str(driver.path),
            "output": str(output),
            "mode": r.mode,
            "paste": r.paste,
            "frames": frames,
            "fps": float(fps),
            "duration": frames / float(fps),
            "box": list(source_framing.box.as_tuple()),
            "driver_box": list(driver_framing.box.as_tuple()),
            "frames_with_face": source_framing.frames_with_face,
            "frames_scanned": source_framing.frames,
            "mask_fallback_frames": paster.fallbacks if paster is not None else None,
            "paste_method": r.paste_method if r.paste else None,
            "paste_reference": r.paste_reference if r.paste and r.paste_method != "replace" else None,
            "mask": r.mask if r.paste else None,
            "edit_span": [r.edit_start, r.edit_end] if (r.edit_start is not None or r.edit_end is not None) else None,
            "audio": None if audio is None or writer.audio is None or writer.audio_dropped else str(audio.path),
            "driver_end": r.driver_end,
            "weights": str(self.engine.weights),
            "model": {**self.engine.located.to_dict(), "demo": model_note(self.engine.located) is not None} if self.engine.located else None,
            "device": str(self.engine.device),
            "precision": r.precision,
            "timings": {k: round(v, 3) for k, v in self.timer.seconds.items()},
        }


def run_edit(request: EditRequest, reporter: Reporter | None = None) -> dict:
    """Run one editing request (see :class:`EditRequest`) and return its report."""
    return EditJob(request, reporter).run()
