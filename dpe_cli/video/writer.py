"""Encoding RGB frames to a video file (or a PNG sequence) that appears only when complete.

Frames are piped to one ffmpeg process, which also muxes the audio of another file, into a
private temporary folder beside the output (``.dpe-partial-PID-RANDOM``, mode 0700, made
with ``mkdtemp``: nobody can predict its name or plant a link in it); success renames the
result into place (atomic within a folder), any exception kills ffmpeg and deletes the
folder. A crash, Ctrl-C or SIGTERM therefore never leaves a half-written file under the name
the user asked for, and an output is never one of the inputs, whatever ``overwrite`` says.

Only a hard kill (SIGKILL, power loss) can leave a partial folder behind. The next writer
into that folder removes it once its process is gone and nothing in it changed for
``STALE_AFTER_S`` seconds (the PID alone is not trusted: another container sharing the
folder has its own PIDs).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import ffmpeg
import numpy as np

from dpe_cli.bounds import check
from dpe_cli.errors import DPEError, InputError, OutputExistsError
from dpe_cli.inputs import InputFiles
from dpe_cli.video.probe import as_fraction, ffmpeg_exe, ffmpeg_reason, ffmpeg_url, has_audio

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
X264_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
_FRAME_NAME = re.compile(r"frame_\d{6}\.png")
PARTIAL_PREFIX = ".dpe-partial-"
_PARTIAL_NAME = re.compile(re.escape(PARTIAL_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")
STALE_AFTER_S = 600.0


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


def _make_private_dir(folder: Path) -> Path:
    """A fresh 0700 folder in ``folder`` whose name embeds our PID (for stale cleanup)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f"{PARTIAL_PREFIX}{os.getpid()}-", dir=folder))
    except OSError as exc:
        raise InputError(f"cannot write in the output folder {folder} ({exc.strerror or exc})", "choose a writable folder for the output") from exc


def make_output_folder(folder: str | Path, *, dry_run: bool = False) -> list[Path]:
    """Create a missing output folder and its missing parents (``dpe batch``: a manifest that
    names ``out/ep1.mp4`` expects ``out/`` to be made), only inside a folder that exists, is
    writable and is not itself a link, and never through a link: each missing folder is made
    with ``mkdir``, which does not follow a link in its place, and one that appears there as a
    link or a file is refused. Returns the folders made (``dry_run``: that would be made, after
    the same checks), outermost first."""
    folder = Path(os.path.abspath(Path(folder).expanduser()))
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        if os.path.lexists(current):  # a file, or a link to nothing
            raise InputError(f"cannot create the output folder {folder}: {current} is not a folder", "choose another output path")
        missing.append(current)
        current = current.parent
    if not missing:
        return []
    if current.is_symlink():
        raise InputError(f"cannot create the output folder {folder}: {current} is a link", "create the folders yourself, or write below a real folder")
    if not os.access(current, os.W_OK | os.X_OK):
        raise InputError(f"cannot create the output folder {folder}: {current} is not writable", "choose a writable folder for the output")
    if dry_run:
        return list(reversed(missing))
    made = []
    for part in reversed(missing):
        try:
            os.mkdir(part)
        except FileExistsError:
            if part.is_symlink() or not part.is_dir():
                raise InputError(f"cannot create the output folder {folder}: {part} appeared as a link or a file", "choose another output path") from None
            continue  # another worker made it
        made.append(part)
    return made


def check_writable(folder: Path) -> None:
    """Fail now, not after the long work: try to create (and remove) the temporary folder."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in the output folder {folder} (permission denied)", "choose a writable folder for the output")
    with contextlib.suppress(OSError):  # a leftover probe is stale and removed later
        _make_private_dir(folder).rmdir()


def check_encoding(crf: int, preset: str = "medium") -> None:
    """The encoder's settings, checked before any work (the writer checks them again)."""
    check("crf", crf)
    if preset not in X264_PRESETS:
        choices = ", ".join(X264_PRESETS)
        raise InputError(f"unknown x264 preset {preset!r}", f"use one of {choices}")


Inputs = Sequence[str | Path] | InputFiles


def check_output_path(path: str | Path, overwrite: bool, *, inputs: Inputs = ()) -> Path:
    """Validate an output path before any long work; returns it resolved.

    The output may not be any of ``inputs`` (nor a frames folder holding one), and its folder
    must be writable (see :func:`check_output_target` for the rest)."""
    p = check_output_target(path, overwrite, inputs=inputs)
    check_writable(p.parent)
    return p


def check_output_type(path: str | Path) -> None:
    """A video file's suffix must name a container we write (a PNG folder has none)."""
    if is_folder_target(path):
        return
    p = Path(path)
    if p.suffix.lower() not in CONTAINERS:
        raise InputError(
            f"{Path(path).expanduser().absolute()}: unsupported output type {p.suffix or '(no suffix)'!r}",
            "use .mp4, .mov or .mkv, or end the path with / for a PNG sequence",
        )


