"""``dpe preview``: one PNG of framing, mask and one edit, written in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dpe_cli.preview import HEIGHT, WIDTH
from helpers import run_dpe


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
