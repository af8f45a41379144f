"""The editing job: a chain of small stages through which each output frame travels.

    decode (+ crop) -> infer -> paste -> encode

The set-up finds each input's fixed crop box (``framing``, a streaming detection pass) and
the driver's feed of cues (``drivers``); then decoding (``frames``), inference (``infer``)
and pasting with encoding (``compose``) run as overlapping stages joined by bounded queues
(``stream``), so memory does not grow with the video's length. The output is written to a
temporary file and renamed only when complete.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from dpe_cli.edit.casting import Cast, Casting, Subject, cast_subjects
from dpe_cli.edit.compose import Compositor, output_size
from dpe_cli.edit.drivers import CropFeed, DriverCache, DriverFeed, TrackFeed
from dpe_cli.edit.frames import FrameItem, portrait_frames, video_frames
from dpe_cli.edit.framing import Framing, frame_input
from dpe_cli.edit.findings import find_person, photo_descriptor, shots_report, summary
from dpe_cli.edit.infer import Inference
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.scan import Scan, clipped, scan_video
from dpe_cli.edit.stream import Prefetch, Sink, StageTimer, batched
from dpe_cli.engine import Engine
from dpe_cli.errors import InputError
from dpe_cli.face.crop import CropBox, crop
from dpe_cli.face.paste import Paster
from dpe_cli.inputs import InputFiles
from dpe_cli.model import Encoding
from dpe_cli.progress import Reporter, Stage
from dpe_cli.video import AudioSource, FrameReader, MediaInfo, VideoWriter, check_output_path, first_frame, probe, read_image
from dpe_cli.weights import model_note


@dataclass
class _Plan:
    """What the set-up found: the inputs, their framing, the driver's feed, the timeline that
    sets the output's frames (the source video, or a still portrait's driver) and its items."""

    source: MediaInfo
    driver: MediaInfo
    source_framing: Framing
    driver_framing: Framing
    feed: DriverFeed
    timeline: FrameReader
    items: Iterator[FrameItem]
    portrait: tuple[Encoding, torch.Tensor] | None
    casting: Casting | None = None  # a video's subjects
    scan: Scan | None = None  # the shots and people, when framed shot by shot

    @property
    def still(self) -> bool:
        return self.source.kind == "image"


class _Encode:
    """The last stage: one output picture into the writer, and the progress bar on."""

    def __init__(self, writer: VideoWriter, stage: Stage, timer: StageTimer) -> None:
        self.writer, self.stage, self.timer = writer, stage, timer
        self.frames = 0

    def __call__(self, picture: np.ndarray) -> None:
        self.timer.timed("encode", self.writer.write, picture)
        self.frames += 1
        self.stage.advance()


def stream(items: Iterator[FrameItem], inference: Callable[[list[FrameItem]], None], finish: Callable[[FrameItem], None], batch_size: int) -> None:
    """Runs the chain: items decoded ahead in one thread, inferred in batches here, finished
    (pasted and encoded) in another; each queue holds at most two batches."""
    depth = 2 * batch_size
    source = Prefetch(items, depth=depth, name="decode")
    try:
        sink = Sink(finish, depth=depth, name="paste-encode")
        try:
            for batch in batched(source, batch_size):
                inference(batch)
                for item in batch:
                    sink.put(item)
        except BaseException:
            sink.abort()  # stop writing before the writer discards its file
            raise
        sink.close()
    finally:
        source.close()


def cast_source(source: MediaInfo, r: EditRequest, span_start: float, span: float | None, reporter: Reporter,
                timer: StageTimer) -> tuple[Framing, Casting, Scan | None]:
    """The source's subjects over the edited span (``span_start``, ``span`` seconds; None: to
    the end): shot by shot and person by person (``shots`` auto), or one fixed box for the
    whole video or a still. ``dpe preview`` frames with this too, so it shows what runs."""
    if not r.per_shot or source.kind == "image":
        framing = frame_input(source, r, "source", reporter, timer, start=span_start, duration=span)
        return framing, Casting.single(framing.box), None
    wanted = None
    if r.person is not None:
        wanted = photo_descriptor(r.person)
    scan = scan_video(source, start=r.start, duration=r.duration, shots=r.shots, identity=True, reporter=reporter, timer=timer)
    first = round((span_start - r.start) * scan.fps)
    end = scan.frames if span is None else first + round(span * scan.fps)
    scan = clipped(scan, first, end)
    person = None if wanted is None else find_person(scan, wanted, r.person)
    casting = cast_subjects(scan, Cast(r.box_scale, r.fade, r.faces, r.face_index, person))
    lead = casting.subjects[0]
    return Framing(lead.box, scan.frames, scan.frames_with_face), casting, scan


class EditJob:
    """One run of an editing request; ``run`` returns the report (the CLI's ``--json``)."""

    def __init__(self, request: EditRequest, reporter: Reporter | None = None, engine: Engine | None = None, drivers: DriverCache | None = None,
                 inputs: InputFiles | None = None) -> None:
        self.request = request
        self.inputs = inputs  # what the output may never be (a batch: every job's inputs); None: source and driver
        self.reporter = reporter or Reporter()
        self.engine = engine
        self.drivers = drivers
        self.timer = StageTimer()

    # -- set-up ------------------------------------------------------------------------------
    def _probe_inputs(self) -> tuple[MediaInfo, MediaInfo]:
        r = self.request
        source, driver = probe(r.source), probe(r.driver)
        if r.portrait and source.kind != "image":
            raise InputError(f"{source.path.name} is a video, not a still portrait", "give a portrait image, or edit the video with `dpe edit-expression` / `dpe edit-pose`")
        if source.kind == "image" and r.paste and not r.portrait:
            raise InputError(f"{source.path.name} is a still image", "use `dpe reenact` to animate a portrait")
        if r.start and source.kind == "image":
            raise InputError("`start`/`duration` apply to a source video", "drop them for a still portrait")
        if source.kind == "image" and driver.kind == "image":
            raise InputError("both the portrait and the driver are still images", "drive the portrait with a video")
        if source.kind == "image" and (r.edit_start is not None or r.edit_end is not None):
            raise InputError("`edit_start`/`edit_end` apply to a source video", "drop them for a still portrait")
        if isinstance(r.relative_to, float):
            if driver.kind == "image":
                raise InputError(f"`relative_to` {r.relative_to:g} s: the driver {driver.path.name} is a still image", "give a driver video, or `relative_to` IMAGE")
            if r.relative_to >= driver.duration:
                raise InputError(f"`relative_to` {r.relative_to:g} s is past the end of the driver {driver.path.name} ({driver.duration:.2f} s)", "give a time within the driver")
        return source, driver

    def framing(self, info: MediaInfo, *, role: str, start: float = 0.0, duration: float | None = None) -> Framing:
        """The fixed crop box of the source or the driver (``role``); errors name which."""
        return frame_input(info, self.request, role, self.reporter, self.timer, start=start, duration=duration)

    def _edited_span(self, source: MediaInfo) -> tuple[float, float | None]:
        """Start and length (None: to the end) of the source's part that is edited: detection
        and the driver's framing cover only those frames."""
        r = self.request
        start = max(r.start, r.edit_start or 0.0)
        cut_end = r.start + r.duration if r.duration is not None else math.inf
        end = min(cut_end, r.edit_end if r.edit_end is not None else math.inf)
        if source.kind != "image" and start >= min(end, source.duration):
            raise InputError(
                f"the edited span starts at {start:g} s, past the end of {source.path.name} ({source.duration:.2f} s) or of the cut",
                "give `start`/`edit_start` within the video",
            )
        return start, None if math.isinf(end) else end - start

    def _driver(self, source: MediaInfo, driver: MediaInfo, span_start: float, span: float | None) -> tuple[Framing, DriverFeed]:
        """The driver's framing and feed: from the batch's cache of encoded drivers when there is
        one, else cropped frame by frame. A still portrait takes the driver's own frames once;
        a video source resamples the driver to its frame rate."""
        r, engine = self.request, self.engine
        assert engine is not None
        still = source.kind == "image"
        fps = None if still else source.fps
        if self.drivers is not None and not r.side_by_side:
            track = self.drivers.track(r, engine, driver, fps, lambda: self.framing(driver, role="driver"), self.timer)
            return track.framing, TrackFeed(track, driver.kind == "image", single_pass=still, driver_end=r.driver_end)
        # The driver is framed on the part that will be used (it may be longer than the source).
        driver_span = None if still else (span or max(source.duration - span_start, 1e-3))
        framing = self.framing(driver, role="driver", duration=driver_span)
        panel = (source.height if r.paste else engine.size) if r.side_by_side else None  # the output's height
        return framing, CropFeed(driver, framing.box, fps, r.driver_end, engine, self.timer, panel)

    def _plan(self, source: MediaInfo, driver: MediaInfo) -> _Plan:
        r, engine = self.request, self.engine
        assert engine is not None
        span_start, span = self._edited_span(source)
        source_framing, casting, scan = cast_source(source, r, span_start, span, self.reporter, self.timer)
        driver_framing, feed = self._driver(source, driver, span_start, span)
        if source.kind == "image":
            timeline = FrameReader(driver.path)  # the driver sets frames, rate and length
            photo = read_image(source.path)
            photo.flags.writeable = False  # shared by every output frame
            portrait_crop = crop(photo, source_framing.box, engine.size)
            encoding = engine.encode([portrait_crop])
            items = portrait_frames(photo if r.paste else None, portrait_crop, source_framing.box, feed.cues())
            return _Plan(source, driver, source_framing, driver_framing, feed, timeline, items, (encoding, engine.motion_of(encoding)))
        timeline = FrameReader(source.path, start=r.start, duration=r.duration)
        items = video_frames(timeline, casting, feed.cues(), r, engine.size, self.timer, paste=bool(r.paste), keep_frame=bool(r.paste or r.side_by_side))
        line = summary(scan, casting, r.faces) if scan is not None else None
        if line:
            self.reporter.note(line)
        return _Plan(source, driver, source_framing, driver_framing, feed, timeline, items, None, casting, scan)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        r = self.request
        began = time.perf_counter()
        inputs = self.inputs if self.inputs is not None else (r.source, r.driver, *([r.relative_to] if isinstance(r.relative_to, Path) else []))
        output_path = check_output_path(r.output, r.overwrite, inputs=inputs)
        source, driver = self._probe_inputs()
        if self.engine is None:
            self.engine = Engine.load(r.weights, r.device, r.precision)
            self.engine.announce(self.reporter)
        batch_size = r.batch_size or (8 if self.engine.device.type == "cuda" else 1)
        unused = r.unused_paste_options()
        if unused:
            names = ", ".join("--" + {"paste_method": "paste"}.get(n, n).replace("_", "-") for n in unused)
            why = "--output-crop" if r.output_crop else f"a {r.mode} edit is not pasted back, only an expression edit is"
            self.reporter.note(f"{names} unused: the output is the face crop ({why})")
        plan = self._plan(source, driver)
        fps = plan.timeline.fps
        size = self.engine.size
        out_w, out_h = output_size(bool(r.paste), source.width, source.height, size, r.side_by_side)

        audio = self._audio(source, driver, plan.still, None if plan.still else r.duration)
        writer = VideoWriter(r.output, width=out_w, height=out_h, fps=fps, crf=r.crf, audio=audio, overwrite=r.overwrite, inputs=inputs)
        if writer.audio_dropped:
            self.reporter.note("a PNG sequence has no audio track; the audio was not kept")
        paster = self._pasters(source, float(fps)) if r.paste else None
        neutral = self._driver_neutral(driver, plan.driver_framing.box)
        inference = Inference(self.engine, r, plan.feed, self.timer, portrait=plan.portrait, neutral=neutral,
                              model_reference=paster is not None and r.paste_method != "replace" and r.paste_reference == "model",
                              keep_reference=paster is not None)
        compose = Compositor(paster, self.timer, size, panel_height=out_h if r.side_by_side else None, picture=plan.feed.picture)
        stage = self.reporter.stage(f"editing ({r.mode})", plan.timeline.frame_count_estimate)
        encode = _Encode(writer, stage, self.timer)
        try:
            with writer:
                stream(plan.items, inference, lambda item: encode(compose(item)), batch_size)
                if encode.frames == 0:
                    raise InputError("no frames to edit", "check `start`/`duration` and the inputs")
        finally:
            plan.timeline.close()
            stage.close()
            compose.close()

        decode_errors = getattr(plan.timeline, "decode_errors", 0)
        if decode_errors:
            which = "driver" if plan.still else "source"
            self.reporter.note(f"the {which} had {decode_errors} decode error(s): ffmpeg concealed them, so some frames may show damage (re-encode the file to check)")
        self.timer.add("total", time.perf_counter() - began)
        report = self._report(source, driver, plan.source_framing, plan.driver_framing, output_path, writer, fps, encode.frames, compose.fallbacks if r.paste else None, audio)
        if plan.scan is not None and plan.casting is not None:
            report.update(shots_report(plan.scan, plan.casting, inference.per_subject, encode.frames))
        return {**report, "batch_size": batch_size, "frames_edited": inference.frames_edited, "decode_errors": decode_errors}

    def _pasters(self, source: MediaInfo, fps: float) -> Callable[[Subject], Paster]:
        """Makes each subject's paster, at the subject's first box; a still portrait's finds
        its mask once."""
        r = self.request
        still = source.kind == "image"

        def paster(subject: Subject) -> Paster:
            return Paster(subject.box_at(subject.first), source.width, source.height, mask=r.mask, feather=r.feather, method=r.paste_method,
                          fps=fps, still=still)

        return paster

    def _driver_neutral(self, driver: MediaInfo, box: CropBox) -> torch.Tensor | None:
        """The motion of the driver's neutral that ``relative_to`` names (a time of the driver,
        cropped with the driver's box, or a still of the driver's actor, framed on its own);
        None: relative driving starts from the driver's first frame."""
        r, engine = self.request, self.engine
        assert engine is not None
        if r.relative_to is None:
            return None
        if isinstance(r.relative_to, Path):
            info = probe(r.relative_to)
            if info.kind != "image":
                raise InputError(f"`relative_to` {info.path.name} is a video", "give a still image of the driver's actor, or a time in seconds of the driver")
            framing = self.framing(info, role="driver reference")
            return engine.motion([crop(read_image(info.path), framing.box, engine.size)])
        seconds = float(r.relative_to)  # within the driver video (checked with the inputs)
        frame = first_frame(driver.path, seconds)
        if frame is None:
            raise InputError(f"`relative_to` {seconds:g} s is past the end of the driver {driver.path.name} ({driver.duration:.2f} s)", "give a time within the driver")
        return engine.motion([crop(frame, box, engine.size)])

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

    def _report(self, source: MediaInfo, driver: MediaInfo, source_framing: Framing, driver_framing: Framing, output: Path, writer: VideoWriter, fps: Fraction, frames: int, fallbacks: int | None, audio: AudioSource | None) -> dict:
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
            "mask_fallback_frames": fallbacks,
            "paste_method": r.paste_method if r.paste else None,
            "paste_reference": r.paste_reference if r.paste and r.paste_method != "replace" else None,
            "mask": r.mask if r.paste else None,
            "edit_span": [r.edit_start, r.edit_end] if (r.edit_start is not None or r.edit_end is not None) else None,
            "audio": None if audio is None or writer.audio is None or writer.audio_dropped else str(audio.path),
            "driver_end": r.driver_end,
            "weights": str(self.engine.weights),
            "model": {**self.engine.located.to_dict(), "demo": model_note(self.engine.located) is not None} if self.engine.located else None,
            "device": str(self.engine.device),
            "precision": self.engine.precision,
            "precision_reason": self.engine.precision_reason,
            "relative_to": None if r.relative_to is None else (str(r.relative_to) if isinstance(r.relative_to, Path) else r.relative_to),
            "timings": {k: round(v, 3) for k, v in self.timer.seconds.items()},
        }


def run_edit(request: EditRequest, reporter: Reporter | None = None) -> dict:
    """Run one editing request (see :class:`EditRequest`) and return its report."""
    return EditJob(request, reporter).run()
