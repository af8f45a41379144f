"""Encoding RGB frames to a video file (or a PNG sequence) that appears only when complete.

Frames are piped to one ffmpeg process, which also muxes the audio of another file, into a
hidden temporary sibling of the output; success renames it into place (atomic within a
folder), any exception kills ffmpeg and deletes it. A crash or Ctrl-C therefore never leaves
a half-written file under the name the user asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import ffmpeg
import numpy as np

from dpe_cli.errors import DPEError, InputError, OutputExistsError
from dpe_cli.video.probe import as_fraction, ffmpeg_exe, ffmpeg_reason, ffmpeg_url, has_audio

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
_FRAME_NAME = re.compile(r"frame_\d{6}\.png")


@dataclass(frozen=True)
class AudioSource:
    """The audio to put under the video: ``duration`` seconds of ``path`` from ``start``."""

    path: Path
    start: float = 0.0
    duration: float | None = None


def is_folder_target(path: str | Path) -> bool:
    """A PNG sequence is asked for by an existing folder or a path ending in a separator."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).expanduser().is_dir()


def check_output_path(path: str | Path, overwrite: bool) -> Path:
    """Validate an output path before any long work; returns it resolved.

    Video files need a .mp4, .mov or .mkv suffix. A PNG-sequence folder may exist if it is
    empty; one that holds only ``frame_NNNNNN.png`` files is replaced with ``overwrite``;
    any other non-empty folder is refused even then, so a mistyped path never wipes data.
    """
    folder = is_folder_target(path)
    p = Path(path).expanduser().resolve()
    if not p.parent.is_dir():
        raise InputError(f"{p.parent}: output folder does not exist", "create it first")
    if folder:
        if p.exists() and not p.is_dir():
            raise InputError(f"{p}: exists and is not a folder", "drop the trailing /")
        contents = list(p.iterdir()) if p.is_dir() else []
        if contents and not all(_FRAME_NAME.fullmatch(c.name) for c in contents):
            raise OutputExistsError(
                f"{p}: folder holds other files", "choose a new or empty folder for frames"
            )
        if contents and not overwrite:
            raise OutputExistsError(f"{p}: already holds frames", "pass --overwrite to replace")
        return p
    if p.suffix.lower() not in CONTAINERS:
        raise InputError(
            f"{p}: unsupported output type {p.suffix or '(no suffix)'!r}",
            "use .mp4, .mov or .mkv, or end the path with / for a PNG sequence",
        )
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p}: already exists", "pass --overwrite to replace it")
    return p


