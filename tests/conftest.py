"""Shared test helpers: paths to ../shared, the parity fixture, small models."""

from __future__ import annotations

import subprocess
import zlib
from fractions import Fraction
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIA = SHARED / "media"
PARITY_FILE = SHARED / "parity" / "dpe_reference_fixture.pt"


def media(name: str) -> Path:
    """A file from ../shared/media, or skip the test saying why."""
    path = MEDIA / name
    if not path.exists():
        pytest.skip(f"shared media {path} is not available (tests read ../shared/media beside the repository)")
    return path


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg (tests make their own small clips with it)."""
    from dpe_cli.video.probe import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def audio_duration(path: Path) -> float:
    """Seconds covered by the first audio stream's packets (probe does not report it)."""
    from dpe_cli.video.probe import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy"]
    out = subprocess.run([*cmd, "-f", "framecrc", "-"], capture_output=True, text=True).stdout
    rows = [line.split(",") for line in out.splitlines() if not line.startswith("#")]
    tb = next(line for line in out.splitlines() if line.startswith("#tb 0:")).split()[-1]
    start = min(int(r[2]) for r in rows)
    end = max(int(r[2]) + int(r[3]) for r in rows)
    return float((end - start) * Fraction(tb))


def official_state_from_fixture(fixture: dict) -> dict[str, torch.Tensor]:
    """The official-format generator state dict, rebuilt with the fixture's recipe."""
    state = {}
    for name, shape, kind in fixture["keys"]:
        if kind == "buffer":
            state[name] = fixture["buffers"][name].clone()
            continue
        g = torch.Generator().manual_seed(zlib.crc32(name.encode()) + fixture["recipe_salt"])
        t = torch.randn(shape, generator=g, dtype=torch.float32)
        if name.endswith("modulation.bias"):
            t = 1.0 + 0.1 * t
        elif name.endswith("bias"):
            t = 0.1 * t
        state[name] = t
    return state


@pytest.fixture(scope="session")
def parity_fixture() -> dict:
    if not PARITY_FILE.exists():
        pytest.skip(f"parity fixture {PARITY_FILE} is not available")
    return torch.load(PARITY_FILE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session")
def official_checkpoint(parity_fixture, tmp_path_factory) -> Path:
    """An official-format ``dpe.pt`` ({"gen": state}) with the fixture's weights."""
    path = tmp_path_factory.mktemp("official") / "dpe.pt"
    torch.save({"gen": official_state_from_fixture(parity_fixture)}, path)
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random model (64 px, narrow) saved in our safetensors format."""
    from dpe_cli import DPE, DPEConfig, save_model

    torch.manual_seed(0)
    model = DPE(DPEConfig(size=64, style_dim=64, motion_dim=8, width=0.0625))
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save_model(model, path)
    return path
