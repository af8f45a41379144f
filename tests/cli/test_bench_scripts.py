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



def test_layer_profile_counts_what_torch_counts():
    """The per-layer profile gives each layer a time and the FLOPs torch's flop counter gives
    its convolutions (layers without FIR filters, so every convolution is dense)."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    from dpe_cli.model.layers import ConvLayer, StyledConv

    sys.path.insert(0, str(ROOT / "bench"))
    from layer_profile import profile, summarise

    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.plain, self.styled = ConvLayer(4, 8, 3), StyledConv(8, 6, 5)

        def forward(self, x, style):
            return self.styled(self.plain(x), style)

    torch.manual_seed(0)
    model, x, style = Two().eval(), torch.randn(1, 4, 16, 16), torch.randn(1, 5)
    with torch.inference_mode():
        records = profile(model, lambda: model(x, style), repeats=2)
        counter = FlopCounterMode(display=False)
        with counter:
            model(x, style)
    convolutions = sum(v for op, v in counter.get_flop_counts()["Global"].items() if "convolution" in str(op))
    assert [r.name for r in records] == ["plain", "styled"] and all(r.seconds > 0 for r in records)
    assert sum(r.flops for r in records) == convolutions == 2 * 16 * 16 * 9 * (4 * 8 + 8 * 6)
    assert summarise(records, torch.float32)[1]["gflop"] == round(2 * 16 * 16 * 9 * 8 * 6 / 1e9, 3)
