"""Where the face is: one fixed crop box per input, found in a streaming detection pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpe_cli.errors import InputError
from dpe_cli.face.crop import DEFAULT_BOX_SCALE, BoxAccumulator, CropBox
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
