"""Paste-back fidelity on synthetic 1080p frames with the true edited render.

Each face is rendered twice in a 1920x1080 frame, same person, pose and scene, with the
source's and with the driver's expression: the second render is what a perfect expression
edit would give. Its crop box (found by the pipeline's own detection) is 500 px or more. We
paste (a) an *oracle* edit, the true render reduced to the model's size (what a perfect model
would output), at 64 and 256 px, and (b) the shipped model's edit, driven by another person
showing the target expression, and score the face box against the true render: PSNR and SSIM
over the box, split into the pixels the true edit changes and those it leaves.

Also: flicker on a still head with sensor noise (mean frame-to-frame change of the mask, and
of what the paste adds to the frame, for a zero and a constant edit), the paste's time per
1080p frame against the model's, and a picture strip (source | replace | change | truth) and
the region masks.

    .venv/bin/python bench/paste_fidelity.py [--faces 16] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

import dpe_cli.face.paste as paste_module
from dpe_cli import DPE, DPEConfig
from dpe_cli.edit import Engine
from dpe_cli.eval.metrics import ssim_map
from dpe_cli.face import BoxAccumulator, CropBox, FaceDetector, Paster, box_in_frame
from dpe_cli.face.crop import crop
from dpe_cli.synth import Identity, Pose, Scene, render, render_crop
from dpe_cli.synth.motion import random_expression

ROOT = Path(__file__).resolve().parents[1]
FRAME = (1920, 1080)
SEED0 = 110000  # identities used by no training run and no other benchmark
CHANGED_LEVEL = 6  # a pixel is "changed" when the true edit moves a channel by more than this


def draw_case(i: int) -> dict:
    """One source/truth pair in a 1080p frame, and a driver crop of another person."""
    rng = np.random.default_rng([SEED0 + i, 0x51])
    pose = Pose(yaw=rng.uniform(-20, 20), pitch=rng.uniform(-8, 8), roll=rng.uniform(-8, 8),
                tx=rng.uniform(-0.4, 0.4), ty=rng.uniform(-0.04, 0.04), scale=rng.uniform(0.95, 1.15))
    source_expr, target_expr = random_expression(rng), random_expression(rng)
    identity, scene = Identity.from_seed(SEED0 + i), Scene.from_seed(SEED0 + i)
    source = render(identity, pose, source_expr, FRAME, "full", scene).image
    truth = render(identity, pose, target_expr, FRAME, "full", scene).image
    driver = Identity.from_seed(SEED0 + 5000 + i), Pose(yaw=rng.uniform(-15, 15), pitch=rng.uniform(-8, 8)), target_expr
    return {"source": source, "truth": truth, "driver": driver}


def find_box(detector: FaceDetector, frame: np.ndarray) -> CropBox:
    boxes = BoxAccumulator()
    boxes.add(detector.detect(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)))
    small = boxes.box(640, 360)
    scale = frame.shape[1] / 640
    return CropBox(round(small.x * scale), round(small.y * scale), round(small.size * scale))


def region(frame: np.ndarray, box: CropBox) -> np.ndarray:
    x, y, w, h = box_in_frame(box, frame.shape[1], frame.shape[0])
    return frame[y : y + h, x : x + w]


def scores(out: np.ndarray, truth: np.ndarray, changed: np.ndarray) -> dict:
    """PSNR and SSIM over the box, and over its changed and unchanged pixels."""
    err = (out.astype(np.float64) - truth) ** 2
    smap = np.pad(ssim_map(out, truth), 5, mode="edge")
    result = {}
    for name, where in (("box", np.ones_like(changed)), ("changed", changed), ("unchanged", ~changed)):
        mse = err[where].mean()
        result[f"psnr_{name}"] = float(10 * np.log10(255**2 / max(mse, 1e-10)))
        result[f"ssim_{name}"] = float(smap[where].mean())
    return result


@contextmanager
def no_change_blend():
    """The change-fast paste without its change-aware blend (the plain upsampled difference)."""
    low, high = paste_module.CHANGE_LOW, paste_module.CHANGE_HIGH
    paste_module.CHANGE_LOW, paste_module.CHANGE_HIGH = 1e9, 2e9
    try:
        yield
    finally:
        paste_module.CHANGE_LOW, paste_module.CHANGE_HIGH = low, high


@contextmanager
def mesh_at(size: int):
    """The previous default drew its mask from the mesh of the model-size source crop."""
    kept = paste_module.MESH_SIZE
    paste_module.MESH_SIZE = size
    try:
        yield
    finally:
        paste_module.MESH_SIZE = kept


def paste(frame: np.ndarray, box: CropBox, method: str, edited: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    with Paster(box, frame.shape[1], frame.shape[0], method=method) as paster:
        return paster.paste(frame, edited, reference)


def previous_paste(frame: np.ndarray, box: CropBox, edited: np.ndarray) -> np.ndarray:
    """The previous default exactly: the model's picture under a mask from the mesh of the
    model-size crop, landmarks not smoothed."""
    with mesh_at(edited.shape[0]), Paster(box, frame.shape[1], frame.shape[0], method="replace", smooth=False) as paster:
        return paster.paste(frame, edited)


def model_edit(engine: Engine, source_crop: np.ndarray, driver_crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's expression edit and its reconstruction of the source (one batch)."""
    encoding = engine.encode([source_crop])
    edited, reconstruction = engine.render(encoding, engine.motion([driver_crop]), "expression", engine.motion_of(encoding))
    return edited[0], reconstruction[0]


