"""``dpe preview``: one PNG of framing, mask and one edit, written in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpe_cli.preview import HEIGHT, WIDTH
from helpers import ffmpeg, run_dpe


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-frame synthetic source and another person's face crop as the driver."""
    folder = tmp_path_factory.mktemp("preview")
    for args in (["src.mp4", "--kind", "full", "--frames", "16", "--seed", "3"], ["drv.mp4", "--frames", "16", "--seed", "8"]):
        result = run_dpe("synth", *args, "-q", cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def test_preview_writes_one_png_of_the_expected_size(clips: Path, tiny_weights: Path) -> None:
    import cv2

    result = run_dpe("preview", "src.mp4", "--driver", "drv.mp4", "-o", "out/p.png", "-w", str(tiny_weights), "--mask", "mouth,eyes", "--json", cwd=clips)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    image = cv2.imread(str(clips / "out" / "p.png"))
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert len(report["times"]) == 4 and report["source_box"] != report["driver_box"]
    assert [p.name for p in (clips / "out").iterdir()] == ["p.png"]  # no partial left
    again = run_dpe("preview", "src.mp4", "-o", "out/p.png", "-w", str(tiny_weights), cwd=clips)
    assert again.returncode == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.mp4"], "missing.mp4"),
        (["src.mp4", "-o", "p.jpg"], "must end in .png"),
        (["src.mp4", "--mask", "nose"], "is not a region"),
    ],
)
def test_bad_input_is_one_line(clips: Path, tiny_weights: Path, args: list[str], message: str) -> None:
    result = run_dpe("preview", *args, "-w", str(tiny_weights), cwd=clips)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error:")
    assert message in result.stderr


@pytest.fixture(scope="module")
def two_shots(clips: Path) -> Path:
    """Two people in two shots: the source clip cut straight into another person's."""
    result = run_dpe("synth", "other.mp4", "--kind", "full", "--frames", "16", "--seed", "8", "-q", cwd=clips)
    assert result.returncode == 0, result.stderr
    ffmpeg("-i", str(clips / "src.mp4"), "-i", str(clips / "other.mp4"), "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
           "-map", "[v]", "-c:v", "libx264", "-crf", "12", str(clips / "two-shots.mp4"))
    return clips / "two-shots.mp4"


def test_preview_shows_one_cell_per_shot_with_its_box(two_shots: Path, clips: Path, tiny_weights: Path) -> None:
    result = run_dpe("preview", two_shots.name, "--driver", "drv.mp4", "-o", "shots.png", "-w", str(tiny_weights), "--json", cwd=clips)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["shots"]) == 2
    first, second = report["shots"]
    assert first["start"] == 0 and abs(first["end"] - 16 / 25) < 0.05 and abs(second["start"] - first["end"]) < 1e-6
    for shot in report["shots"]:
        assert shot["start"] <= shot["shown_at"] < shot["end"] and len(shot["people"]) == 1
    assert first["people"][0]["box"] != second["people"][0]["box"]  # each shot framed on its own
    assert any(note.startswith("2 shot(s)") for note in report["notes"])
    import cv2

    assert cv2.imread(str(clips / "shots.png")).shape == (HEIGHT, WIDTH, 3)  # two shot cells in one row
    one_box = run_dpe("preview", two_shots.name, "--shots", "none", "-o", "one.png", "-w", str(tiny_weights), "--json", cwd=clips)
    assert one_box.returncode == 0, one_box.stderr
    assert json.loads(one_box.stdout)["notes"] == []


def test_preview_of_a_two_frame_clip(clips: Path, tiny_weights: Path) -> None:
    ffmpeg("-i", str(clips / "src.mp4"), "-frames:v", "2", "-c:v", "libx264", str(clips / "two.mp4"))
    result = run_dpe("preview", "two.mp4", "-o", "two.png", "-w", str(tiny_weights), "--json", cwd=clips)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["times"] == [0.0, 0.04]  # each frame once


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "afolder"], "is a folder"),
        (["--box-scale", "1000"], "--box-scale = 1000"),
        (["--box-scale", "nan"], "--box-scale = nan"),
        (["--box-scale", "inf"], "--box-scale = inf"),
        (["--feather", "nan"], "--feather = nan"),
        (["--faces", "all", "--person", "me.png"], "--person"),
    ],
)
def test_bad_options_are_refused_before_any_work(clips: Path, tiny_weights: Path, args: list[str], message: str) -> None:
    (clips / "afolder").mkdir(exist_ok=True)
    result = run_dpe("preview", "src.mp4", *args, "-w", str(tiny_weights), cwd=clips)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), result.stderr
    assert message in result.stderr
    assert list((clips / "afolder").iterdir()) == []


def test_a_box_much_larger_than_its_face_is_named() -> None:
    from dpe_cli.edit.casting import Casting, Subject
    from dpe_cli.face import CropBox
    from dpe_cli.preview import _big_boxes

    def subject(shot: int, side: int, face: float) -> Subject:
        return Subject(shot, shot, 0, 10 * shot, 10 * shot + 10, CropBox(0, 0, side), None, 0, 0, face)

    fitting, zoomed = subject(0, 200, 100.0), subject(1, 600, 100.0)
    assert _big_boxes(Casting([fitting]), 2.0) is None
    note = _big_boxes(Casting([fitting, zoomed]), 2.0)
    assert note is not None and "shot(s) 2 " in note and "3.0x" in note


def test_preview_never_writes_over_an_input_even_through_a_link(clips: Path, tiny_weights: Path) -> None:
    import os

    link = clips / "src-link.png"
    if not link.exists():
        os.link(clips / "src.mp4", link)
    before = (clips / "src.mp4").read_bytes()
    result = run_dpe("preview", "src.mp4", "-o", link.name, "-y", "-w", str(tiny_weights), cwd=clips)
    assert result.returncode == 2 and "is the input" in result.stderr, result.stderr
    assert (clips / "src.mp4").read_bytes() == before
