"""What a media file holds, learned from ffmpeg alone (there is no ffprobe here).

One ffmpeg run does both jobs: ``ffmpeg -i FILE`` prints the stream header on stderr, and
stream-copying the video into the ``framecrc`` muxer lists every packet's timestamps on
stdout without decoding anything. The header gives size, rotation and audio presence; the
packet list gives the exact frame count and stream duration, so the average frame rate and
the frame count agree with what :class:`~dpe_cli.video.reader.FrameReader` will decode.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg

from dpe_cli.errors import InputError

# ffmpeg's "V" selects video streams that are not cover art; reader and probe must agree.
VIDEO_STREAM = "V:0"

_UNREADABLE_HINT = "check the path; if the file is truncated or corrupt, re-encode it with ffmpeg"
_STREAM_RE = re.compile(r"^\s*Stream #0:\d+\S*: (Video|Audio|Subtitle|Data|Attachment): (.*)$")
_SIZE_RE = re.compile(r", (\d+)x(\d+)(?=[\s,]|$)")
_ROTATION_RE = re.compile(r"display ?matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_FPS_RE = re.compile(r"([\d.]+) fps")
_TB_RE = re.compile(r"^#tb 0: (\d+)/(\d+)")


@dataclass(frozen=True)
class MediaInfo:
    """A video or still image as the rest of dpe sees it (sizes after rotation)."""

    path: Path
    kind: str  # "video" or "image"
    width: int
    height: int
    fps: Fraction  # average frame rate; Fraction(0) for images
    duration: float  # seconds of the video stream; 0 for images
    frame_count: int  # 1 for images
    has_audio: bool
    variable_frame_rate: bool


@dataclass(frozen=True)
class _Header:
    """The parts of ffmpeg's ``-i`` banner that probe needs."""

    container: str
    video: str | None  # the first non-cover-art video stream line, after "Video: "
    rotation: float
    has_audio: bool


def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg (no system ffmpeg is assumed)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def as_fraction(rate: Fraction | float) -> Fraction:
    """Rates stay exact (30000/1001); a float is read as the short decimal it prints as."""
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1_000_000)


def ffmpeg_url(path: Path) -> str:
    """``file:`` keeps ffmpeg from reading names like ``a:b.mp4`` as a protocol."""
    return f"file:{path}"


