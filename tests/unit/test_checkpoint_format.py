"""Our safetensors format and the checkpoint reader: exact round trips, configs checked
against the tensors, pickled code refused, and damaged files that always say why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from dpe_cli import load_model, save_model
from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.errors import CheckpointError, InputError
from helpers import tiny_safetensors


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


# checkpoints whose metadata lies, pickles with code, damaged files (issue 15)


def test_header_shapes_that_disagree_with_the_config_are_refused(tiny_weights: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(tiny_weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name].flatten()[:1].clone()
    path = tiny_safetensors(tmp_path / "reshaped.safetensors", {"size": 64, "style_dim": 64, "motion_dim": 8, "width": 0.0625}, tensors)
    with pytest.raises(CheckpointError, match=f"declared size 64.*mis-shaped \\({name}"):
        read_checkpoint(path)


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_pickle_with_code_is_refused_and_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"gen": {"x": torch.zeros(1)}, "payload": _Payload()}, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = caught.value.one_line()
    assert "code or objects that a safe load refuses (posix.system)" in message
    assert "truncated" not in message and ".safetensors" in message
    assert not (tmp_path / "pwned").exists()


def test_damaged_zip_always_has_a_reason(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"gen": {"a": torch.randn(50, 50)}}, good)
    data = good.read_bytes()
    reasons = 0
    for start in range(0, len(data), 23):
        damaged = bytearray(data)
        damaged[start : start + 16] = bytes(b ^ 0xFF for b in damaged[start : start + 16])
        path = tmp_path / "damaged.pt"
        path.write_bytes(bytes(damaged))
        try:
            read_checkpoint(path)
        except CheckpointError as exc:
            message = exc.one_line()
            if message.startswith("cannot read"):
                reason = message.split(": ", 1)[1].split(" (the file")[0]
                assert sum(c.isalnum() for c in reason) >= 3, message
                reasons += 1
    assert reasons > 0  # some damage was reported as unreadable, so reasons were checked


@pytest.mark.parametrize("text", ["", ". ", "\n:\n"])
def test_reason_is_never_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "damaged.pt"
    torch.save({"gen": {"a": torch.zeros(1)}}, path)

    def damaged(*_: object, **__: object) -> None:
        raise RuntimeError(text)

    monkeypatch.setattr(torch, "load", damaged)
    with pytest.raises(CheckpointError, match=r"cannot read .*damaged\.pt: RuntimeError while reading the data \(the file"):
        read_checkpoint(path)