def fidelity(cases: list[dict], boxes: list[CropBox], engine: Engine, sizes: list[int]) -> tuple[dict, dict]:
    rows: dict[str, list[dict]] = {}
    pictures: dict[str, np.ndarray] = {}

    def add(name: str, out: np.ndarray, truth: np.ndarray, changed: np.ndarray, box: CropBox, i: int) -> None:
        rows.setdefault(name, []).append(scores(region(out, box), region(truth, box), changed))
        if i == 0:
            pictures[name] = region(out, box)

    for i, (case, box) in enumerate(zip(cases, boxes)):
        source, truth = case["source"], case["truth"]
        diff = np.abs(region(truth, box).astype(int) - region(source, box)).max(axis=2) > CHANGED_LEVEL
        changed = cv2.dilate(diff.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        add("unedited source", source, truth, changed, box, i)
        for size in sizes:
            oracle, reference = crop(truth, box, size), crop(source, box, size)
            add(f"oracle {size} px: replace (previous default)", previous_paste(source, box, oracle), truth, changed, box, i)
            with no_change_blend():
                add(f"oracle {size} px: change-fast, no change-aware blend", paste(source, box, "change-fast", oracle, reference), truth, changed, box, i)
            add(f"oracle {size} px: change-fast", paste(source, box, "change-fast", oracle, reference), truth, changed, box, i)
            add(f"oracle {size} px: change (new default)", paste(source, box, "change", oracle, reference), truth, changed, box, i)
        size = engine.size
        identity, pose, expression = case["driver"]
        driver = render_crop(identity, pose, expression, size)
        source_crop = crop(source, box, size)
        edited, reconstruction = model_edit(engine, source_crop, driver)
        tag = f"shipped model {size} px"
        add(f"{tag}: replace (previous default)", previous_paste(source, box, edited), truth, changed, box, i)
        add(f"{tag}: change vs source crop", paste(source, box, "change", edited, source_crop), truth, changed, box, i)
        add(f"{tag}: change-fast vs reconstruction", paste(source, box, "change-fast", edited, reconstruction), truth, changed, box, i)
        add(f"{tag}: change vs reconstruction (new default)", paste(source, box, "change", edited, reconstruction), truth, changed, box, i)
        pictures["truth"] = region(truth, box) if i == 0 else pictures["truth"]
    table = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
    return table, pictures


def flicker(case: dict, box: CropBox, engine: Engine, frames: int, noise: float) -> dict:
    """A still head with sensor noise: how much the mask and the pasted change move."""
    rng = np.random.default_rng(7)
    source = case["source"]
    width, height = FRAME
    noisy = [np.clip(source + rng.normal(0, noise, source.shape), 0, 255).astype(np.uint8) for _ in range(frames)]
    identity, pose, expression = case["driver"]
    driver_motion = engine.motion([render_crop(identity, pose, expression, engine.size)])

    def mean_step(items: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in zip(items, items[1:])]))

    result = {}
    for label, mesh_size, smooth in (("previous: mesh of the model-size crop, raw", engine.size, False), ("mesh at 256 px, raw", 256, False), ("new: mesh at 256 px, smoothed", 256, True)):
        with mesh_at(mesh_size), Paster(box, width, height, smooth=smooth) as paster:
            masks = [paster.mask(f) for f in noisy]
        result[f"mask, {label}"] = mean_step(masks)
    for edit in ("zero", "constant"):
        for label, method, smooth, mesh_size in (("replace (previous default)", "replace", False, engine.size),
                                                 ("change-fast vs reconstruction", "change-fast", True, 256),
                                                 ("change vs reconstruction (new default)", "change", True, 256)):
            added = []
            with mesh_at(mesh_size), Paster(box, width, height, method=method, smooth=smooth) as paster:
                for f in noisy:
                    encoding = engine.encode([crop(f, box, engine.size)])
                    own = engine.motion_of(encoding)
                    edited, reconstruction = engine.render(encoding, own if edit == "zero" else driver_motion, "expression", own)
                    out = paster.paste(f, edited[0], reconstruction[0])
                    added.append(region(out, box).astype(np.float32) - region(f, box))
            result[f"pasted change, {edit} edit: {label}"] = mean_step(added)
    return result


