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


def test_warp_interpolation_scores_each_sampling_against_ideal(tmp_path):
    """The script behind the README's bicubic-over-bilinear choice: a detailed photo moved by
    under a pixel keeps more of its detail with bicubic than with bilinear sampling."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.uniform(0, 255, (96, 80, 3)).astype(np.float32), (0, 0), 1.2)
    cv2.imwrite(str(tmp_path / "portrait_s0.jpg"), photo.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 98])
    out = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "warp_interpolation.py"), "--media", str(tmp_path), "--out", str(out)],
                         capture_output=True, text=True, check=True)
    scores = json.loads(out.read_text())["portrait_s0.jpg"]
    assert "| portrait_s0.jpg |" in run.stdout
    assert scores["bicubic (the paste's)"] > scores["bilinear"] + 3
    missing = subprocess.run([sys.executable, str(ROOT / "bench" / "warp_interpolation.py"), "--media", str(tmp_path / "none")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "needs ../shared/media" in missing.stderr
