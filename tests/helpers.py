"""Helpers shared by the test folders (unit/, integration/, cli/): where things are, the shared
media, small clips made with ffmpeg, and running the ``dpe`` command.

pyproject puts tests/ on sys.path (``pythonpath``), so every test module can
``from helpers import ...`` whatever its folder. Fixtures live in conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEDIA = SHARED / "media"
PARITY_FILE = SHARED / "parity" / "dpe_reference_fixture.pt"
PARTIALS = ".dpe-partial-*"  # the private temporaries of dpe's atomic outputs


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


def run_dpe(*args: str, cwd: Path | None = None, env: dict | None = None, **kwargs: object) -> subprocess.CompletedProcess:
    """``python -m dpe_cli ARGS`` in a child process, output captured as text."""
    return subprocess.run([sys.executable, "-m", "dpe_cli", *args], capture_output=True, text=True, cwd=cwd, env=env, **kwargs)


def face_clips(folder: Path, names: str = "abcd") -> Path:
    """Short face clips, one per name (``a.mp4``, ...), cut from talk_full_590.mp4 half a second apart."""
    for i, name in enumerate(names):
        ffmpeg("-ss", str(0.5 * i), "-i", str(media("talk_full_590.mp4")), "-t", "0.2", "-an", "-c:v", "libx264", str(folder / f"{name}.mp4"))
    return folder


def noise_video(path: Path, seconds: float = 1.0) -> Path:
    """A 320x240 test pattern without a face."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read_frames(path: Path, count: int, step: int = 1) -> list[np.ndarray]:
    """Every step-th frame from the start, count of them, through dpe's reader."""
    from dpe_cli.video.reader import FrameReader

    with FrameReader(path) as reader:
        return [f for i, f in zip(range(count * step), reader) if i % step == 0]


def xy_pattern(width: int, height: int) -> np.ndarray:
    """R = column, G = row: every pixel says where it came from."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.arange(width)[None, :]
    frame[..., 1] = np.arange(height)[:, None]
    return frame


def assert_only_box_changed(frame: np.ndarray, out: np.ndarray, box: object) -> None:
    """A pasted frame differs from the original only inside the crop box."""
    from dpe_cli.face import box_in_frame

    x, y, w, h = box_in_frame(box, frame.shape[1], frame.shape[0])
    outside = np.ones(frame.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[outside], frame[outside])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The head rotation of these Euler angles (degrees), as dpe.eval.facegeom reads them."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def synth_crop(pose: object = None, expr: object = None, identity: int = 3, size: int = 256) -> object:
    """A synthetic face crop (a ``dpe_cli.synth.Rendering``); a frontal, neutral face by default."""
    from dpe_cli.synth import Expression, Identity, Pose, Scene, render

    pose, expr = Pose() if pose is None else pose, Expression() if expr is None else expr
    return render(Identity.from_seed(identity), pose, expr, (size, size), "crop", Scene.from_seed(11))


def tiny_safetensors(path: Path, config: dict, tensors: dict | None = None) -> Path:
    """A valid safetensors file (a few bytes of tensors) whose metadata declares ``config``."""
    from safetensors.torch import save_file

    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata={"format": "dpe-cli", "format_version": "1", "config": json.dumps(config)})
    return path


def tensors_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


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
