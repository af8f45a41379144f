"""Loading real-size checkpoints: the official format converts and keeps its outputs, a wrong
architecture names its keys, and a header that lies fails before allocating the model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dpe_cli import DPE, DPEConfig, load_model
from dpe_cli.checkpoint import convert, read_checkpoint
from dpe_cli.errors import CheckpointError
from helpers import tiny_safetensors


def test_convert_official_keeps_outputs(official_checkpoint, parity_fixture, tmp_path):
    target = tmp_path / "dpe.safetensors"
    info = convert(official_checkpoint, target)
    assert info.format == "safetensors" and info.config == DPEConfig()
    assert info.metadata["converted_from"] == "dpe.pt"
    a, b = load_model(official_checkpoint), load_model(target)
    src, drv = parity_fixture["source"][:1], parity_fixture["driving"][:1]
    with torch.no_grad():
        assert torch.equal(a.edit(src, drv), b.edit(src, drv))


def _official_state(official_checkpoint: Path) -> dict:
    return torch.load(official_checkpoint, weights_only=True)["gen"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda s: s.update({"extra.layer.weight": torch.zeros(1)}), "1 unexpected (extra.layer.weight)"),
        (lambda s: s.pop("dec_pose.convs.3.conv.weight"), "missing (expression_generator.levels.1.conv.conv.weight)"),
        (lambda s: s.update({"mlp.2.weight": torch.zeros(3, 3)}), "mis-shaped (mlp.2.weight"),
    ],
)
def test_wrong_architecture_names_the_keys(official_checkpoint, tmp_path, damage, message):
    state = dict(_official_state(official_checkpoint))
    damage(state)
    path = tmp_path / "bad.pt"
    torch.save({"gen": state}, path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert message in str(err.value)


def test_training_checkpoint_with_args_namespace_loads(official_checkpoint, tmp_path):
    import argparse

    path = tmp_path / "030000.pt"
    torch.save({"gen": _official_state(official_checkpoint), "args": argparse.Namespace(size=256, lr=0.002)}, path)
    model, info = read_checkpoint(path)
    assert info.format == "official" and isinstance(model, DPE)


# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork).
PEAK_RSS_AFTER_READ = """
import re, sys
from pathlib import Path
from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.errors import CheckpointError
try:
    read_checkpoint(sys.argv[1])
except CheckpointError as exc:
    print(exc.one_line())
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) // 1024)
"""


@pytest.mark.parametrize(
    "config, message",
    [
        ({"size": 512, "style_dim": 10**9, "motion_dim": 20, "width": 1.0}, "declares a model config no DPE has"),
        ({"size": 512, "style_dim": 512, "motion_dim": 20, "width": 1e6}, "declares a model config no DPE has"),
        ({"size": 256, "style_dim": 512, "motion_dim": 10**6, "width": 1.0}, "declares a model config no DPE has"),
        ({"size": float("inf"), "style_dim": 512, "motion_dim": 20, "width": 1.0}, "no valid model config"),
        # Within the bounds, about 1 GB of weights, but the file holds one number.
        ({"size": 512, "style_dim": 1024, "motion_dim": 128, "width": 2.0}, "does not match the DPE architecture"),
    ],
)
def test_lying_checkpoint_header_fails_before_allocating(tmp_path: Path, config: dict, message: str) -> None:
    path = tiny_safetensors(tmp_path / "lying.safetensors", config)
    assert path.stat().st_size < 400
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS_AFTER_READ, str(path)], capture_output=True, text=True, check=True)
    error, peak_mib = result.stdout.splitlines()
    assert message in error and "\n" not in error
    assert int(peak_mib) < 900, f"{peak_mib} MiB peak: the declared model was built"
    assert time.monotonic() - began < 30
