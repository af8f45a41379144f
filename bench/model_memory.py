"""Peak memory of the model: one expression step with its reconstruction, at several batch sizes
and precisions, each in a fresh process (peak resident memory cannot be reset in one).

Reports the process's peak resident memory, the part the model's weights and the interpreter
take (after loading, before any frame), and the difference: what the step itself needs.

    .venv/bin/python bench/model_memory.py [--batch-sizes 1 8] [--precisions fp32 bf16]
        [--out bench/results/model_memory.json]

Full-size random weights with the official architecture (memory does not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def probe(batch: int, precision: str) -> None:
    """In this process: load, note the peak, run one step at ``batch``, note the peak again."""
    import torch

    from dpe_cli import DPE, DPEConfig
    from dpe_cli.engine import Engine

    torch.manual_seed(0)
    model = DPE(DPEConfig()).eval().requires_grad_(False)
    engine = Engine(model, torch.device("cpu"), precision, Path("random"))
    faces = torch.rand(batch, 3, 256, 256) * 2 - 1
    loaded = peak_mib()
    encoding = engine.encode(faces)
    engine.render(encoding, engine.motion(faces), "expression", reference=engine.motion_of(encoding))
    print(json.dumps({"loaded_mib": round(loaded), "peak_mib": round(peak_mib())}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--probe", nargs=2, metavar=("BATCH", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model_memory.json")
    args = parser.parse_args()
    if args.probe:
        probe(int(args.probe[0]), args.probe[1])
        return
    rows = []
    for precision in args.precisions:
        for batch in args.batch_sizes:
            done = subprocess.run([sys.executable, __file__, "--probe", str(batch), precision], check=True, capture_output=True, text=True)
            row = {"precision": precision, "batch": batch, **json.loads(done.stdout.strip().splitlines()[-1])}
            row["step_mib"] = row["peak_mib"] - row["loaded_mib"]
            rows.append(row)
            print(f"{precision:>5} batch {batch:<2}: peak {row['peak_mib']:6d} MiB, loaded model {row['loaded_mib']:6d} MiB, the step {row['step_mib']:6d} MiB", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "weights": "random, official architecture", "step": "encode batch, its motion, expression edit + reconstruction in one batch of 2 x batch"}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
