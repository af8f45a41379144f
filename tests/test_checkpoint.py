"""Checkpoint formats, conversion, lookup order and bad-checkpoint errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dpe_cli import DPE, DPEConfig, load_model, save_model
from dpe_cli.checkpoint import convert, read_checkpoint
from dpe_cli.errors import CheckpointError, InputError


def run_dpe(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpe_cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_safetensors_round_trip_is_exact(tiny_weights, tmp_path):
    model = load_model(tiny_weights)
    again = tmp_path / "again.safetensors"
    save_model(model, again)
    reloaded = load_model(again)
    assert reloaded.config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.edit(x, x.flip(0)), reloaded.edit(x, x.flip(0)))


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


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"gen": {"x": torch.zeros(1)}, "payload": Path("/")}, path)  # an arbitrary class
    with pytest.raises(CheckpointError, match="a safe load refuses .*PosixPath"):
        read_checkpoint(path)


def test_config_that_does_not_match_tensors(tiny_weights, tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tiny_weights))
    path = tmp_path / "lying.safetensors"
    config = {"size": 128, "style_dim": 64, "motion_dim": 8, "width": 0.0625}
    save_file(tensors, str(path), metadata={"format": "dpe-cli", "format_version": "1", "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="does not match the DPE architecture"):
        read_checkpoint(path)


def test_unknown_config_field_is_refused(tiny_weights, tmp_path):
    from safetensors.torch import load_file, save_file

    config = {**load_model(tiny_weights).config.to_dict(), "attention": True}
    path = tmp_path / "newer.safetensors"
    save_file(load_file(str(tiny_weights)), str(path), metadata={"format": "dpe-cli", "format_version": "1", "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"does not know \(attention\)"):
        read_checkpoint(path)


def test_loading_does_not_hash_the_file(tiny_weights, monkeypatch):
    """The hash reads the whole file: only what shows it (``dpe weights info``) pays for it."""
    import dpe_cli.checkpoint as checkpoint

    hashed = []
    monkeypatch.setattr(checkpoint, "file_sha256", lambda path: hashed.append(path) or "h")
    _, info = read_checkpoint(tiny_weights)
    load_model(tiny_weights)
    assert hashed == []
    assert info.sha256 == info.sha256 == "h" and hashed == [tiny_weights]


def test_resolve_device_keeps_its_old_import():
    from dpe_cli.checkpoint import resolve_device as old
    from dpe_cli.device import resolve_device

    assert old is resolve_device and resolve_device("cpu") == torch.device("cpu")


def test_bad_device_is_input_error(tiny_weights):
    with pytest.raises(InputError):
        load_model(tiny_weights, device="tpu")


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


def test_cli_help_and_info():
    help_ = run_dpe("--help")
    assert help_.returncode == 0 and "edit" in help_.stdout.lower()
    result = run_dpe("info", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["torch"].startswith("2.") and "cpu" in data["devices"]