def median_ms(calls: dict, repeats: int) -> dict:
    """Median time of each call in ms, the calls interleaved so that load changes hit all alike."""
    for call in calls.values():
        call()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            began = time.perf_counter()
            call()
            times[name].append(1000 * (time.perf_counter() - began))
    return {name: float(np.median(t)) for name, t in times.items()}


def timing(case: dict, box: CropBox, engine: Engine, repeats: int) -> dict:
    """Paste time per 1080p frame (mask from the mesh included) against the model's time."""
    source = case["source"]
    identity, pose, expression = case["driver"]
    edited, reconstruction = model_edit(engine, crop(source, box, engine.size), render_crop(identity, pose, expression, engine.size))
    oracle, reference = crop(case["truth"], box, 256), crop(source, box, 256)
    torch.manual_seed(0)
    official = Engine(DPE(DPEConfig()).eval(), torch.device("cpu"), "fp32", Path("random"))
    official_bf16 = Engine(official.model, torch.device("cpu"), "bf16", Path("random"))

    def model_call(model: Engine, with_reference: bool):
        crop_s, driver_s = crop(source, box, model.size), render_crop(identity, pose, expression, model.size)

        def call() -> None:
            encoding = model.encode([crop_s])
            model.render(encoding, model.motion([driver_s]), "expression", model.motion_of(encoding) if with_reference else None)

        return call

    with Paster(box, *FRAME, method="change") as paster, Paster(box, *FRAME, method="change-fast") as fast, \
            Paster(box, *FRAME, method="replace") as replace:
        result = median_ms({
            "paste: change (ms)": lambda: paster.paste(source, edited, reconstruction),
            "paste: change-fast (ms)": lambda: fast.paste(source, edited, reconstruction),
            "paste: change, 256-px edit (ms)": lambda: paster.paste(source, oracle, reference),
            "paste: change-fast, 256-px edit (ms)": lambda: fast.paste(source, oracle, reference),
            "paste: replace (ms)": lambda: replace.paste(source, edited),
            "model: shipped 64 px (ms)": model_call(engine, False),
            "model: shipped 64 px + reconstruction (ms)": model_call(engine, True),
            # The official size in the same rounds, so that the shares below compare like with like.
            "model: official size 256 px (ms)": model_call(official, False),
            "model: official size 256 px + reconstruction (ms)": model_call(official, True),
            "model: official size 256 px, bf16 (ms)": model_call(official_bf16, False),
            "model: official size 256 px, bf16 + reconstruction (ms)": model_call(official_bf16, True),
        }, repeats)
    for precision in ("", ", bf16"):
        model = result[f"model: official size 256 px{precision} + reconstruction (ms)"]
        for method in ("change", "change-fast"):
            result[f"paste {method}, 256-px edit / official model{precision} + reconstruction"] = result[f"paste: {method}, 256-px edit (ms)"] / model
    return result


