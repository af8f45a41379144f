"""Peak memory of `dpe edit-expression` against video length (it must stay flat).

Makes source videos of increasing length by looping a shared talking-head clip, edits each
in a fresh process, and records that process's peak resident memory (ru_maxrss). Prints a
table and writes JSON.

    .venv/bin/python bench/memory_vs_length.py [--weights W] [--lengths 10 60 300] [--out bench/results/memory.json]

Without --weights a small random model is used: memory that grows with length comes from
frames piling up in the pipeline, which does not depend on the model's quality.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"

MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def peak_rss_mib(command: list[str]) -> tuple[int, float]:
    """Exit code and peak RSS (MiB) of ``command`` and its children, run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True).stdout.split()
    return int(out[-2]), int(out[-1]) / 1024


def small_weights(path: Path) -> Path:
    import torch

    from dpe_cli import DPE, DPEConfig, save_model

    torch.manual_seed(0)
    save_model(DPE(DPEConfig(size=64, style_dim=64, motion_dim=8, width=0.0625)), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--source", type=Path, default=MEDIA / "talk_full_590.mp4")
    parser.add_argument("--driver", type=Path, default=MEDIA / "dpe_driver_crop.mp4")
    parser.add_argument("--lengths", type=float, nargs="+", default=[10, 60, 300])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weights = args.weights or small_weights(work / "small.safetensors")
        for seconds in args.lengths:
            source = work / f"source_{seconds:g}s.mp4"
            ffmpeg("-stream_loop", "-1", "-i", str(args.source), "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(source))
            command = [sys.executable, "-m", "dpe_cli", "edit-expression", str(source), "--driver", str(args.driver), "-w", str(weights), "-o", str(work / "out.mp4"), "-y", "--quiet"]
            began = time.perf_counter()
            code, peak = peak_rss_mib(command)
            if code:
                raise SystemExit(f"dpe failed with exit code {code} on {source.name}")
            rows.append({"seconds": seconds, "frames": round(seconds * 25), "peak_rss_mib": round(peak, 1), "wall_s": round(time.perf_counter() - began, 1)})
            print(f"{seconds:>8g} s  {rows[-1]['frames']:>7} frames  peak {peak:8.1f} MiB  ({rows[-1]['wall_s']} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"machine": platform.processor() or platform.machine(), "source": str(args.source), "weights": str(args.weights or "random 64 px"), "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
