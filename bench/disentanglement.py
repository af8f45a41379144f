"""Does training disentangle pose from expression? Measured on synthetic faces with known labels.

Three steps (and ``probe``: how much of each factor the motion vector carries):

    # 1. The loss regressor (sees ground truth): renders of identities 0-9999 -> labels. Its
    #    expression half is the expression network of `dpe train --expression-weights`.
    .venv/bin/python bench/disentanglement.py regressor --size 64 --renders 6000 --steps 2000

    # 2. The judge: the same recipe with another seed on other identities (10000-19999). It
    #    never takes part in training, so a model cannot learn to please it.
    .venv/bin/python bench/disentanglement.py regressor --size 64 --renders 6000 --steps 2000 \\
        --seed 1 --identities 10000:20000 --out weights/regressors/synthetic-judge-64.safetensors \\
        --expression-out none

    # 3. The benchmark on held-out identities (seeds from 100000, never trained on).
    .venv/bin/python bench/disentanglement.py measure -w weights/dpe-synthetic-64.safetensors \\
        -w ablation=runs/ablation/model.safetensors --pairs 200

Each measured pair is a source S and a driver D of one held-out identity and scene with
independent random pose and expression (``render_pair``-style, exact labels). For every model:

- expression edit e(S, D): pose error against S (should stay), expression error against D;
- pose edit p(S, D): pose error against D, expression error against S (should stay);
- full reenactment ("both"): pose and expression errors against D.

Baselines without a model: the unedited source and the driver itself, read like the outputs.
Every image is read by the judge and compared with the *true* labels of its
references, so an unedited image against its own labels shows the regressor's error (the
floor of every number) and against the other image's labels the gap an edit has to close.
Pose error: mean |yaw|, |pitch|, |roll| difference in degrees. Expression error: mean absolute
difference of mouth_open, smile, blink and brow_raise, each on a range of width 1 (smile and
brow_raise span [-1, 1] and are halved), i.e. 0.33 is the error of a random guess.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dpe_cli import load_model
from dpe_cli.synth.face import Identity, Scene, render
from dpe_cli.synth.factors import (
    EXPRESSION_FACTORS,
    FACTORS,
    POSE_FACTORS,
    denormalise,
    load_factor_regressor,
    normalise,
    predict,
    random_renders,
    save_expression_half,
    save_pose_half,
    save_factor_regressor,
    to_tensor,
    train_factor_regressor,
)
from dpe_cli.synth.motion import random_expression, random_pose

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = 100_000  # first held-out identity seed; training data uses seeds far below
REGRESSOR_IDENTITIES = range(0, 10_000)
REGRESSORS = ROOT / "weights" / "regressors"
JUDGE = REGRESSORS / "synthetic-judge-64.safetensors"
# Expression factors on a common range of width 1 (smile, brow_raise span [-1, 1]).
EXPRESSION_RANGE = np.array([1.0, 2.0, 1.0, 2.0])


def make_regressor(args: argparse.Namespace) -> None:
    start = time.time()
    images, targets = [], []
    for image, labels in random_renders(args.renders, args.size, args.seed, args.identities):
        images.append(image)
        targets.append(normalise(labels))
    x, y = np.stack(images), np.stack(targets)
    render_s = time.time() - start
    print(f"rendered {len(x)} crops at {args.size} px in {render_s:.0f} s", flush=True)
    split = len(x) - args.validation
    model = train_factor_regressor(
        x[:split], y[:split], steps=args.steps, width=args.width, seed=args.seed,
        log=lambda step, loss: print(f"step {step} L1 {loss:.4f}", flush=True),
    )  # fmt: skip
    errors = np.abs(predict(model, to_tensor(x[split:])) - denormalise(y[split:]))
    per_factor = {k: round(float(v), 4) for k, v in zip(FACTORS, errors.mean(0))}
    info = {
        "renders": int(split), "validation": int(args.validation), "size": args.size, "steps": args.steps,
        "identity_seeds": [args.identities.start, args.identities.stop], "seed": args.seed,
        "wall_seconds": round(time.time() - start), "validation_mae": per_factor,
    }  # fmt: skip
    print(json.dumps(info, indent=1))
    save_factor_regressor(model, args.out, info)
    print(f"wrote {args.out}")
    write_halves(model, args.expression_out, args.pose_out)


def write_halves(model: torch.nn.Module, expression_out: Path, pose_out: Path) -> None:
    """The loss networks of ``dpe train``: expression and pose rows of a factor regressor."""
    for path, save in ((expression_out, save_expression_half), (pose_out, save_pose_half)):
        if str(path) != "none":
            save(model, path)
            print(f"wrote {path}")


def split(args: argparse.Namespace) -> None:
    write_halves(load_factor_regressor(args.regressor), args.expression_out, args.pose_out)


def pose_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute yaw/pitch/roll difference (degrees), per row."""
    idx = [FACTORS.index(k) for k in POSE_FACTORS]
    return np.abs(a[:, idx] - b[:, idx]).mean(1)


