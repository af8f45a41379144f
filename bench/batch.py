"""`dpe batch` against a shell loop of single `dpe edit-expression` runs, same clips, same model.

A shell loop pays Python's start, the torch and mediapipe imports, the model load and the
driver's framing and encoding again for every clip; `dpe batch` pays them once per worker.
Short clips (20 one-second clips cut from real footage) show the saving, long ones (two
20-second clips) that the batch is no slower where the editing itself dominates. Both run one
process at a time on the same cores. Prints a table and writes JSON.

    .venv/bin/python bench/batch.py [--short 20] [--long 2] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
DPE = [sys.executable, "-m", "dpe_cli"]


def ffmpeg(*args: str) -> None:
    from dpe_cli.video.probe import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clips(folder: Path, source: Path, count: int, seconds: float) -> None:
    """``count`` clips of ``seconds`` each, cut from ``source`` (looped) at different offsets."""
    folder.mkdir(parents=True)
    for i in range(count):
        ffmpeg("-stream_loop", "-1", "-ss", f"{(0.37 * i) % 4:.2f}", "-i", str(source), "-t", str(seconds),
               "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(folder / f"clip{i:03d}.mp4"))


def shell_loop(clips: Path, driver: Path, out: Path, weights: Path) -> float:
    out.mkdir()
    began = time.perf_counter()
    for clip in sorted(clips.glob("*.mp4")):
        subprocess.run([*DPE, "edit-expression", str(clip), "--driver", str(driver), "-o", str(out / f"{clip.stem}-expression.mp4"),
                        "-w", str(weights), "--quiet"], check=True)
    return time.perf_counter() - began


def batch(clips: Path, driver: Path, out: Path, weights: Path) -> float:
    out.mkdir()
    began = time.perf_counter()
    subprocess.run([*DPE, "batch", "--folder", str(clips), "--driver", str(driver), "--out-dir", str(out),
                    "--results", str(out / "results"), "-w", str(weights), "--quiet"], check=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=20, help="number of one-second clips")
    parser.add_argument("--long", type=int, default=2, help="number of 20-second clips")
    parser.add_argument("--source", type=Path, default=MEDIA / "talk_full_590.mp4")
    parser.add_argument("--driver", type=Path, default=MEDIA / "dpe_driver_crop.mp4")
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "dpe-synthetic-64.safetensors")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batch.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, count, seconds in (("short", args.short, 1.0), ("long", args.long, 20.0)):
            clips = Path(tmp) / label
            make_clips(clips, args.source, count, seconds)
            loop = shell_loop(clips, args.driver, Path(tmp) / f"{label}-loop", args.weights)
            one = batch(clips, args.driver, Path(tmp) / f"{label}-batch", args.weights)
            rows.append({"clips": count, "seconds_each": seconds, "shell_loop_s": round(loop, 1), "batch_s": round(one, 1), "speed_up": round(loop / one, 2)})
            shutil.rmtree(clips)
    result = {"rows": rows, "weights": str(args.weights), "machine": platform.processor() or platform.machine()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| clips | shell loop of `dpe edit-expression` | `dpe batch` | speed-up |\n| --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['clips']} x {row['seconds_each']:g} s | {row['shell_loop_s']} s | {row['batch_s']} s | {row['speed_up']}x |")


if __name__ == "__main__":
    main()
