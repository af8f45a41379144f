"""Installing checkpoints into the user folder: checked, converted, never half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpe_cli.errors import CheckpointError, OutputExistsError
from dpe_cli.weights import locate_weights


def test_install_checks_converts_and_refuses_to_overwrite(weight_places: dict[str, Path], official_checkpoint: Path, tiny_weights: Path) -> None:
    from dpe_cli.checkpoint import install

    info = install(official_checkpoint)
    assert info.path == weight_places["user"] / "dpe.safetensors" and info.format == "safetensors"
    assert info.metadata["converted_from"] == "dpe.pt"
    with pytest.raises(OutputExistsError, match="`overwrite`"):
        install(official_checkpoint)
    copied = install(tiny_weights)
    assert copied.path.read_bytes() == tiny_weights.read_bytes()
    assert install(tiny_weights, overwrite=True).sha256 == copied.sha256
    broken = weight_places["work"] / "broken.safetensors"
    broken.write_bytes(tiny_weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        install(broken)
    assert not (weight_places["user"] / "broken.safetensors").exists()
    assert sorted(p.name for p in weight_places["user"].iterdir()) == ["dpe.safetensors", "tiny.safetensors"]  # no partials
    assert locate_weights().path == info.path
