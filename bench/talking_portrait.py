"""Talking portraits at full resolution: ``dpe reenact --mode expression`` against the crop output.

Each case is a synthetic 1080x1350 portrait photo (head, hair, shoulders, backdrop) and the same
render with the driver's expression, which is what a perfect expression edit would give. We put
(a) an *oracle* edit (the true render reduced to the model's size, what a perfect model would
output; its reference is the photo's own crop) and (b) the shipped model's edit, driven by
another person showing that expression (its reference is the model's reconstruction) into the
photo three ways: the crop output upscaled over the face box (what a user of the crop output
would do), ``replace`` and ``change`` (the default), and score them against the truth: PSNR and
SSIM over the whole photo and over the face box. It also checks that the change paste leaves
every pixel outside its mask bit for bit, that ``--strength 0`` through the whole pipeline
gives the photo, and times a frame: the model at the official size (the still's path: the
driver's motion and one render; the portrait's encoding and reconstruction are made once)
against the paste at 1080x1350, and the pipeline end to end. Writes a picture strip
(photo | crop output | full-resolution output | truth).

    .venv/bin/python bench/talking_portrait.py [--faces 12] [--weights W]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from dpe_cli import DPE, DPEConfig
from dpe_cli.device import BF16_FLAGS, cpu_flags
from dpe_cli.edit import Engine, run_edit
from dpe_cli.edit.commands import build_request
from dpe_cli.edit.stream import Sink
from dpe_cli.eval.metrics import ssim_map
from dpe_cli.face import CropBox, Paster, box_in_frame
from dpe_cli.face.crop import crop, resize_square
from dpe_cli.synth import Identity, Pose, Scene, render, render_crop, write_clip
from dpe_cli.synth.motion import random_expression
from dpe_cli.video import probe
from paste_fidelity import median_ms, region  # a sibling script: the same timing and face box

ROOT = Path(__file__).resolve().parents[1]
PHOTO = (1080, 1350)  # width, height: a 4:5 portrait, as phones and social media crop them
SEED0 = 130000  # identities used by no training run and no other benchmark


def draw_case(i: int) -> dict:
    """A portrait photo and its truth (same person, pose and scene, the driver's expression),
    and a driver crop of another person showing that expression."""
    rng = np.random.default_rng([SEED0 + i, 0x7A])
    pose = Pose(yaw=rng.uniform(-15, 15), pitch=rng.uniform(-6, 6), roll=rng.uniform(-6, 6),
                tx=rng.uniform(-0.08, 0.08), ty=rng.uniform(-0.12, -0.04), scale=rng.uniform(1.3, 1.6))
    source_expr, target_expr = random_expression(rng), random_expression(rng)
    identity, scene = Identity.from_seed(SEED0 + i), Scene.from_seed(SEED0 + i)
    photo = render(identity, pose, source_expr, PHOTO, "full", scene).image
    truth = render(identity, pose, target_expr, PHOTO, "full", scene).image
    driver = Identity.from_seed(SEED0 + 5000 + i), Pose(yaw=rng.uniform(-15, 15), pitch=rng.uniform(-8, 8)), target_expr
    return {"photo": photo, "truth": truth, "driver": driver}


def find_box(photo: np.ndarray, folder: Path) -> CropBox:
    """The pipeline's own framing of the photo (detection on the still, the default box scale)."""
    from dpe_cli.edit.framing import find_box as framing

    path = folder / "photo.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    return framing(probe(path)).box


def scores(out: np.ndarray, truth: np.ndarray, box: CropBox) -> dict:
    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        mse = np.mean((a.astype(np.float64) - b) ** 2)
        return float(10 * np.log10(255**2 / max(mse, 1e-10)))

    face, face_truth = region(out, box), region(truth, box)
    # SSIM of the whole photo at half size: the full map of a 1080x1350 photo costs seconds.
    half = (PHOTO[0] // 2, PHOTO[1] // 2)
    small, small_truth = (cv2.resize(x, half, interpolation=cv2.INTER_AREA) for x in (out, truth))
    return {"psnr_photo": psnr(out, truth), "psnr_face": psnr(face, face_truth),
            "ssim_photo": float(ssim_map(small, small_truth).mean()), "ssim_face": float(ssim_map(face, face_truth).mean())}


def crop_upscaled(photo: np.ndarray, box: CropBox, edited: np.ndarray) -> np.ndarray:
    """The crop output put back by hand: the model-size picture enlarged over the whole box."""
    out = photo.copy()
    x, y, w, h = box_in_frame(box, photo.shape[1], photo.shape[0])
    big = resize_square(edited, box.size)
    out[y : y + h, x : x + w] = big[y - box.y : y - box.y + h, x - box.x : x - box.x + w]
    return out


def pasted(photo: np.ndarray, box: CropBox, method: str, edited: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The paste into the photo, and how many pixels outside its mask it changed (must be 0)."""
    with Paster(box, photo.shape[1], photo.shape[0], method=method, still=True) as paster:
        out = paster.paste(photo, edited, reference)
        alpha = np.zeros(photo.shape[:2], np.float32)
        x, y, w, h = box_in_frame(box, photo.shape[1], photo.shape[0])
        alpha[y : y + h, x : x + w] = paster.mask(photo)[y - box.y : y - box.y + h, x - box.x : x - box.x + w]
    return out, int((out != photo).any(axis=2)[alpha == 0].sum())


def fidelity(cases: list[dict], boxes: list[CropBox], engine: Engine, sizes: list[int]) -> tuple[dict, dict, int]:
    rows: dict[str, list[dict]] = {}
    pictures: dict[str, np.ndarray] = {}
    outside = 0

    def add(name: str, out: np.ndarray, case: dict, box: CropBox, i: int) -> None:
        rows.setdefault(name, []).append(scores(out, case["truth"], box))
        if i == 0:
            pictures[name] = out

    for i, (case, box) in enumerate(zip(cases, boxes)):
        photo = case["photo"]
        add("unedited photo", photo, case, box, i)
        edits = {f"oracle {s} px": (crop(case["truth"], box, s), crop(photo, box, s)) for s in sizes}
        identity, pose, expression = case["driver"]
        encoding = engine.encode([crop(photo, box, engine.size)])
        edited, reconstruction = engine.render(encoding, engine.motion([render_crop(identity, pose, expression, engine.size)]), "expression",
                                               engine.motion_of(encoding))
        edits[f"shipped model {engine.size} px"] = (edited[0], reconstruction[0])
        for tag, (edit, reference) in edits.items():
            add(f"{tag}: crop output upscaled into the photo", crop_upscaled(photo, box, edit), case, box, i)
            if i == 0:
                pictures[f"{tag}: crop"] = edit
            out, changed = pasted(photo, box, "replace", edit, None)
            add(f"{tag}: replace", out, case, box, i)
            out, changed = pasted(photo, box, "change", edit, reference)
            outside += changed
            add(f"{tag}: change (default)", out, case, box, i)
        if i == 0:
            pictures["truth"] = case["truth"]
    table = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
    return table, pictures, outside


def timing(case: dict, box: CropBox, engine: Engine, repeats: int) -> dict:
    """Per frame of a talking photo: the official-size model's work (the driver's motion and one
    render) against each paste into the 1080x1350 photo of a 256-px edit (the oracle's: an
    untrained model's picture is noise, which no real edit is), all timed interleaved; then what
    the paste adds when it runs as the pipeline runs it, in its own thread beside the model.
    Also the change paste of the shipped model's own edit: the paste's cost follows how much of
    the face an edit changes, which differs from the oracle's (and from face to face)."""
    photo = case["photo"]
    identity, pose, expression = case["driver"]
    own_encoding = engine.encode([crop(photo, box, engine.size)])
    shipped = engine.render(own_encoding, engine.motion([render_crop(identity, pose, expression, engine.size)]), "expression",
                            engine.motion_of(own_encoding))
    torch.manual_seed(0)
    official = Engine(DPE(DPEConfig()).eval(), torch.device("cpu"), "fp32", Path("random"))
    official_bf16 = Engine(official.model, torch.device("cpu"), "bf16", Path("random"))
    portrait = crop(photo, box, official.size)
    encodings = {"": official.encode([portrait]), ", bf16": official_bf16.encode([portrait])}
    driver = render_crop(identity, pose, expression, official.size)
    edited, reference = crop(case["truth"], box, official.size), crop(photo, box, official.size)

    def model_frame(engine: Engine, encoding: object) -> Callable[[], None]:
        return lambda: engine.render(encoding, engine.motion([driver]), "expression")

    with Paster(box, *PHOTO, method="change", still=True) as change, Paster(box, *PHOTO, method="change-fast", still=True) as fast, \
            Paster(box, *PHOTO, method="replace", still=True) as replace, Paster(box, *PHOTO, method="change", still=True) as own:
        result = median_ms({
            "paste: change (ms)": lambda: change.paste(photo, edited, reference),
            "paste: change-fast (ms)": lambda: fast.paste(photo, edited, reference),
            "paste: replace (ms)": lambda: replace.paste(photo, edited),
            f"paste: change, the shipped model's {engine.size}-px edit (ms)": lambda: own.paste(photo, shipped[0][0], shipped[1][0]),
        }, repeats)
        # Right after a model frame the paste runs slower: torch's worker threads still spin.
        result.update(median_ms({
            "paste: change, between model frames (ms)": lambda: change.paste(photo, edited, reference),
            "model: official size 256 px, expression frame (ms)": model_frame(official, encodings[""]),
            "model: official size 256 px, expression frame, bf16 (ms)": model_frame(official_bf16, encodings[", bf16"]),
        }, repeats))
        for precision, key in (("", "model: official size 256 px, expression frame (ms)"), (", bf16", "model: official size 256 px, expression frame, bf16 (ms)")):
            for method in ("change", "change-fast", "replace", "change, between model frames"):
                result[f"paste {method} / model{precision}"] = result[f"paste: {method} (ms)"] / result[key]
        for precision, engine in (("", official), (", bf16", official_bf16)):
            alone, beside = overlapped(model_frame(engine, encodings[precision]), lambda: change.paste(photo, edited, reference), repeats)
            result[f"overlapped{precision}: model alone (ms per frame)"] = alone
            result[f"overlapped{precision}: model with the change paste beside it (ms per frame)"] = beside
            result[f"overlapped{precision}: change paste adds"] = beside / alone - 1
    return result


def overlapped(model_frame: Callable[[], None], paste_frame: Callable[[], None], frames: int, rounds: int = 5) -> tuple[float, float]:
    """Wall time per frame of ``frames`` model frames alone and with each frame's paste handed to
    a thread as the pipeline does (``Sink``, two frames deep), medians of interleaved rounds."""
    alone, beside = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(frames):
            model_frame()
        alone.append(1000 * (time.perf_counter() - began) / frames)
        began = time.perf_counter()
        with Sink(lambda _: paste_frame(), depth=2, name="paste") as sink:
            for i in range(frames):
                model_frame()
                sink.put(i)
        beside.append(1000 * (time.perf_counter() - began) / frames)
    return float(np.median(alone)), float(np.median(beside))


def pipeline(case: dict, weights: Path, folder: Path, frames: int) -> dict:
    """``dpe reenact --mode expression`` end to end on a synthetic driver clip: seconds per frame
    of the crop output and of the full photo, and --strength 0 against the photo, bit for bit."""
    photo_path = folder / "photo.png"
    cv2.imwrite(str(photo_path), cv2.cvtColor(case["photo"], cv2.COLOR_RGB2BGR))
    driver = folder / "driver.mp4"
    write_clip(driver, SEED0 + 9000, n_frames=frames, size=256, kind="crop")
    result = {}
    for label, options in (("crop output (--output-crop)", {"output_crop": True}), ("full photo, change (default)", {})):
        began = time.perf_counter()
        report = run_edit(build_request("reenact", photo_path, driver, str(folder / "out.mp4"), weights=weights, mode="expression", overwrite=True, **options))
        result[f"seconds per frame: {label}"] = (time.perf_counter() - began) / report["frames"]
    out = folder / "still"
    run_edit(build_request("reenact", photo_path, driver, f"{out}/", weights=weights, mode="expression", strength=0.0))
    written = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(out.glob("*.png"))]
    result["strength 0: frames equal to the photo"] = f"{sum(np.array_equal(f, case['photo']) for f in written)}/{len(written)}"
    return result


def _panel(image: np.ndarray, text: str, width: int = 360) -> np.ndarray:
    height = round(width * PHOTO[1] / PHOTO[0])
    if image.shape[0] == image.shape[1]:  # a crop: shown square, at the panel's width, on black
        square = cv2.resize(image, (width, width), interpolation=cv2.INTER_NEAREST)
        out = np.zeros((height, width, 3), np.uint8)
        top = (height - width) // 2
        out[top : top + width] = square
    else:
        out = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def strip(pictures: dict, box: CropBox, tags: list[str], path: Path) -> None:
    """Per row (the shipped model, the largest oracle): photo | crop output | full-resolution
    output | truth, then the same four as close-ups of the face box."""
    rows = []
    for tag in tags:
        panels = [(pictures["unedited photo"], "photo"), (pictures[f"{tag}: crop"], f"{tag}: crop output"),
                  (pictures[f"{tag}: change (default)"], "full-resolution output"), (pictures["truth"], "truth")]
        rows.append(np.concatenate([_panel(p, t) for p, t in panels], axis=1))
        faces = [region(p, box) if p.shape[0] != p.shape[1] else p for p, _ in panels]
        rows.append(np.concatenate([cv2.resize(f, (360, 360), interpolation=cv2.INTER_AREA if f.shape[0] > 360 else cv2.INTER_NEAREST)
                                    for f in faces], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=12)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--weights", type=Path, default=ROOT / "weights" / "dpe-synthetic-64.safetensors")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--frames", type=int, default=25, help="driver frames for the end-to-end timing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "talking_portrait.json")
    parser.add_argument("--strip", type=Path, default=ROOT / "docs" / "talking-portrait.png")
    args = parser.parse_args()
    engine = Engine.load(args.weights)
    cases = [draw_case(i) for i in range(args.faces)]
    with tempfile.TemporaryDirectory() as tmp:
        boxes = [find_box(case["photo"], Path(tmp)) for case in cases]
        table, pictures, outside = fidelity(cases, boxes, engine, args.sizes)
        speed = timing(cases[0], boxes[0], engine, args.repeats)
        end_to_end = pipeline(cases[0], args.weights, Path(tmp), args.frames)
    strip(pictures, boxes[0], [f"shipped model {engine.size} px", f"oracle {max(args.sizes)} px"], args.strip)
    result = {
        "faces": args.faces, "photo": list(PHOTO), "box_sides": [b.size for b in boxes], "weights": str(args.weights),
        "fidelity": table, "change_pixels_outside_mask": outside, "timing": speed, "pipeline": end_to_end,
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "cpu_bf16": sorted(cpu_flags() & BF16_FLAGS),  # with AMX the bf16 model runs ~2.2x float32 (the paste's share doubles)
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"box sides: {min(result['box_sides'])}-{max(result['box_sides'])} px; change pixels changed outside the mask: {outside}")
    print("| output | PSNR photo | PSNR face box | SSIM photo | SSIM face box |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in table.items():
        print(f"| {name} | {row['psnr_photo']:.1f} | {row['psnr_face']:.1f} | {row['ssim_photo']:.3f} | {row['ssim_face']:.3f} |")
    print("\n| per frame | value |\n| --- | --- |")
    for name, value in {**speed, **end_to_end}.items():
        print(f"| {name} | {value:.3f} |" if isinstance(value, float) else f"| {name} | {value} |")


if __name__ == "__main__":
    main()
