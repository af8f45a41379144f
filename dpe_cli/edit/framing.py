"""Where the face is: one fixed crop box per input, found in a streaming detection pass."""

from __future__ import annotations

import time
from dataclasses import dataclass

from dpe_cli.edit.request import MAX_BOX_FRAMES, EditRequest
from dpe_cli.edit.stream import StageTimer
from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face.crop import DEFAULT_BOX_SCALE, BoxAccumulator, CropBox, box_in_frame, parse_box
from dpe_cli.face.detect import FaceDetector
from dpe_cli.progress import Reporter
from dpe_cli.video import FrameReader, MediaInfo

# Detection runs on frames scaled to at most this side: mediapipe's detector looks at
# 128-192 px internally, so full-resolution decoding would only cost time.
DETECT_MAX_SIDE = 640


@dataclass(frozen=True)
class Framing:
    box: CropBox
    frames: int  # frames looked at (0 when the box was given)
    frames_with_face: int


def whole_frame(info: MediaInfo) -> Framing:
    """``--crop none``: the input already is a face crop; it must be square."""
    if info.width != info.height:
        raise InputError(
            f"{info.path.name} is {info.width}x{info.height}, but --crop none needs square face crops",
            "drop --crop none to detect and crop the face, or give --box x,y,w,h",
        )
    return Framing(CropBox(0, 0, info.width), 0, 0)


def find_box(
    info: MediaInfo,
    *,
    start: float = 0.0,
    duration: float | None = None,
    face_index: int = 0,
    scale: float = DEFAULT_BOX_SCALE,
    reporter: Reporter | None = None,
    label: str = "",
) -> Framing:
    """Detect the face in every frame (streamed at reduced size) and fix one square box."""
    reporter = reporter or Reporter()
    shrink = min(1.0, DETECT_MAX_SIDE / max(info.width, info.height))
    size = (max(1, round(info.width * shrink)), max(1, round(info.height * shrink)))
    reader = FrameReader(info.path, start=start, duration=duration, size=size if shrink < 1 else None)
    accumulator = BoxAccumulator(face_index=face_index)
    stage = reporter.stage(f"finding the face{label}", reader.frame_count_estimate)
    try:
        with FaceDetector() as detector:
            for frame in reader:
                accumulator.add(detector.detect(frame))
                stage.advance()
    finally:
        reader.close()
        stage.close()
    box = accumulator.box(reader.width, reader.height, scale=scale)
    if shrink < 1:
        if box.as_tuple() == (0, 0, reader.width, reader.height):
            box = CropBox(0, 0, info.width)
        else:
            box = CropBox(round(box.x / shrink), round(box.y / shrink), round(box.size / shrink))
    return Framing(box, accumulator.frames, accumulator.frames_with_face)


def frame_input(info: MediaInfo, request: EditRequest, role: str, reporter: Reporter, timer: StageTimer,
                *, start: float = 0.0, duration: float | None = None) -> Framing:
    """The fixed crop box of the source or the driver (``role``) as the request asks for it
    (whole frame, a given ``--box``, or detection over the span); errors name which input."""
    r = request
    if r.crop == "none":
        return whole_frame(info)
    if role == "source" and r.box is not None:
        box = parse_box(r.box)
        x, y, w, h = (int(v) for v in r.box.split(","))
        if w != h:
            reporter.note(f"--box {r.box} is not square: the {box.size}x{box.size} square around its centre is used")
        if box.size > MAX_BOX_FRAMES * max(info.width, info.height) or not any(box_in_frame(box, info.width, info.height)[2:]):
            raise InputError(f"`box` {r.box} does not fit the {info.width}x{info.height} source", f"give a box that overlaps the frame, at most {MAX_BOX_FRAMES}x its size")
        return Framing(box, 0, 0)
    began = time.perf_counter()
    index = r.face_index if role == "source" else r.driver_face_index
    try:
        return find_box(info, start=start, duration=duration, face_index=index, scale=r.box_scale, reporter=reporter, label=f" ({role})")
    except NoFaceError as exc:
        option = "`face_index`" if role == "source" else "`driver_face_index`"
        hint = exc.hint.replace("use a face index", f"use {option}") if exc.hint else None
        if role == "source" and "no face found" in exc.message:
            hint = "use a source with a visible face, or give its crop with `box` x,y,w,h"
        elif role == "driver" and "no face found" in exc.message:
            hint = "drive with a video or image that shows a face"
        raise NoFaceError(f"{role} {info.path.name}: {exc.message}", hint) from None
    finally:
        timer.add("detect", time.perf_counter() - began)
