"""Video probe, streaming reader and atomic writer, on real clips and small synthetic ones."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dpe_cli.errors import DPEError, InputError, OutputExistsError
from dpe_cli.video import (
    AudioSource,
    FrameReader,
    VideoWriter,
    check_output_path,
    probe,
    read_image,
)
from helpers import audio_duration, ffmpeg, media


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """A bar sweeping over a coloured background: content changes every frame."""
    out = []
    for i in range(count):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = (200, 60, 110)
        frame[:, (i * 3) % width : (i * 3) % width + 8] = 255
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def clip30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 160x120 at 30 fps with a 2 s tone."""
    path = tmp_path_factory.mktemp("clip") / "clip30.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=2",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


# --- probe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, size, fps, seconds, audio",
    [
        ("dpe_source_crop.mp4", (256, 256), 25, 9.1, False),
        ("dpe_driver_crop.mp4", (256, 256), 25, 13.4, False),
        ("lia_driver_crop_audio.mp4", (256, 256), 25, 8.9, True),
        ("talk_full_844.mp4", (844, 844), 25, 5.0, True),
        ("talk_full_590.mp4", (590, 590), 25, 5.0, True),
        ("talk_landscape_1280x720.mp4", (1280, 720), 30, 9.4, True),
    ],
)
def test_probe_shared_clips(name: str, size: tuple, fps: int, seconds: float, audio: bool) -> None:
    info = probe(media(name))
    assert info.kind == "video"
    assert (info.width, info.height) == size
    assert info.fps == fps
    assert info.duration == pytest.approx(seconds, abs=0.1)
    assert abs(info.frame_count - info.duration * fps) <= 1
    assert info.has_audio is audio
    assert not info.variable_frame_rate


