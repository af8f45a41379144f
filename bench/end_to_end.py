"""End-to-end time per stage of `dpe edit-expression` on a 720p video with audio.

Decoding, detection, cropping, paste-back and encoding should add little to the inference
time: they run in their own threads, overlapping with the model. Reports the wall time, the
model's time, and the overhead (wall - model) / model. Prints a table and writes JSON.

    .venv/bin/python bench/end_to_end.py [--weights W] [--duration 3] [--precision fp32]

Without --weights, full-size random weights with the official architecture are used.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from dpe_cli import DPE, DPEConfig, save_model
from dpe_cli.edit import EditJob, EditRequest

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--source", type=Path, default=MEDIA / "talk_landscape_1280x720.mp4")
    parser.add_argument("--driver", type=Path, default=MEDIA / "dpe_driver_crop.mp4")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "end_to_end.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            torch.manual_seed(0)
            weights = save_model(DPE(DPEConfig()), Path(tmp) / "random.safetensors")
        request = EditRequest(source=args.source, driver=args.driver, output=str(Path(tmp) / "out.mp4"), weights=weights, duration=args.duration, precision=args.precision)
        report = EditJob(request).run()
    timings = report["timings"]
    wall, model = timings["total"], timings["infer"]
    overhead = (wall - model) / model
    print(f"{report['frames']} frames of {args.source.name} ({report['fps']:g} fps, with audio), {args.precision}")
    for stage in ("detect", "decode", "infer", "paste", "encode", "total"):
        value = timings.get(stage, 0.0)
        print(f"{stage:>8}: {value:8.2f} s  {value / report['frames']:7.3f} s/frame")
    print(f"overhead beyond inference: {overhead:.1%} (stages overlap; detection is a separate first pass)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "weights": str(args.weights or "random, official architecture")}
    args.out.write_text(json.dumps({"meta": meta, "frames": report["frames"], "timings": timings, "overhead": round(overhead, 4)}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