class VideoWriter:
    """Context manager that encodes RGB uint8 HxWx3 frames at a constant ``fps``.

    Video is H.264 (libx264, ``crf``, ``preset``) in yuv420p with BT.709 tags, which every
    player handles. 4:2:0 cannot represent an odd width or height, so odd sizes are encoded
    as yuv444p instead: the file keeps the exact size, at the cost of players that only know
    4:2:0 (browsers, QuickTime). Pass even sizes when the file must play everywhere.

    ``audio`` is re-encoded to AAC in the same ffmpeg run, trimmed by its ``start`` and
    ``duration``; the video's length rules: longer audio is cut at the last frame, shorter
    audio is padded with silence (``apad`` plus ``-shortest``, which then ends with the
    video). A source without audio gives a silent video. For a PNG-sequence target
    (see :func:`check_output_path`) the audio cannot be kept: ``audio_dropped`` says so
    as soon as the writer is made, so callers can warn before the long work.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        crf: int = 18,
        audio: AudioSource | None = None,
        overwrite: bool = False,
        preset: str = "medium",
    ) -> None:
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"need positive width, height and fps, got {width}x{height} @ {fps}")
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be between 0 and 51, got {crf}", "18 is near lossless")
        if preset not in X264_PRESETS:
            choices = ", ".join(X264_PRESETS)
            raise InputError(f"unknown x264 preset {preset!r}", f"use one of {choices}")
        self.folder = is_folder_target(path)
        self.path = check_output_path(path, overwrite)
        self.width, self.height = width, height
        self.fps = as_fraction(fps)
        self.crf, self.preset, self.overwrite = crf, preset, overwrite
        self.audio = audio if audio is not None and has_audio(audio.path) else None
        self.audio_dropped = self.folder and self.audio is not None
        self.frames_written = 0
        # Hidden sibling, so the final rename stays within one filesystem and is atomic.
        stem, suffix = (self.path.name, "") if self.folder else (self.path.stem, self.path.suffix)
        self._partial = self.path.with_name(f".{stem}.partial-{os.getpid()}{suffix}")
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = tempfile.TemporaryFile()

    def write(self, frame: np.ndarray) -> None:
        """Append one frame (RGB uint8, ``height`` x ``width`` x 3)."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height}x{self.width}x3 uint8 frame, "
                f"got {frame.shape} {frame.dtype}"
            )
        if self.folder:
            self._write_png(frame)
        else:
            self._write_pipe(np.ascontiguousarray(frame))
        self.frames_written += 1

    def _write_png(self, frame: np.ndarray) -> None:
        self._partial.mkdir(exist_ok=True)
        name = self._partial / f"frame_{self.frames_written + 1:06d}.png"
        if not cv2.imwrite(str(name), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
            raise DPEError(f"{name}: could not write PNG", "check free disk space")

    def _write_pipe(self, frame: np.ndarray) -> None:
        if self._proc is None:
            # stderr goes to a file: a full stderr pipe would stall ffmpeg and then write().
            # A new session keeps Ctrl-C away from ffmpeg; __exit__ is what stops it.
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                start_new_session=True,
            )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(memoryview(frame).cast("B"))
        except BrokenPipeError:
            raise self._ffmpeg_failed() from None

    def _command(self) -> list[str]:
        rate = f"{self.fps.numerator}/{self.fps.denominator}"
        odd = self.width % 2 or self.height % 2
        video = ffmpeg.input(
            "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{self.width}x{self.height}",
            framerate=rate,
        ).video  # fmt: skip
        # sRGB frames become BT.709 YUV, tagged so that players convert them back the same way.
        video = video.filter("scale", out_color_matrix="bt709", out_range="tv").filter(
            "setparams", range="tv", color_primaries="bt709", color_trc="bt709", colorspace="bt709"
        )
        streams = [video]
        options: dict[str, object] = {
            "format": CONTAINERS[self.path.suffix.lower()],
            "vcodec": "libx264",
            "crf": self.crf,
            "preset": self.preset,
            "pix_fmt": "yuv444p" if odd else "yuv420p",
            "fps_mode": "passthrough",
        }
        if self.path.suffix.lower() in (".mp4", ".mov"):
            options["movflags"] = "+faststart"
        if self.audio is not None:
            trim = {"ss": self.audio.start} if self.audio.start else {}
            if self.audio.duration is not None:
                trim["t"] = self.audio.duration
            sound = ffmpeg.input(ffmpeg_url(Path(self.audio.path).resolve()), **trim).audio
            streams.append(sound.filter("apad"))
            options.update(acodec="aac", audio_bitrate="192k", shortest=None)
        out = ffmpeg.output(*streams, str(self._partial), **options)
        return out.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-y").compile(
            cmd=ffmpeg_exe()
        )

    def _ffmpeg_failed(self) -> DPEError:
        if self._proc is not None:
            self._proc.wait()
        self._stderr.seek(0)
        reason = ffmpeg_reason(self._stderr.read().decode(errors="replace"))
        return DPEError(f"{self.path}: ffmpeg could not write the video ({reason})")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._finish()
            else:
                self._abort()
        except BaseException:
            self._abort()
            raise
        finally:
            self._stderr.close()

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise DPEError(f"{self.path}: no frames were written, so nothing was saved")
        if self._proc is not None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass  # the return code below reports it
            if self._proc.wait() != 0:
                raise self._ffmpeg_failed()
        self._publish()

    def _publish(self) -> None:
        """Move the finished temporary into place, re-checking the target it may replace."""
        check_output_path(str(self.path) + (os.sep if self.folder else ""), self.overwrite)
        if self.folder and self.path.is_dir() and any(self.path.iterdir()):
            # Only a folder of our own frames gets here (checked above); swap, then delete it.
            old = self.path.with_name(f".{self.path.name}.old-{os.getpid()}")
            self.path.rename(old)
            self._partial.rename(self.path)
            shutil.rmtree(old)
        else:
            os.replace(self._partial, self.path)

    def _abort(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except BrokenPipeError:
                    pass
        if self._partial.is_dir():
            shutil.rmtree(self._partial, ignore_errors=True)
        else:
            self._partial.unlink(missing_ok=True)