def label(panel: np.ndarray, text: str, side: int) -> np.ndarray:
    out = cv2.resize(panel, (side, side), interpolation=cv2.INTER_AREA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def strip(pictures: dict, sizes: list[int], model_size: int, path: Path, side: int = 360) -> None:
    """Rows: the shipped model and the 256-px oracle; columns: source | replace | change | truth."""
    rows = []
    for tag in (f"shipped model {model_size} px", f"oracle {max(sizes)} px"):
        new = next(k for k in pictures if k.startswith(tag) and k.endswith("(new default)"))
        old = f"{tag}: replace (previous default)"
        rows.append(np.concatenate([label(pictures["unedited source"], "source", side), label(pictures[old], f"{tag}: replace", side),
                                    label(pictures[new], f"{tag}: change", side), label(pictures["truth"], "truth", side)], axis=1))
    # A close-up of the mouth and eyes (the box's middle) shows the detail at full resolution.
    h = pictures["truth"].shape[0]
    zoom = np.s_[int(0.35 * h) : int(0.85 * h), int(0.25 * h) : int(0.75 * h)]
    tag = f"shipped model {model_size} px"
    new = next(k for k in pictures if k.startswith(tag) and k.endswith("(new default)"))
    rows.append(np.concatenate([label(pictures[k][zoom], t, side) for k, t in (("unedited source", "source (zoom)"), (f"{tag}: replace (previous default)", "replace (zoom)"), (new, "change (zoom)"), ("truth", "truth (zoom)"))], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def region_picture(case: dict, box: CropBox, path: Path, side: int = 360) -> None:
    """The source's face with each region's feathered mask tinted over it."""
    source = case["source"]
    panels = []
    for mask in ("face", "mouth", "eyes", "mouth,eyes"):
        with Paster(box, *FRAME, mask=mask) as paster:
            alpha = paster.mask(source)
        x, y, w, h = box_in_frame(box, *FRAME)
        alpha = alpha[y - box.y : y - box.y + h, x - box.x : x - box.x + w, None]
        face = region(source, box).astype(np.float32)
        tinted = face * (1 - 0.55 * alpha) + 0.55 * alpha * np.array([255, 60, 200], np.float32)
        panels.append(label(tinted.astype(np.uint8), f"--mask {mask}", side))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(panels, axis=1), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "dpe-synthetic-64.safetensors")
    parser.add_argument("--flicker-frames", type=int, default=12)
    parser.add_argument("--noise", type=float, default=3.0, help="sensor noise (grey levels) for the flicker clip")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "paste_fidelity.json")
    parser.add_argument("--strip", type=Path, default=ROOT / "docs" / "paste-fidelity.png")
    parser.add_argument("--regions", type=Path, default=ROOT / "docs" / "paste-regions.png")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    engine = Engine.load(args.weights)
    cases = [draw_case(i) for i in range(args.faces)]
    with FaceDetector() as detector:
        boxes = [find_box(detector, case["source"]) for case in cases]
    table, pictures = fidelity(cases, boxes, engine, args.sizes)
    steadiness = flicker(cases[0], boxes[0], engine, args.flicker_frames, args.noise)
    speed = timing(cases[0], boxes[0], engine, args.repeats)
    strip(pictures, args.sizes, engine.size, args.strip)
    region_picture(cases[0], boxes[0], args.regions)
    result = {
        "faces": args.faces, "frame": list(FRAME), "box_sides": [b.size for b in boxes], "weights": str(args.weights),
        "fidelity": table, "flicker": steadiness, "timing": speed, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"box sides: {min(result['box_sides'])}-{max(result['box_sides'])} px")
    print("| paste | PSNR box | PSNR changed | PSNR unchanged | SSIM box | SSIM changed | SSIM unchanged |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in table.items():
        print(f"| {name} | {row['psnr_box']:.1f} | {row['psnr_changed']:.1f} | {row['psnr_unchanged']:.1f} | "
              f"{row['ssim_box']:.3f} | {row['ssim_changed']:.3f} | {row['ssim_unchanged']:.3f} |")
    print("\n| flicker (mean change per frame, grey levels; mask in [0, 1]) | value |\n| --- | --- |")
    for name, value in steadiness.items():
        print(f"| {name} | {value:.4f} |")
    print("\n| time per 1080p frame | ms |\n| --- | --- |")
    for name, value in speed.items():
        print(f"| {name} | {value:.1f} |" if "(ms)" in name else f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
