"""The examples run end to end: `make demo` (examples/demo.sh) on the shipped model without any
download, and examples/batch_edit.sh as a thin ``dpe batch``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dpe_cli.video import FrameReader
from helpers import ROOT, ffmpeg, media


def test_demo_script_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "DPE_DEMO_FRAMES": "6", "DPE": str(Path(sys.executable).with_name("dpe"))}
    run = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh"), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    output = tmp_path / "edited-side-by-side.mp4"
    assert str(output) in run.stdout and "weights/README.md" in run.stdout
    with FrameReader(output) as reader:
        frames = list(reader)
    assert len(frames) == 6
    assert frames[0].shape[1] > frames[0].shape[0]  # source, driver and result side by side


def test_batch_script_is_a_thin_dpe_batch(tiny_weights, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    ffmpeg("-i", str(media("dpe_source_crop.mp4")), "-t", "0.4", "-c:v", "libx264", str(videos / "a.mp4"))
    ffmpeg("-i", str(media("talk_full_590.mp4")), "-t", "0.4", "-c:v", "libx264", str(videos / "b.mp4"))
    (videos / "broken.mp4").write_text("not a video")
    env = {**os.environ, "DPE": str(Path(sys.executable).with_name("dpe")), "DPE_ARGS": f"--weights {tiny_weights} --mask box --quiet"}
    script = ROOT / "examples" / "batch_edit.sh"
    result = subprocess.run(["bash", str(script), str(videos), str(media("dpe_driver_crop.mp4")), str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert result.returncode == 1, result.stderr  # one video failed
    assert sorted(p.name for p in (tmp_path / "out").glob("*.mp4")) == ["a-expression.mp4", "b-expression.mp4"]
    lines = [json.loads(line) for line in (tmp_path / "out" / "results" / "results-0-of-1.jsonl").read_text().splitlines()]
    failed = [line for line in lines if line["status"] == "failed"]
    assert len(lines) == 3 and len(failed) == 1 and failed[0]["exit_code"] == 2 and "broken.mp4" in failed[0]["source"]