def check_output_target(path: str | Path, overwrite: bool, *, inputs: Inputs = ()) -> Path:
    """:func:`check_output_path` without the probe of the folder (a batch probes each folder
    once). Video files need a .mp4, .mov or .mkv suffix. A PNG-sequence folder may
    exist if it is empty; one that holds only ``frame_NNNNNN.png`` files is replaced with
    ``overwrite``; any other non-empty folder is refused even then, so a mistyped path never
    wipes data.
    """
    folder = is_folder_target(path)
    p = Path(path).expanduser().resolve()
    if not p.parent.is_dir():
        raise InputError(f"{p.parent}: output folder does not exist", "create it first (`dpe batch` creates the folders its manifest names)")
    (inputs if isinstance(inputs, InputFiles) else InputFiles(inputs)).refuse(p, folder)
    if folder:
        if p.exists() and not p.is_dir():
            raise InputError(f"{p}: exists and is not a folder", "drop the trailing /")
        contents = list(p.iterdir()) if p.is_dir() else []
        if contents and not all(_FRAME_NAME.fullmatch(c.name) for c in contents):
            raise OutputExistsError(
                f"{p}: folder holds other files", "choose a new or empty folder for frames"
            )
        if contents and not overwrite:
            raise OutputExistsError(f"{p}: already holds frames", "pass `overwrite` to replace")
    else:
        check_output_type(p)
        if p.exists() and not overwrite:
            raise OutputExistsError(f"{p}: already exists", "pass `overwrite` to replace it")
    return p


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a PID we could have written; leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _last_change(folder: Path) -> float:
    """Newest mtime of the folder and its entries (a live writer keeps touching them)."""
    times = [folder.lstat().st_mtime]
    with os.scandir(folder) as entries:
        times += [entry.stat(follow_symlinks=False).st_mtime for entry in entries]
    return max(times)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the partial folders a hard-killed writer left in ``folder``; returns them.

    Only our own user's folders named like ours are touched, and only when their PID is no
    longer running and nothing in them changed for ``STALE_AFTER_S`` seconds.
    """
    removed = []
    for entry in folder.glob(f"{PARTIAL_PREFIX}*"):
        match = _PARTIAL_NAME.fullmatch(entry.name)
        try:
            info = entry.lstat()
            if (
                match is None
                or not stat.S_ISDIR(info.st_mode)
                or info.st_uid != os.getuid()
                or _alive(int(match.group(1)))
                or time.time() - _last_change(entry) < STALE_AFTER_S
            ):
                continue
            shutil.rmtree(entry)
        except OSError:  # gone meanwhile, or not ours to remove: not this run's problem
            continue
        removed.append(entry)
    return removed


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

    ``inputs`` are the files the output may never be (see :func:`check_output_path`); the
    check is repeated just before the result replaces anything.
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
        inputs: Inputs = (),
    ) -> None:
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"need positive width, height and fps, got {width}x{height} @ {fps}")
        check_encoding(crf, preset)
        self.folder = is_folder_target(path)
        self.inputs = inputs if isinstance(inputs, InputFiles) else tuple(inputs)
        self.path = check_output_path(path, overwrite, inputs=self.inputs)
        remove_stale_partials(self.path.parent)
        self.width, self.height = width, height
        self.fps = as_fraction(fps)
        self.crf, self.preset, self.overwrite = crf, preset, overwrite
        self.audio = audio if audio is not None and has_audio(audio.path) else None
        self.audio_dropped = self.folder and self.audio is not None
        self.frames_written = 0
        # A private sibling folder, made at the first frame: the final rename stays within one
        # filesystem (atomic), and no name in it can be predicted or pre-planted.
        self._workdir: Path | None = None
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

    def _partial(self) -> Path:
        """What ffmpeg (or the PNG writer) fills, in the private folder made on first use."""
        if self._workdir is None:
            self._workdir = _make_private_dir(self.path.parent)
            if self.folder:
                (self._workdir / "frames").mkdir()
        return self._workdir / ("frames" if self.folder else f"video{self.path.suffix}")

    def _write_png(self, frame: np.ndarray) -> None:
        name = self._partial() / f"frame_{self.frames_written + 1:06d}.png"
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
        out = ffmpeg.output(*streams, str(self._partial()), **options)
        return out.global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-n").compile(
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
                self._abort(exc)
        except BaseException as failure:
            self._abort(failure)
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
        check_output_path(str(self.path) + (os.sep if self.folder else ""), self.overwrite, inputs=self.inputs)
        assert self._workdir is not None
        if self.folder and self.path.is_dir():
            # Only an empty folder or one of our own frames gets here (checked above): move it
            # into the private folder, which is deleted with it once the new frames are in place.
            self.path.rename(self._workdir / "replaced")
        os.replace(self._partial(), self.path)
        workdir, self._workdir = self._workdir, None
        shutil.rmtree(workdir, ignore_errors=True)  # the output is complete; a leftover is stale

    def _abort(self, cause: BaseException | None) -> None:
        """Stop ffmpeg and delete the temporary. A failing deletion is noted on ``cause``
        (the error the user must see) instead of replacing it."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except BrokenPipeError:
                    pass
        if self._workdir is None:
            return
        workdir, self._workdir = self._workdir, None
        try:
            shutil.rmtree(workdir)
        except OSError as exc:
            if cause is not None:
                cause.add_note(f"the unfinished output {workdir} could not be removed ({exc.strerror or exc}); delete it by hand")
