"""``dpe edit-expression``, ``edit-pose`` and ``reenact`` end to end: timing, audio, crops, exit
codes and one-line errors, and memory that does not grow with the video's length."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dpe_cli.video import probe
from helpers import audio_duration, ffmpeg, media, noise_video, run_dpe


def test_edit_expression_keeps_timing_audio_and_frame_count(tiny_weights, tmp_path):
    source = media("talk_full_590.mp4")
    out = tmp_path / "edited.mp4"
    result = run_dpe("edit-expression", str(source), "--driver", str(media("dpe_driver_crop.mp4")), "-w", str(tiny_weights), "-o", str(out), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    src, got = probe(source), probe(out)
    assert got.frame_count == src.frame_count == report["frames"]
    assert got.fps == src.fps and abs(got.duration - src.duration) < 1.5 / float(src.fps)
    assert (got.width, got.height) == (src.width, src.height)
    assert got.has_audio
    assert abs(audio_duration(out) - audio_duration(source)) < 0.1
    assert set(report["timings"]) >= {"detect", "decode", "infer", "paste", "encode", "total"}
    assert report["mode"] == "expression" and len(report["box"]) == 4


def test_crop_none_and_edit_pose_write_the_face_crop(tiny_weights, tmp_path):
    out = tmp_path / "pose.mp4"
    result = run_dpe("edit-pose", str(media("dpe_source_crop.mp4")), "-d", str(media("dpe_driver_crop.mp4")), "-w", str(tiny_weights), "-o", str(out), "--crop", "none", "--duration", "1", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["box"] == [0, 0, 256, 256] and report["frames"] == 25
    info = probe(out)
    assert (info.width, info.height) == (64, 64)  # the tiny model's resolution
    assert not info.has_audio  # the source has none


def test_reenact_follows_the_driver_timeline_and_audio(tiny_weights, tmp_path):
    driver = media("lia_driver_crop_audio.mp4")
    out = tmp_path / "talk.mp4"
    result = run_dpe("reenact", str(media("portrait_s0.jpg")), str(driver), "-w", str(tiny_weights), "-o", str(out), "--relative", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    src = probe(driver)
    got = probe(out)
    assert got.frame_count == src.frame_count == report["frames"]
    assert got.has_audio and abs(audio_duration(out) - audio_duration(driver)) < 0.1


@pytest.mark.parametrize(
    "case",
    ["missing", "not_video", "no_face", "zero_length", "batch_size", "audio", "strength", "driver_end", "exists", "box", "person_missing", "person_and_all", "all_one_span"],
)
def test_cli_bad_input_exit_2_one_line_no_output(tiny_weights, tmp_path, case):
    source, driver = str(media("dpe_source_crop.mp4")), str(media("dpe_driver_crop.mp4"))
    out = tmp_path / "out.mp4"
    extra: list[str] = []
    if case == "missing":
        source = str(tmp_path / "nope.mp4")
    elif case == "not_video":
        (tmp_path / "notes.mp4").write_text("not a video at all\n")
        source = str(tmp_path / "notes.mp4")
    elif case == "no_face":
        source = str(noise_video(tmp_path / "noface.mp4", 0.5))
    elif case == "zero_length":
        (tmp_path / "empty.mp4").write_bytes(b"")
        driver = str(tmp_path / "empty.mp4")
    elif case == "batch_size":
        extra = ["--batch-size", "0"]
    elif case == "audio":
        extra = ["--audio", "loud"]
    elif case == "strength":
        extra = ["--strength", "9"]
    elif case == "driver_end":
        extra = ["--driver-end", "bounce"]
    elif case == "exists":
        out.write_bytes(b"keep me")
    elif case == "box":
        extra = ["--box", "1,2,three"]
    elif case == "person_missing":
        extra = ["--person", str(tmp_path / "gone.png")]
    elif case == "person_and_all":
        (tmp_path / "x.png").write_bytes(b"x")
        extra = ["--faces", "all", "--person", str(tmp_path / "x.png")]
    elif case == "all_one_span":
        extra = ["--faces", "all", "--shots", "none"]
    result = run_dpe("edit-expression", source, "--driver", driver, "-w", str(tiny_weights), "-o", str(out), *extra)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    if case.startswith("person"):
        assert len(result.stderr.strip().splitlines()) <= 2 and "--person" in result.stderr  # the problem and its fix
    if case == "all_one_span":
        assert "--shots none" in result.stderr
    if case == "exists":
        assert out.read_bytes() == b"keep me"
        assert "--overwrite" in result.stderr
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial files


def _peak_rss_mib(command: list[str]) -> float:
    code = "import resource, subprocess, sys\nsubprocess.check_call(sys.argv[1:])\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    return int(subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, check=True).stdout.split()[-1]) / 1024


def test_peak_memory_does_not_grow_with_length(tiny_weights, tmp_path):
    """8x more frames, same memory: frames stream through bounded queues (bench/memory_vs_length.py has the figures)."""
    peaks = {}
    for seconds in (1, 8):
        source = tmp_path / f"loop{seconds}.mp4"
        ffmpeg("-stream_loop", "-1", "-i", str(media("talk_full_590.mp4")), "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-an", str(source))
        peaks[seconds] = _peak_rss_mib([sys.executable, "-m", "dpe_cli", "edit-expression", str(source), "--driver", str(media("dpe_driver_crop.mp4")), "-w", str(tiny_weights), "-o", str(tmp_path / "out.mp4"), "-y", "--quiet", "--mask", "box"])
    assert peaks[8] < peaks[1] * 1.1 + 30, peaks


def _portrait_and_driver(folder):
    """An odd-sized synthetic portrait photo and a short driver clip."""
    import cv2

    from dpe_cli.synth import Expression, Identity, Pose, render_frame, write_clip

    photo = render_frame(Identity.from_seed(5), Pose(), Expression(), (361, 451))
    cv2.imwrite(str(folder / "photo.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    write_clip(folder / "drv.mp4", 7, n_frames=6, size=96, kind="crop")
    return folder / "photo.png", folder / "drv.mp4"


def test_reenact_expression_writes_the_photo_size_and_output_crop_the_crop(tiny_weights, tmp_path):
    photo, driver = _portrait_and_driver(tmp_path)
    full = run_dpe("reenact", str(photo), str(driver), "-m", "expression", "-w", str(tiny_weights), "-o", str(tmp_path / "full.mp4"),
                   "--relative-to", "0.08", "--paste", "change-fast", "--mask", "mouth", "--json", "--quiet")
    assert full.returncode == 0, full.stderr
    report = json.loads(full.stdout)
    assert report["paste"] and report["paste_method"] == "change-fast" and report["mask"] == "mouth" and report["relative_to"] == 0.08
    got = probe(tmp_path / "full.mp4")
    assert (got.width, got.height, got.frame_count) == (361, 451, 6)
    crop = run_dpe("reenact", str(photo), str(driver), "-m", "expression", "--output-crop", "-w", str(tiny_weights), "-o", str(tmp_path / "crop.mp4"), "--quiet")
    assert crop.returncode == 0, crop.stderr
    assert (probe(tmp_path / "crop.mp4").width, probe(tmp_path / "crop.mp4").height) == (64, 64)
    both = run_dpe("reenact", str(photo), str(driver), "-w", str(tiny_weights), "-o", str(tmp_path / "both.mp4"), "--quiet")
    assert both.returncode == 0 and probe(tmp_path / "both.mp4").width == 64  # the head moves: the crop
    bad = run_dpe("reenact", str(photo), str(driver), "-w", str(tiny_weights), "-o", str(tmp_path / "bad.mp4"), "--relative-to", "later")
    assert bad.returncode == 2 and "neither a time in seconds nor an image" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.mp4").exists()


def test_batch_takes_output_crop_and_relative_to_and_makes_its_output_folder(tiny_weights, tmp_path):
    from helpers import write_jsonl

    photo, driver = _portrait_and_driver(tmp_path)
    import shutil

    shutil.copy(photo, tmp_path / "neutral.png")  # any still with a face; a path relative to the manifest
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [
        {"command": "reenact", "source": "photo.png", "driver": "drv.mp4", "output": "out/a.mp4", "mode": "expression", "relative_to": "neutral.png"},
        {"command": "reenact", "source": "photo.png", "driver": "drv.mp4", "output": "out/b.mp4", "mode": "expression", "output_crop": True},
        {"command": "edit-expression", "source": "drv.mp4", "driver": "drv.mp4", "output": "out/c.mp4", "relative_to": 0.04},
    ])
    result = run_dpe("batch", str(manifest), "--results", str(tmp_path / "res"), "-w", str(tiny_weights), "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    assert [probe(tmp_path / "out" / n).width for n in ("a.mp4", "b.mp4", "c.mp4")] == [361, 64, 96]  # out/ made by the batch