def ffmpeg_reason(text: str) -> str:
    """ffmpeg's final stderr line, which names the failure; the rest is noise to users."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg gave no reason"
    line = re.sub(r"^\[[^\]]*\]\s*", "", lines[-1])  # "[in#0 @ 0x...] " prefixes
    return line.rsplit(": ", 1)[-1] if line.startswith("Error") else line


def existing_file(path: str | Path) -> Path:
    """Resolve ``path`` and fail with a user-facing message unless it is a non-empty file."""
    p = Path(path).expanduser().resolve()
    if not p.exists():
        raise InputError(f"{p}: no such file", "check the path")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a video or image file", "give a file path")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty (0 bytes)", "re-export or re-download it")
    return p


def has_audio(path: str | Path) -> bool:
    """Whether ``path`` (any media file, audio-only included) has an audio stream."""
    p = existing_file(path)
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_url(p)]
    # ffmpeg exits non-zero here (no output given), so only the banner counts.
    text = subprocess.run(cmd, capture_output=True, text=True, errors="replace").stderr
    return _parse_header(p, text).has_audio


def probe(path: str | Path) -> MediaInfo:
    """Describe a video or image; InputError for anything dpe cannot read as one."""
    p = existing_file(path)
    header, pts, duration_ticks, time_base = _scan(p)
    if header.video is None:
        raise InputError(f"{p}: has no video stream", "give a video or image file")
    size = _SIZE_RE.search(header.video)
    if size is None:
        raise InputError(f"{p}: video stream has no picture size", _UNREADABLE_HINT)
    width, height = int(size[1]), int(size[2])
    if round(header.rotation) % 180 == 90:
        width, height = height, width  # ffmpeg rotates frames on decode
    if not pts:
        raise InputError(f"{p}: video stream has no frames", "re-export or re-download it")

    if header.container == "image2" or header.container.endswith("_pipe"):  # still demuxers
        width, height = _oriented_image_size(p, width, height)
        return MediaInfo(p, "image", width, height, Fraction(0), 0.0, 1, False, False)

    pts.sort()
    steps = [b - a for a, b in zip(pts, pts[1:])]
    last = duration_ticks or _median(steps)
    # A lone frame without a packet duration lasts one frame at the rate the header prints.
    span = (pts[-1] + last - pts[0]) * time_base if last else 1 / _header_fps(header.video)
    fps = (len(pts) / span).limit_denominator(1001)
    # Timestamp rounding makes CFR steps differ by a tick; a real VFR source differs by more.
    vfr = bool(steps) and max(steps) - min(steps) > max(1, _median(steps) // 10)
    return MediaInfo(
        path=p,
        kind="video",
        width=width,
        height=height,
        fps=fps,
        duration=float(span),
        frame_count=len(pts),
        has_audio=header.has_audio,
        variable_frame_rate=vfr,
    )


def _scan(p: Path) -> tuple[_Header, list[int], int, Fraction]:
    """Run ffmpeg once: banner from stderr, video packet pts and last duration from stdout."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats",
        "-i", ffmpeg_url(p), "-map", f"0:{VIDEO_STREAM}", "-c", "copy", "-f", "framecrc", "-",
    ]  # fmt: skip
    pts: list[int] = []
    duration_ticks = 0
    time_base = Fraction(1)
    with tempfile.TemporaryFile() as err:
        # stderr goes to a file so a chatty ffmpeg cannot block on a full pipe.
        with subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("#"):
                    if tb := _TB_RE.match(line):
                        time_base = Fraction(int(tb[1]), int(tb[2]))
                    continue
                fields = line.split(",")
                if len(fields) >= 4:
                    pts.append(int(fields[2]))
                    duration_ticks = int(fields[3])
        err.seek(0)
        text = err.read().decode(errors="replace")
    return _parse_header(p, text), pts, duration_ticks, time_base


def _parse_header(p: Path, text: str) -> _Header:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Input #0, ")), None)
    if start is None:
        reason = ffmpeg_reason(text)
        raise InputError(f"{p}: not a readable video or image (ffmpeg: {reason})", _UNREADABLE_HINT)
    container = lines[start][len("Input #0, ") :].split(", from '", 1)[0]
    video = None
    rotation = 0.0
    audio = False
    in_video = False
    for line in lines[start + 1 :]:
        if not line.startswith(" "):  # end of the input's block ("Stream mapping:", ...)
            break
        if s := _STREAM_RE.match(line):
            in_video = False
            if s[1] == "Audio":
                audio = True
            elif s[1] == "Video" and video is None and "(attached pic)" not in s[2]:
                video, in_video = s[2], True
        elif in_video and (r := _ROTATION_RE.search(line)):
            rotation = float(r[1])
    return _Header(container, video, rotation, audio)


def _oriented_image_size(p: Path, width: int, height: int) -> tuple[int, int]:
    """Size after EXIF orientation, which OpenCV (our image reader) applies and ffmpeg does not.

    Pillow reads only the header here; ffmpeg's size is the fallback for formats it lacks.
    """
    from PIL import Image  # a dependency of imageio

    try:
        with Image.open(p) as im:
            (width, height), orientation = im.size, im.getexif().get(0x0112, 1)
    except (OSError, ValueError):
        return width, height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _header_fps(video: str) -> Fraction:
    m = _FPS_RE.search(video)
    return Fraction(m[1]).limit_denominator(1001) if m else Fraction(25)


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2] if values else 0