@pytest.mark.parametrize(
    "name, size",
    [("portrait_macron.png", (256, 256)), ("portrait_s0.jpg", (600, 704))],
)
def test_probe_and_read_images(name: str, size: tuple) -> None:
    info = probe(media(name))
    assert (info.kind, info.width, info.height, info.frame_count) == ("image", *size, 1)
    assert (info.fps, info.duration, info.has_audio) == (0, 0.0, False)
    image = read_image(info.path)
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    with FrameReader(info.path, size=(64, 32)) as reader:
        (only,) = list(reader)
    assert only.shape == (32, 64, 3)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    Image.new("RGB", (80, 40), (255, 0, 0)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    info = probe(tmp_path / "r.jpg")
    assert (info.width, info.height) == (40, 80)
    assert read_image(info.path).shape == (80, 40, 3)


def test_rotation_metadata(tmp_path: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=0.4", str(tmp_path / "a.mp4"))
    ffmpeg("-display_rotation", "90", "-i", str(tmp_path / "a.mp4"), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert (info.width, info.height) == (64, 96)
    assert {f.shape for f in FrameReader(rotated)} == {(96, 64, 3)}


@pytest.mark.parametrize("kind", ["missing", "folder", "text", "empty", "truncated", "audio only"])
def test_bad_inputs_raise_input_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bad.mp4"
    if kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "empty":
        path.touch()
    elif kind == "audio only":
        ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(path))
    elif kind == "truncated":  # this file keeps its index (moov) at the end, so it is lost
        path.write_bytes(media("talk_full_590.mp4").read_bytes()[:150_000])
    for attempt in (probe, FrameReader):
        with pytest.raises(InputError) as caught:
            attempt(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message and "(" in message


def test_truncated_with_index_first_reads_what_is_there(tmp_path: Path) -> None:
    data = media("dpe_source_crop.mp4").read_bytes()  # index (moov) before the frames
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    info = probe(path)
    assert 0 < info.frame_count < 228
    assert sum(1 for _ in FrameReader(path)) == info.frame_count


# --- reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dpe_source_crop.mp4", "talk_full_590.mp4"])
def test_reader_yields_probe_frame_count(name: str) -> None:
    reader = FrameReader(media(name))
    count = 0
    for frame in reader:
        assert frame.shape == (reader.height, reader.width, 3) and frame.dtype == np.uint8
        count += 1
    assert count == reader.info.frame_count == reader.frame_count_estimate
    assert count == pytest.approx(reader.info.duration * float(reader.info.fps), abs=1)


def test_reader_trims_accurately() -> None:
    path = media("dpe_source_crop.mp4")
    with FrameReader(path, duration=2.5) as head:
        reference = list(head)[50]
    trimmed = FrameReader(path, start=2.0, duration=3.0)
    got = list(trimmed)
    assert len(got) == trimmed.frame_count_estimate == 75
    assert np.abs(got[0].astype(int) - reference).mean() < 1.0  # frame 50 = 2.0 s


def test_reader_resamples_30_to_25_fps() -> None:
    path = media("talk_landscape_1280x720.mp4")
    native = FrameReader(path, start=1.0, duration=3.0, size=(320, 180))
    assert native.fps == 30 and sum(1 for _ in native) == 90
    resampled = FrameReader(path, start=1.0, duration=3.0, fps=25, size=(320, 180))
    got = list(resampled)
    assert resampled.fps == 25 and len(got) == resampled.frame_count_estimate == 75
    assert got[0].shape == (180, 320, 3)


def test_reader_can_stop_early_and_rerun(clip30: Path) -> None:
    reader = FrameReader(clip30)
    for _ in reader:
        break
    reader.close()
    reader.close()
    assert sum(1 for _ in reader) == 60


def test_reader_rejects_bad_options(clip30: Path) -> None:
    with pytest.raises(InputError, match="past the end"):
        FrameReader(clip30, start=5.0)
    with pytest.raises(InputError):
        FrameReader(clip30, duration=0)
    with pytest.raises(InputError):
        FrameReader(clip30, fps=0)


# --- writer ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(256, 144), (255, 181)])
def test_writer_round_trip_with_audio(tmp_path: Path, size: tuple[int, int]) -> None:
    width, height = size
    out = tmp_path / "out.mp4"
    source = media("lia_driver_crop_audio.mp4")
    rate = Fraction(30000, 1001)
    with VideoWriter(
        out, width=width, height=height, fps=rate, audio=AudioSource(source, start=1.0)
    ) as writer:
        for frame in frames(45, width, height):
            writer.write(frame)
    assert not writer.audio_dropped
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frame_count) == (width, height, rate, 45)
    assert info.has_audio
    # Audio is cut at the last frame (AAC packets of 64 ms at 16 kHz round it up slightly).
    assert audio_duration(out) == pytest.approx(info.duration, abs=0.08)
    first = next(iter(FrameReader(out)))
    assert np.abs(first[:, 20:].reshape(-1, 3).mean(0) - (200, 60, 110)).max() < 4
    assert leftovers(tmp_path) == ["out.mp4"]


def test_writer_pads_short_audio_and_handles_silent_source(tmp_path: Path, clip30: Path) -> None:
    padded = tmp_path / "padded.mkv"
    short = AudioSource(clip30, duration=0.5)
    with VideoWriter(padded, width=64, height=48, fps=25, audio=short) as w:
        for frame in frames(50, 64, 48):
            w.write(frame)
    assert probe(padded).duration == pytest.approx(2.0)
    assert audio_duration(padded) == pytest.approx(2.0, abs=0.08)

    silent = tmp_path / "silent.mov"
    no_audio = AudioSource(media("dpe_source_crop.mp4"))
    with VideoWriter(silent, width=64, height=48, fps=25, audio=no_audio) as w:
        for frame in frames(5, 64, 48):
            w.write(frame)
    assert not w.audio_dropped
    assert not probe(silent).has_audio


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_writer_failure_leaves_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    out = tmp_path / "out.mp4"
    sound = AudioSource(media("talk_full_590.mp4"))
    with pytest.raises(error):
        with VideoWriter(out, width=64, height=48, fps=25, audio=sound) as w:
            for frame in frames(10, 64, 48):
                w.write(frame)
            raise error("stop")
    assert leftovers(tmp_path) == []


def test_writer_rejects_wrong_frames_and_empty_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64x48"):
        with VideoWriter(tmp_path / "a.mp4", width=48, height=64, fps=25) as w:
            w.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(DPEError, match="no frames"):
        with VideoWriter(tmp_path / "b.mp4", width=48, height=64, fps=25):
            pass
    assert leftovers(tmp_path) == []


def test_output_path_checks(tmp_path: Path) -> None:
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="`overwrite`"):
        check_output_path(existing, overwrite=False)
    with pytest.raises(OutputExistsError):
        VideoWriter(existing, width=64, height=48, fps=25)
    assert check_output_path(existing, overwrite=True) == existing.resolve()
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.mp4", overwrite=False)
    with pytest.raises(InputError, match=r"\.mp4, \.mov or \.mkv"):
        check_output_path(tmp_path / "out.avi", overwrite=False)

    with VideoWriter(existing, width=64, height=48, fps=25, overwrite=True) as w:
        w.write(frames(1, 64, 48)[0])
    assert probe(existing).frame_count == 1


def test_png_sequence_output(tmp_path: Path) -> None:
    target = f"{tmp_path / 'frames'}/"
    written = frames(3, 65, 33)
    with VideoWriter(
        target, width=65, height=33, fps=25, audio=AudioSource(media("talk_full_590.mp4"))
    ) as w:
        for frame in written:
            w.write(frame)
    assert w.audio_dropped
    folder = tmp_path / "frames"
    assert leftovers(tmp_path) == ["frames"]
    assert leftovers(folder) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    for name, frame in zip(leftovers(folder), written):
        assert np.array_equal(read_image(folder / name), frame)  # lossless

    with pytest.raises(OutputExistsError):
        VideoWriter(folder, width=65, height=33, fps=25)
    with VideoWriter(folder, width=65, height=33, fps=25, overwrite=True) as w:
        w.write(written[0])
    assert leftovers(folder) == ["frame_000001.png"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="other files"):
        VideoWriter(folder, width=65, height=33, fps=25, overwrite=True)


def test_vfr_source_round_trip_keeps_duration(tmp_path: Path) -> None:
    vfr = tmp_path / "vfr.mp4"
    # 2 s at 25 fps, then 50 frames spread over 4 s: 100 frames, 6 s, with a 6 s tone.
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=4",
        "-f", "lavfi", "-i", "sine=frequency=300:duration=6",
        "-vf", "setpts='if(lt(N,50),N/25,2+(N-50)/12.5)/TB'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-c:a", "aac", str(vfr),
    )  # fmt: skip
    info = probe(vfr)
    assert info.variable_frame_rate and info.frame_count == 100
    assert info.duration == pytest.approx(6.0, abs=0.05)

    reader = FrameReader(vfr)
    out = tmp_path / "back.mp4"
    with VideoWriter(
        out, width=reader.width, height=reader.height, fps=reader.fps, audio=AudioSource(vfr)
    ) as writer:
        for frame in reader:
            writer.write(frame)
    back = probe(out)
    one_frame = 1 / float(reader.fps)
    assert not back.variable_frame_rate
    assert back.duration == pytest.approx(info.duration, abs=2 * one_frame)
    assert audio_duration(out) == pytest.approx(back.duration, abs=2 * one_frame)
    assert leftovers(tmp_path) == ["back.mp4", "vfr.mp4"]


# --- damaged sources and trims (issue 15) --------------------------------------------------


def test_reader_counts_decode_errors_of_a_damaged_source(tmp_path: Path) -> None:
    clean = tmp_path / "clean.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clean))
    data = bytearray(clean.read_bytes())
    noise = np.random.default_rng(1)
    for start in range(len(data) // 3, 2 * len(data) // 3, 997):  # the middle of the video data
        data[start : start + 40] = noise.integers(0, 256, 40, np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    healthy, broken = FrameReader(clean), FrameReader(damaged)
    assert sum(1 for _ in healthy) == sum(1 for _ in broken) == 100  # ffmpeg conceals and goes on
    assert healthy.decode_errors == 0
    assert broken.decode_errors > 0


def test_start_in_the_last_frame_is_past_the_end_not_corruption(clip30: Path) -> None:
    duration = probe(clip30).duration
    reader = FrameReader(clip30, start=duration - 0.01)
    with pytest.raises(InputError, match=f"past the last frame \\(the video is {duration:.2f} s long\\)") as caught:
        list(reader)
    assert "corrupt" not in str(caught.value)
