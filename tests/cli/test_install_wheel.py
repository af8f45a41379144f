"""dpe works wherever it is installed: (slow) the built wheel in a fresh venv, run from an
empty folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT


def _wheel_venv(tmp_path: Path) -> Path:
    """Build the wheel and install it with torch into a fresh venv; skip where that cannot be."""
    pytest.importorskip("build", reason="the dev extra's `build` is needed to make the wheel")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the package here (offline without setuptools>=77?): {built.stderr.strip().splitlines()[-1:]}")
    assert not [line for line in built.stdout.splitlines() + built.stderr.splitlines() if "Deprecat" in line]
    (wheel,) = dist.glob("*.whl")
    assert len(list(dist.glob("*.tar.gz"))) == 1
    with zipfile.ZipFile(wheel) as zf:
        assert "dpe_cli/data/weights/dpe-synthetic-64.safetensors" in zf.namelist()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for spec in (["torch==2.13.0"], [str(wheel)]):
        done = subprocess.run([*pip, *spec], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot install {spec[0]} here: {done.stderr.strip().splitlines()[-1:]}")
    return env_dir / "bin" / "dpe"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_built_wheel_works_from_an_empty_folder(tmp_path: Path) -> None:
    dpe = _wheel_venv(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DPE_WEIGHTS", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(dpe), *args], capture_output=True, text=True, cwd=empty, env=env)
        assert done.returncode == 0, done.stderr
        return done

    assert run("--version").stdout.strip() == "dpe 0.1.0"
    info = json.loads(run("info", "--json").stdout)
    assert info["weights"]["selected"]["origin"] == "shipped" and "site-packages" in info["weights"]["selected"]["path"]
    run("synth", "src.mp4", "--kind", "full", "--frames", "12", "--seed", "3", "-q")
    run("synth", "drv.mp4", "--frames", "12", "--seed", "8", "-q")
    report = json.loads(run("edit-expression", "src.mp4", "--driver", "drv.mp4", "-o", "out.mp4", "--json", "-q").stdout)
    assert report["frames"] == 12 and (empty / "out.mp4").stat().st_size > 0