def expression_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute expression difference on unit ranges, per row."""
    idx = [FACTORS.index(k) for k in EXPRESSION_FACTORS]
    return (np.abs(a[:, idx] - b[:, idx]) / EXPRESSION_RANGE).mean(1)


def held_out_pairs(count: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Sources and drivers: one held-out identity and scene per pair, independent pose and
    expression for each image. Returns images in [-1, 1] and their true factors."""
    rng = np.random.default_rng([seed, 0xBE4C])
    sources, drivers, s_labels, d_labels = [], [], [], []
    for i in range(count):
        identity = Identity.from_seed(HELD_OUT + i)
        scene = Scene.from_seed(int(rng.integers(2**31)))
        for images, labels in ((sources, s_labels), (drivers, d_labels)):
            pose, expression = random_pose(rng), random_expression(rng)
            images.append(render(identity, pose, expression, (size, size), "crop", scene).image)
            labels.append([getattr(pose, k) for k in POSE_FACTORS] + [getattr(expression, k) for k in EXPRESSION_FACTORS])
    return to_tensor(np.stack(sources)), to_tensor(np.stack(drivers)), np.array(s_labels), np.array(d_labels)


def row(name: str, predicted: np.ndarray, pose_ref: np.ndarray, expression_ref: np.ndarray) -> dict:
    per_factor = np.abs(predicted - np.where(np.isin(FACTORS, POSE_FACTORS), pose_ref, expression_ref)).mean(0)
    return {
        "name": name,
        "pose_error_deg": round(float(pose_error(predicted, pose_ref).mean()), 2),
        "expression_error": round(float(expression_error(predicted, expression_ref).mean()), 3),
        "per_factor": {k: round(float(v), 3) for k, v in zip(FACTORS, per_factor)},
    }


@torch.no_grad()
def edit(model: torch.nn.Module, source: torch.Tensor, driver: torch.Tensor, mode: str, batch: int = 32) -> torch.Tensor:
    return torch.cat([model.edit(source[i : i + batch], driver[i : i + batch], mode=mode).clamp(-1, 1) for i in range(0, len(source), batch)])


def measure(args: argparse.Namespace) -> None:
    torch.set_grad_enabled(False)
    regressor = load_factor_regressor(args.regressor)
    size = int(regressor.config["input_size"])
    source, driver, s_true, d_true = held_out_pairs(args.pairs, size, args.seed)
    s_read, d_read = predict(regressor, source), predict(regressor, driver)
    # Every output is read by the regressor and compared with the true labels, so the rows
    # of the unedited images give the floor (the regressor's own error) and the gap.
    rows = {"expression": [row("unedited source", s_read, s_true, d_true), row("driver itself", d_read, s_true, d_true)],
            "pose": [row("unedited source", s_read, d_true, s_true), row("driver itself", d_read, d_true, s_true)],
            "both": [row("unedited source", s_read, d_true, d_true), row("driver itself", d_read, d_true, d_true)],
            "self": [row("unedited source", s_read, s_true, s_true)]}  # fmt: skip
    for spec in args.weights:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).stem
        model = load_model(path, device="cpu")
        if model.config.size != size:
            sys.exit(f"{path}: model size {model.config.size} differs from the regressor's {size}")
        for mode, pose_ref, expression_ref in (("expression", s_true, d_true), ("pose", d_true, s_true), ("both", d_true, d_true)):
            out = predict(regressor, edit(model, source, driver, mode))
            rows[mode].append(row(name, out, pose_ref, expression_ref))
        out = predict(regressor, edit(model, source, source, "both"))
        rows["self"].append(row(name, out, s_true, s_true))
    result = {
        "pairs": args.pairs, "size": size, "seed": args.seed, "held_out_identities": [HELD_OUT, HELD_OUT + args.pairs],
        "regressor": str(args.regressor),
        "rows": rows, "torch": torch.__version__, "machine": platform.machine(),
    }  # fmt: skip
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def ridge_r2(features: np.ndarray, targets: np.ndarray, train: int, strength: float = 30.0) -> np.ndarray:
    """R^2 on rows ``train:`` of a ridge regression fitted on rows ``:train`` (standardised
    features), one value per target column."""
    mean, std = features[:train].mean(0), features[:train].std(0) + 1e-6
    x = (features - mean) / std
    a = x[:train]
    coef = np.linalg.solve(a.T @ a + strength * np.eye(a.shape[1]), a.T @ (targets[:train] - targets[:train].mean(0)))
    predicted = x[train:] @ coef + targets[:train].mean(0)
    residual = ((predicted - targets[train:]) ** 2).mean(0)
    return 1 - residual / targets[train:].var(0)


