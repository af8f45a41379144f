"""Model time per frame: the reference's way of computing against ours, side by side.

Every row runs the same weights on the same real face crops in this one process, so ratios
are fair on a noisy machine. The baseline ("naive") has the reference's operation structure
(grouped modulated convolutions, per-channel FIR filters; see ``reference_ops.py``) and its
usage: batch 1, every frame through ``edit``, a still portrait re-encoded for every frame.

    .venv/bin/python bench/model_speed.py [--weights W] [--frames 8] [--batch-sizes 1 4 8]
        [--precisions auto fp32 bf16] [--profile] [--out bench/results/model_speed.json]

Without --weights, full-size random weights with the official architecture are used (speed
does not depend on the values). With --weights of a trained model, the bf16 rows also report
the PSNR of their output against float32. ``auto`` is the precision the tool picks on this
machine for these weights (its row says which: random weights fail the check face and run
float32, so ask for bf16 to time it). ``--profile`` adds, per precision, a layer-by-layer profile of
one expression frame at batch 1 with its reconstruction (see ``layer_profile.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from layer_profile import print_rows, profile, summarise  # noqa: E402
from reference_ops import reference_ops  # noqa: E402

from dpe_cli import DPE, DPEConfig, load_model  # noqa: E402
from dpe_cli.device import choose_precision  # noqa: E402
from dpe_cli.engine import Engine  # noqa: E402
from dpe_cli.precision_check import confirm  # noqa: E402
from dpe_cli.video import FrameReader  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def crops(path: Path, count: int, size: int) -> torch.Tensor:
    """``count`` frames of a 256x256 face-crop clip as N x 3 x size x size in [-1, 1]."""
    frames = []
    for frame in FrameReader(path, size=(size, size)):
        frames.append(torch.from_numpy(frame).permute(2, 0, 1).float() / 127.5 - 1)
        if len(frames) == count:
            break
    return torch.stack(frames)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def naive(model: DPE, source: torch.Tensor, driver: torch.Tensor, mode: str, still: bool) -> torch.Tensor:
    """The reference demo: one frame per call, everything encoded again each time."""
    with reference_ops():
        outs = [model.edit(source[:1] if still else source[i : i + 1], driver[i : i + 1], mode) for i in range(len(driver))]
    return torch.cat(outs)


def ours(engine: Engine, source: torch.Tensor, driver: torch.Tensor, mode: str, still: bool, batch: int) -> torch.Tensor:
    """The pipeline's way, through its engine: batches, channels-last input, a still portrait
    encoded once, bf16 autocast when asked."""
    outs = []
    portrait = engine.encode(source[:1]) if still else None
    for i in range(0, len(driver), batch):
        encoding = portrait if still else engine.encode(source[i : i + batch])
        outs.append(engine.drive(encoding, engine.motion(driver[i : i + batch]), mode).float())
    return torch.cat(outs)


def timed(fn, repeats: int) -> tuple[float, torch.Tensor]:
    best = math.inf
    out = None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def auto_choice(model: DPE, asked: str) -> tuple[str, str]:
    """What a run asking for ``asked`` uses with this model, and why (``auto``: the hardware's
    choice, kept where the model's check face agrees with float32; random weights stay float32)."""
    precision, why = choose_precision(asked, torch.device("cpu"))
    return confirm(model, torch.device("cpu"), precision, why) if asked == "auto" else (precision, why)


def layer_profile(model: DPE, source: torch.Tensor, driver: torch.Tensor, asked: str) -> dict:
    """Layer by layer: one expression frame at batch 1 (source and driver encoded, the edit and
    the reconstruction a change paste needs rendered in one batch), as the pipeline runs it."""
    precision, why = auto_choice(model, asked)
    engine = Engine(model, torch.device("cpu"), precision, Path("profiled"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)

    def frame() -> None:
        encoding = engine.encode(source[:1])
        engine.render(encoding, engine.motion(driver[:1]), "expression", reference=engine.motion_of(encoding))

    whole, _ = timed(frame, 3)
    rows = summarise(profile(model, frame), dtype)
    print(f"\nprofile, {asked} ({precision}: {why}); one expression frame with its reconstruction, batch 1: {whole * 1e3:.0f} ms")
    print_rows(rows, whole)
    return {"precision": precision, "why": why, "frame_ms": round(whole * 1e3, 1), "layers": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per row")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--profile", action="store_true", help="add a per-layer profile of one expression frame")
    parser.add_argument("--modes", nargs="+", default=["expression", "reenact"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_model(args.weights) if args.weights else DPE(DPEConfig()).eval().requires_grad_(False)
    size = model.config.size
    source = crops(MEDIA / "dpe_source_crop.mp4", args.frames, size)
    driver = crops(MEDIA / "dpe_driver_crop.mp4", args.frames, size)
    rows = []

    def record(name: str, mode: str, batch: int, precision: str, seconds: float, baseline: float | None, quality: float | None) -> None:
        per_frame = seconds / args.frames
        row = {"path": name, "mode": mode, "batch": batch, "precision": precision, "s_per_frame": round(per_frame, 4), "ratio_to_naive": None if baseline is None else round(per_frame / baseline, 3), "psnr_vs_fp32": quality}
        rows.append(row)
        ratio = "" if baseline is None else f"{per_frame / baseline:6.2f}x"
        q = "" if quality is None else f"  PSNR {quality:.1f} dB"
        print(f"{mode:>10} {name:>6} batch {batch:<2} {precision:>9}: {per_frame:7.3f} s/frame {ratio}{q}", flush=True)

    with torch.inference_mode():
        for mode_name in args.modes:
            still = mode_name == "reenact"
            mode = "both" if still else mode_name
            base_seconds, _ = timed(lambda: naive(model, source, driver, mode, still), args.repeats)
            baseline = base_seconds / args.frames
            record("naive", mode_name, 1, "fp32", base_seconds, None, None)
            reference_out = None
            for asked in args.precisions:
                precision, _ = auto_choice(model, asked)
                label = f"auto={precision}" if asked == "auto" else precision
                for batch in args.batch_sizes:
                    engine = Engine(model, torch.device("cpu"), precision, args.weights or Path("random"))
                    seconds, out = timed(lambda: ours(engine, source, driver, mode, still, batch), args.repeats)
                    if precision == "fp32" and reference_out is None:
                        reference_out = out
                    quality = round(psnr(out, reference_out), 2) if args.weights and precision != "fp32" else None
                    record("ours", mode_name, batch, label, seconds, baseline, quality)
        profiles = {asked: layer_profile(model, source, driver, asked) for asked in args.precisions} if args.profile else {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__, "weights": str(args.weights or "random, official architecture"), "frames": args.frames}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, **({"profile": profiles} if profiles else {})}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
