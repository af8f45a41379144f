"""Decoded frames, one at a time: an ffmpeg subprocess pipes raw RGB into numpy arrays.

Frames stream through a pipe so a video of any length costs one frame of memory. ffmpeg
does the seeking, the rotation from metadata, the resampling to a constant frame rate and
the scaling; stills go through OpenCV, which also applies EXIF orientation.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import IO

import cv2
import ffmpeg
import numpy as np

from dpe_cli.closing import Closing
from dpe_cli.errors import InputError
from dpe_cli.video.probe import (
    VIDEO_STREAM,
    MediaInfo,
    as_fraction,
    existing_file,
    ffmpeg_exe,
    ffmpeg_reason,
    ffmpeg_url,
    probe,
)


# What ffmpeg's decoders report for a damaged stream (one line per damaged slice or frame).
_DECODE_ERROR = re.compile(
    r"error while decoding|concealing|corrupt|invalid nal|decode_slice_header error|missing picture"
    r"|non-existing [ps]ps|invalid data found",
    re.IGNORECASE,
)


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 HxWx3, upright according to its EXIF orientation."""
    p = existing_file(path)
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{p}: not a readable image", "convert it to PNG or JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class FrameReader(Closing):
    """Iterable of RGB uint8 frames (HxWx3) of a video or still image.

    Every iteration starts a fresh ffmpeg, so a reader can be walked more than once; breaking
    out of a loop, ``close()`` or leaving the ``with`` block stops that ffmpeg. Video comes out
    at a constant ``fps`` (the source's average rate by default, so variable-frame-rate input
    keeps its duration), resampled by timestamps like ffmpeg's ``fps`` filter. A still image
    yields itself once. Frames are freshly allocated, so callers may modify or keep them.

    ffmpeg conceals a damaged stream and goes on; ``decode_errors`` counts the errors it
    reported during the latest pass (valid once that pass has ended), so
    callers can warn that the frames are not what the file should hold.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        start: float = 0.0,
        duration: float | None = None,
        fps: Fraction | float | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.info: MediaInfo = probe(path)
        if start < 0 or (duration is not None and duration <= 0):
            raise InputError(
                f"{self.info.path}: start must be >= 0 and duration > 0 seconds",
                f"got start {start}, duration {duration}",
            )
        if self.info.kind == "video" and start >= self.info.duration:
            raise InputError(
                f"{self.info.path}: start {start:g} s is past the end ({self.info.duration:.2f} s)",
                "use an earlier start time",
            )
        if fps is not None and fps <= 0:
            raise InputError(f"{self.info.path}: frame rate must be positive, got {fps}")
        if size is not None and min(size) <= 0:
            raise InputError(f"{self.info.path}: frame size must be positive, got {size}")
        self.start = start
        self.duration = duration
        self.width, self.height = size or (self.info.width, self.info.height)
        self.fps: Fraction = as_fraction(fps) if fps is not None else self.info.fps
        self.frame_count_estimate: int = self._estimate(fps is None)
        self._proc: subprocess.Popen[bytes] | None = None
        self.decode_errors = 0

    def _estimate(self, native_rate: bool) -> int:
        if self.info.kind == "image":
            return 1
        if native_rate and self.start == 0 and self.duration is None:
            return self.info.frame_count
        span = self.info.duration - self.start
        if self.duration is not None:
            span = min(span, self.duration)
        return max(1, round(span * self.fps))

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.info.kind == "image":
            yield self._image()
            return
        self.close()
        frame_bytes = self.width * self.height * 3
        count = 0
        with tempfile.TemporaryFile() as err:
            # stderr goes to a file: a full stderr pipe would stall ffmpeg and this loop.
            # A new session keeps Ctrl-C away from ffmpeg; close() is what stops it.
            proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
            self._proc = proc
            try:
                assert proc.stdout is not None
                while True:
                    frame = np.empty((self.height, self.width, 3), np.uint8)
                    if _read_full(proc.stdout, frame.reshape(-1)) < frame_bytes:
                        break  # end of stream; a partial last frame is dropped
                    count += 1
                    yield frame
                returncode = proc.wait()
                if count == 0 and returncode == 0 and self.start > 0:
                    # Within the last frame's interval: the healthy file has no frame left.
                    raise InputError(
                        f"{self.info.path}: start {self.start:g} s is past the last frame "
                        f"(the video is {self.info.duration:.2f} s long)",
                        "use an earlier start time",
                    )
                if count == 0:
                    err.seek(0)
                    reason = ffmpeg_reason(err.read().decode(errors="replace"))
                    what = f"exit {returncode}: {reason}" if returncode else "no frames decoded"
                    raise InputError(
                        f"{self.info.path}: cannot decode video ({what})",
                        "the file may be truncated or corrupt; re-encode it with ffmpeg",
                    )
            finally:
                _stop(proc)
                if self._proc is proc:
                    self._proc = None
                self.decode_errors = _count_decode_errors(err)

    def _command(self) -> list[str]:
        trim = {"ss": self.start} if self.start else {}
        if self.duration is not None:
            trim["t"] = self.duration
        stream = ffmpeg.input(ffmpeg_url(self.info.path), **trim)[VIDEO_STREAM]
        stream = stream.filter("fps", fps=f"{self.fps.numerator}/{self.fps.denominator}")
        if (self.width, self.height) != (self.info.width, self.info.height):
            stream = stream.filter("scale", self.width, self.height, flags="area")
        out = stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
        return out.global_args("-hide_banner", "-nostdin", "-loglevel", "error").compile(
            cmd=ffmpeg_exe()
        )

    def _image(self) -> np.ndarray:
        image = read_image(self.info.path)
        if image.shape[:2] != (self.height, self.width):
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return image

    def close(self) -> None:
        """Stop the running ffmpeg, if any. Safe to call more than once."""
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


def _read_full(pipe: IO[bytes], buffer: np.ndarray) -> int:
    """Fill ``buffer`` from ``pipe``; fewer bytes only at end of stream."""
    view = memoryview(buffer)
    done = 0
    while done < len(view):
        n = pipe.readinto(view[done:])  # type: ignore[attr-defined]
        if not n:
            break
        done += n
    return done


def _count_decode_errors(log: IO[bytes]) -> int:
    log.seek(0)
    return sum(1 for line in log if _DECODE_ERROR.search(line.decode(errors="replace")))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def first_frame(path: str | Path, start: float) -> np.ndarray | None:
    """The video's frame at ``start`` seconds (None: it ends before), decoded alone."""
    reader = FrameReader(path, start=start)
    try:
        return next(iter(reader), None)
    finally:
        reader.close()
