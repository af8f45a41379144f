"""``bench/disentanglement.py`` is a command line over :mod:`dpe_cli.eval.disentanglement`."""

from __future__ import annotations

import json
import subprocess
import sys

from dpe_cli.eval.disentanglement import measure
from helpers import ROOT

MODEL = ROOT / "weights" / "dpe-synthetic-64.safetensors"


def test_the_script_runs_the_library(small_judge, tmp_path):
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "disentanglement.py"), "measure", "--regressor", str(small_judge),
                          "--pairs", "2", "--out", str(out)], capture_output=True, text=True, check=True)
    assert run.stdout.startswith("| edit | model |") and json.loads(out.read_text()) == json.loads(json.dumps(measure(small_judge, [], 2, 0)))
    mismatch = subprocess.run([sys.executable, str(ROOT / "bench" / "disentanglement.py"), "measure", "--regressor", str(small_judge),
                               "-w", str(MODEL), "--pairs", "1", "--out", str(out)], capture_output=True, text=True)
    assert mismatch.returncode == 1 and mismatch.stderr.strip() == f"{MODEL}: model size 64 differs from the regressor's 32"
