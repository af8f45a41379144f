"""End-to-end time of `dpe edit-expression`: per stage on a 720p video with audio, and as a
whole process side by side with the reference demo's way.

Stages: decoding, detection, cropping, paste-back and encoding should add little to the
inference time: they run in their own threads, overlapping with the model. Reports the wall
time, the model's time, and the overhead (wall - model) / model.

``--versus-reference``: whole processes (interpreter start, model load, everything up to the
written file) on the same pre-cropped clips, one after the other in this run: the reference
demo's way (``reference_demo.py``: every frame in memory, the reference's operations, one
frame at a time) against `dpe edit-expression` with its defaults (auto precision, the `change`
paste with its reconstruction; with random weights `auto` runs float32, since bf16 draws
such weights' check face under 45 dB from float32), with `--precision bf16` (what `auto`
runs for a model that passes its check) and with `--precision fp32`.

    .venv/bin/python bench/end_to_end.py [--weights W] [--duration 3] [--precision bf16]
        [--versus-reference] [--frames 50] [--profile]

``--profile`` adds the per-layer profile of one frame (see ``model_speed.py --profile``).

Without --weights, full-size random weights with the official architecture are used.
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

import torch

from dpe_cli import DPE, DPEConfig, load_model, save_model
from dpe_cli.device import choose_precision
from dpe_cli.edit import EditJob, EditRequest

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def stages(args: argparse.Namespace, weights: Path, tmp: Path) -> dict:
    request = EditRequest(source=args.source, driver=args.driver, output=str(tmp / "out.mp4"), weights=weights, duration=args.duration, precision=args.precision)
    report = EditJob(request).run()
    timings = report["timings"]
    wall, model = timings["total"], timings["infer"]
    overhead = (wall - model) / model
    print(f"{report['frames']} frames of {args.source.name} ({report['fps']:g} fps, with audio), precision {report['precision']} ({report['precision_reason']})")
    for stage in ("detect", "decode", "infer", "paste", "encode", "total"):
        value = timings.get(stage, 0.0)
        print(f"{stage:>8}: {value:8.2f} s  {value / report['frames']:7.3f} s/frame")
    print(f"overhead beyond inference: {overhead:.1%} (stages overlap; detection is a separate first pass)")
    return {"frames": report["frames"], "precision": report["precision"], "timings": timings, "overhead": round(overhead, 4)}


def whole_process(command: list[str]) -> tuple[float, str]:
    """Wall seconds of the command, and the precision it ran in (from dpe's --json)."""
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    precision = json.loads(done.stdout)["precision"] if "--json" in command else "fp32"
    return wall, precision


def versus_reference(args: argparse.Namespace, weights: Path, tmp: Path) -> dict:
    source, driver = MEDIA / "dpe_source_crop.mp4", MEDIA / "dpe_driver_crop.mp4"
    seconds = args.frames / 25  # both clips are 25 fps
    dpe = [sys.executable, "-m", "dpe_cli", "edit-expression", str(source), "--driver", str(driver), "--weights", str(weights), "--duration", f"{seconds:g}", "-y", "--quiet", "--json"]
    runs = {
        "reference demo's way (float32)": [sys.executable, str(ROOT / "bench" / "reference_demo.py"), str(weights), str(source), str(driver), str(tmp / "ref.mp4"), "--frames", str(args.frames)],
        "dpe edit-expression (defaults: auto precision, change paste)": [*dpe, "-o", str(tmp / "auto.mp4")],
        "dpe edit-expression --precision bf16": [*dpe, "-o", str(tmp / "bf16.mp4"), "--precision", "bf16"],
        "dpe edit-expression --precision fp32": [*dpe, "-o", str(tmp / "fp32.mp4"), "--precision", "fp32"],
    }
    rows = {}
    baseline = None
    for label, command in runs.items():
        wall, precision = whole_process(command)
        baseline = baseline or wall
        rows[label] = {"seconds": round(wall, 2), "s_per_frame": round(wall / args.frames, 3), "ratio": round(wall / baseline, 3), "precision": precision}
        print(f"{label:<62} {wall:7.1f} s  {wall / args.frames:6.3f} s/frame  {wall / baseline:5.2f}x  (ran in {precision})", flush=True)
    return {"frames": args.frames, "rows": rows}


def profile_model(weights: Path, precision: str) -> dict:
    """The per-layer profile of ``model_speed.py --profile`` for these weights and precision."""
    sys.path.insert(0, str(ROOT / "bench"))
    from model_speed import crops, layer_profile

    model = load_model(weights).eval().requires_grad_(False)
    size = model.config.size
    return layer_profile(model, crops(MEDIA / "dpe_source_crop.mp4", 1, size), crops(MEDIA / "dpe_driver_crop.mp4", 1, size), precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--source", type=Path, default=MEDIA / "talk_landscape_1280x720.mp4")
    parser.add_argument("--driver", type=Path, default=MEDIA / "dpe_driver_crop.mp4")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--versus-reference", action="store_true", help="whole processes side by side with the reference demo's way")
    parser.add_argument("--frames", type=int, default=50, help="frames edited by each whole process")
    parser.add_argument("--profile", action="store_true", help="add the per-layer profile of one frame of the model, in --precision")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "end_to_end.json")
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            torch.manual_seed(0)
            weights = save_model(DPE(DPEConfig()), Path(tmp) / "random.safetensors")
        result["stages"] = stages(args, weights, Path(tmp))
        if args.versus_reference:
            result["versus_reference"] = versus_reference(args, weights, Path(tmp))
        if args.profile:
            result["profile"] = profile_model(weights, args.precision)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    auto, why = choose_precision("auto", torch.device("cpu"))
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "weights": str(args.weights or "random, official architecture"), "auto": auto, "why": why}
    args.out.write_text(json.dumps({"meta": meta, **result}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
