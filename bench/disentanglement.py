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

What is measured and how: :mod:`dpe_cli.eval.disentanglement`, whose functions this script runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dpe_cli.eval.disentanglement import (
    REGRESSOR_IDENTITIES,
    ModelSizeError,
    measure,
    probe,
    table,
    train_regressor,
    write_halves,
)
from dpe_cli.synth.factors import FACTORS, load_factor_regressor, save_factor_regressor
from dpe_cli.synth.regressor import ExpressionRegressor

ROOT = Path(__file__).resolve().parents[1]
REGRESSORS = ROOT / "weights" / "regressors"
JUDGE = REGRESSORS / "synthetic-judge-64.safetensors"


def make_regressor(args: argparse.Namespace) -> None:
    model, info = train_regressor(args.renders, args.size, args.steps, args.width, args.seed, args.identities,
                                  args.validation, log=lambda line: print(line, flush=True))
    print(json.dumps(info, indent=1))
    save_factor_regressor(model, args.out, info)
    print(f"wrote {args.out}")
    halves(model, args)


def halves(model: ExpressionRegressor, args: argparse.Namespace) -> None:
    """Write the halves the options ask for ("none": that half is skipped)."""
    paths = [None if str(path) == "none" else path for path in (args.expression_out, args.pose_out)]
    for path in write_halves(model, *paths):
        print(f"wrote {path}")


def split(args: argparse.Namespace) -> None:
    halves(load_factor_regressor(args.regressor), args)


def named(specs: list[str]) -> list[tuple[str, str]]:
    """``[NAME=]PATH`` options -> (name, path) in order; the name defaults to the file's stem."""
    models = []
    for spec in specs:
        name, _, path = spec.rpartition("=")
        models.append((name or Path(path).stem, path))
    return models


def run_measure(args: argparse.Namespace) -> None:
    try:
        result = measure(args.regressor, named(args.weights), args.pairs, args.seed)
    except ModelSizeError as exc:
        sys.exit(str(exc))
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def run_probe(args: argparse.Namespace) -> None:
    """Print R^2 per model as a Markdown table (and write it as JSON with --out)."""
    print("| model | " + " | ".join(FACTORS) + " |")
    print("| --- |" + " --- |" * len(FACTORS))
    results = {}
    for name, r2 in probe(named(args.weights), args.pairs, args.size, args.seed):
        results[name] = {k: round(float(v), 3) for k, v in zip(FACTORS, r2)}
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in r2) + " |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"pairs": args.pairs, "seed": args.seed, "r2": results}, indent=1) + "\n")
        print(f"wrote {args.out}")


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
    mea.set_defaults(run=run_measure)
    pro = sub.add_parser("probe", help="how much of each factor the motion vector carries (R^2)")
    pro.add_argument("-w", "--weights", action="append", default=[], help="[NAME=]PATH of a dpe model; repeat")
    pro.add_argument("--pairs", type=int, default=800)
    pro.add_argument("--size", type=int, default=64)
    pro.add_argument("--seed", type=int, default=0)
    pro.add_argument("--out", type=Path, default=None, help="also write the R^2 values as JSON")
    pro.set_defaults(run=run_probe)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
