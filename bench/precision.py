"""Is ``--precision auto`` as good as float32? PSNR of the auto choice's pictures against float32's.

For each model (the shipped, trained 64-px model, and the official architecture at 256 px with
the parity fixture's weights) and real face crops: the three edits (expression, pose, both),
the reconstruction (each source driven by its own motion), and the full frame after the default
``change`` paste of the expression edit (a 1280x720 frame, its face box found by the pipeline).
PSNR over [-1, 1] pictures (crops) and over uint8 frames; the goal is >= 45 dB everywhere.
Last, what ``auto`` runs each model in after its check face (``dpe_cli.precision_check``).

    .venv/bin/python bench/precision.py [--frames 8] [--out bench/results/precision.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import PARITY_FILE, official_state_from_fixture  # noqa: E402

from dpe_cli import DPE, load_model  # noqa: E402
from dpe_cli.checkpoint import read_checkpoint  # noqa: E402
from dpe_cli.device import choose_precision  # noqa: E402
from dpe_cli.edit.framing import find_box  # noqa: E402
from dpe_cli.engine import Engine  # noqa: E402
from dpe_cli.precision_check import confirm  # noqa: E402
from dpe_cli.face import CropBox, Paster  # noqa: E402
from dpe_cli.face.crop import crop  # noqa: E402
from dpe_cli.video import FrameReader, probe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"


def frames(path: Path, count: int) -> list[np.ndarray]:
    out = []
    with FrameReader(path) as reader:
        for frame in reader:
            out.append(frame)
            if len(out) == count:
                break
    return out


def psnr_images(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def psnr_tensors(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def official_model() -> DPE:
    fixture = torch.load(PARITY_FILE, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dpe.pt"
        torch.save({"gen": official_state_from_fixture(fixture)}, path)
        return read_checkpoint(path)[0].eval()


def compare(model: DPE, label: str, sources: list[np.ndarray], drivers: list[np.ndarray], full: list[np.ndarray], box: CropBox, chosen: str) -> dict:
    engines = {p: Engine(model, torch.device("cpu"), p, Path(label)) for p in ("fp32", chosen)}
    size = model.config.size
    src = [crop(f, CropBox(0, 0, f.shape[0]), size) for f in sources]  # the clips are face crops already
    drv = [crop(f, CropBox(0, 0, f.shape[0]), size) for f in drivers]
    outputs: dict[str, dict[str, torch.Tensor]] = {p: {} for p in engines}
    pasted: dict[str, list[np.ndarray]] = {p: [] for p in engines}
    for precision, engine in engines.items():
        encoding = engine.encode(src)
        motion = engine.motion(drv)
        own = engine.motion_of(encoding)
        for mode in ("expression", "pose", "both"):
            outputs[precision][mode] = engine.drive(encoding, motion, mode).float()
        outputs[precision]["reconstruction"] = engine.drive(encoding, own, "expression").float()
        with Paster(box, full[0].shape[1], full[0].shape[0], smooth=False) as paster:
            for frame, driver in zip(full, drv):
                face = engine.encode([crop(frame, box, size)])
                edited, reference = engine.render(face, engine.motion([driver]), "expression", engine.motion_of(face))
                pasted[precision].append(paster.paste(frame, edited[0], reference[0]))
    result = {key: round(psnr_tensors(outputs[chosen][key], outputs["fp32"][key]), 2) for key in outputs["fp32"]}
    result["pasted full frame"] = round(float(np.mean([psnr_images(a, b) for a, b in zip(pasted[chosen], pasted["fp32"])])), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "dpe-synthetic-64.safetensors")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "precision.json")
    args = parser.parse_args()
    chosen, why = choose_precision("auto", torch.device("cpu"))
    if chosen == "fp32":
        print(f"auto is float32 on this machine ({why}): nothing to compare")
    sources = frames(MEDIA / "dpe_source_crop.mp4", args.frames)
    drivers = frames(MEDIA / "dpe_driver_crop.mp4", args.frames)
    full_path = MEDIA / "talk_landscape_1280x720.mp4"
    full = frames(full_path, args.frames)
    box = find_box(probe(full_path)).box
    models = {"shipped model (trained, 64 px)": load_model(args.weights).eval()}
    if PARITY_FILE.exists():
        models["official architecture, 256 px, parity fixture's weights"] = official_model()
    else:
        print(f"{PARITY_FILE} is missing: the official-size row is skipped")
    rows, picks = {}, {}
    with torch.inference_mode():
        for label, model in models.items():
            rows[label] = compare(model, label, sources, drivers, full, box, chosen)
            print(f"{label}: " + ", ".join(f"{k} {v:.1f} dB" for k, v in rows[label].items()), flush=True)
            picks[label] = dict(zip(("precision", "why"), confirm(model, torch.device("cpu"), chosen, why)))
            print(f"  auto runs it in {picks[label]['precision']}: {picks[label]['why']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__, "auto": chosen, "why": why, "frames": args.frames}
    args.out.write_text(json.dumps({"meta": meta, "psnr_vs_fp32_db": rows, "auto_runs_in": picks}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