def probe(args: argparse.Namespace) -> None:
    """How much of each factor's change the motion vector d = Dir(A(w)) carries.

    For pairs of one held-out identity, d(D) - d(S) is regressed (ridge, fitted on 3/4 of the
    pairs) onto the true change of each factor; R^2 on the other 1/4 is printed. Editing can
    only transfer what d carries, so a factor near 0 here cannot move in any edit.
    """
    torch.set_grad_enabled(False)
    source, driver, s_true, d_true = held_out_pairs(args.pairs, args.size, args.seed)
    train = args.pairs * 3 // 4
    print("| model | " + " | ".join(FACTORS) + " |")
    print("| --- |" + " --- |" * len(FACTORS))
    results = {}
    for spec in args.weights:
        name, _, path = spec.rpartition("=")
        name = name or Path(path).stem
        model = load_model(path, device="cpu")
        change = model.motion(model.encode(driver).latent) - model.motion(model.encode(source).latent)
        r2 = ridge_r2(change.numpy().astype(np.float64), d_true - s_true, train)
        results[name] = {k: round(float(v), 3) for k, v in zip(FACTORS, r2)}
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in r2) + " |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"pairs": args.pairs, "seed": args.seed, "r2": results}, indent=1) + "\n")
        print(f"wrote {args.out}")


def table(result: dict) -> str:
    """Markdown: one row per (edit, model), errors against the references that edit should match."""
    refs = {"expression": ("source", "driver"), "pose": ("driver", "source"), "both": ("driver", "driver"), "self": ("source", "source")}
    title = {"expression": "expression edit e(S, D)", "pose": "pose edit p(S, D)", "both": "full reenactment", "self": "self-reconstruction (S driven by S)"}
    lines = ["| edit | model | pose error (deg) vs | expression error vs | mouth-open error |", "| --- | --- | --- | --- | --- |"]
    for mode, entries in result["rows"].items():
        pose_ref, expression_ref = refs[mode]
        for r in entries:
            mouth = r["per_factor"]["mouth_open"]
            lines.append(f"| {title[mode]} | {r['name']} | {r['pose_error_deg']:.2f} ({pose_ref}) | {r['expression_error']:.3f} ({expression_ref}) | {mouth:.3f} |")
    return "\n".join(lines)


def identity_range(text: str) -> range:
    """``"10000:20000"`` -> range(10000, 20000)."""
    start, _, stop = text.partition(":")
    return range(int(start), int(stop))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("regressor", help="render labelled crops and train the factor regressor")
    reg.add_argument("--size", type=int, default=64)
    reg.add_argument("--renders", type=int, default=6000)
    reg.add_argument("--validation", type=int, default=500)
    reg.add_argument("--steps", type=int, default=2000)
    reg.add_argument("--width", type=int, default=32)
    reg.add_argument("--seed", type=int, default=0)
    reg.add_argument("--identities", type=identity_range, default=REGRESSOR_IDENTITIES, help="identity seeds START:STOP")
    reg.add_argument("--out", type=Path, default=REGRESSORS / "synthetic-factors-64.safetensors")
    reg.add_argument("--expression-out", type=Path, default=REGRESSORS / "synthetic-expression-64.safetensors", help="or none")
    reg.add_argument("--pose-out", type=Path, default=REGRESSORS / "synthetic-pose-64.safetensors", help="or none")
    reg.set_defaults(run=make_regressor)
    spl = sub.add_parser("split", help="write the expression and pose halves of an existing factor regressor")
    spl.add_argument("--regressor", type=Path, default=REGRESSORS / "synthetic-factors-64.safetensors")
    spl.add_argument("--expression-out", type=Path, default=REGRESSORS / "synthetic-expression-64.safetensors", help="or none")
    spl.add_argument("--pose-out", type=Path, default=REGRESSORS / "synthetic-pose-64.safetensors", help="or none")
    spl.set_defaults(run=split)
    mea = sub.add_parser("measure", help="measure edits on held-out identities")
    mea.add_argument("-w", "--weights", action="append", default=[], help="[NAME=]PATH of a dpe model; repeat")
    mea.add_argument("--regressor", type=Path, default=JUDGE, help="the judge (default: the one kept out of training)")
    mea.add_argument("--pairs", type=int, default=200)
    mea.add_argument("--seed", type=int, default=0)
    mea.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "disentanglement.json")
    mea.set_defaults(run=measure)
    pro = sub.add_parser("probe", help="how much of each factor the motion vector carries (R^2)")
    pro.add_argument("-w", "--weights", action="append", default=[], help="[NAME=]PATH of a dpe model; repeat")
    pro.add_argument("--pairs", type=int, default=800)
    pro.add_argument("--size", type=int, default=64)
    pro.add_argument("--seed", type=int, default=0)
    pro.add_argument("--out", type=Path, default=None, help="also write the R^2 values as JSON")
    pro.set_defaults(run=probe)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
