"""``dpe weights``: info, convert, path and install; bad checkpoints end in one line, exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import run_dpe


@pytest.mark.parametrize("kind", ["missing", "text", "truncated", "empty_safetensors_header"])
def test_cli_bad_checkpoints_exit_2_without_traceback(tiny_weights, tmp_path, kind):
    path = tmp_path / f"{kind}.safetensors"
    if kind == "text":
        path.write_text("this is not a checkpoint\n")
    elif kind == "truncated":
        path.write_bytes(tiny_weights.read_bytes()[:5000])
    elif kind == "empty_safetensors_header":
        path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    result = run_dpe("weights", "info", str(path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_cli_debug_shows_traceback(tmp_path):
    result = run_dpe("weights", "info", str(tmp_path / "nope.pt"), "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_cli_convert_and_info_json(official_checkpoint, tmp_path):
    target = tmp_path / "out.safetensors"
    assert run_dpe("weights", "convert", str(official_checkpoint), "-o", str(target)).returncode == 0
    again = run_dpe("weights", "convert", str(official_checkpoint), "-o", str(target))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    info = json.loads(run_dpe("weights", "info", str(target), "--json").stdout)
    assert info["format"] == "safetensors" and info["parameters"] == 69_098_688
    assert info["config"] == {"size": 256, "style_dim": 512, "motion_dim": 20, "width": 1.0}


def test_cli_weights_path_and_install(tmp_path: Path, tiny_weights: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("DPE_WEIGHTS", None)
    shown = run_dpe("weights", "path", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == ["--weights", "$DPE_WEIGHTS", "./weights", "user", "shipped"]
    assert "a run would use:" in shown.stdout and "(8.7 MB, shipped)" in shown.stdout and "synthetic faces only" in shown.stdout
    installed = run_dpe("weights", "install", str(tiny_weights), cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr
    again = run_dpe("weights", "install", str(tiny_weights), cwd=tmp_path, env=env)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    data = json.loads(run_dpe("weights", "path", "--json", cwd=tmp_path, env=env).stdout)
    assert data["selected"]["origin"] == "user folder" and data["selected"]["name"] == "tiny.safetensors"
    assert data["note"] is None and [p["origin"] for p in data["searched"]][3] == "user folder"
    info = json.loads(run_dpe("info", "--json", cwd=tmp_path, env=env).stdout)
    assert info["weights"]["selected"] == data["selected"]


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_cli_convert_never_replaces_its_input(tiny_weights, tmp_path, link):
    """-o the input itself, or a link to it, with -y: exit 2, one line, the input untouched."""
    source = tmp_path / "w.safetensors"
    source.write_bytes(tiny_weights.read_bytes())
    target = source
    if link != "same":
        target = tmp_path / "link.safetensors"
        target.symlink_to(source) if link == "symlink" else os.link(source, target)
    result = run_dpe("weights", "convert", str(source), "-o", str(target), "-y")
    assert result.returncode == 2 and "is the input" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert source.read_bytes() == tiny_weights.read_bytes() and (link != "symlink" or target.is_symlink())
