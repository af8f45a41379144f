"""A training run's ``OUT/model.safetensors``: the newest generator, published atomically
through an unpredictable temporary that no planted file or link can redirect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dpe_cli.model import DPE, Discriminator, DPEConfig
from dpe_cli.train.state import LATEST_MODEL, save_checkpoint

CONFIG = DPEConfig(size=64, style_dim=64, motion_dim=8, width=0.0625)


@pytest.fixture(scope="module")
def models() -> tuple[DPE, Discriminator]:
    torch.manual_seed(0)
    return DPE(CONFIG), Discriminator(CONFIG)


def _save(run: Path, step: int, models: tuple[DPE, Discriminator]) -> Path:
    model, discriminator = models
    return save_checkpoint(run, step, model, discriminator, {"step": step}, keep=0, metadata={}).generator


def test_latest_model_is_a_link_to_the_newest_generator(tmp_path: Path, models: tuple[DPE, Discriminator]) -> None:
    first = _save(tmp_path, 1, models)
    assert os.path.samefile(tmp_path / LATEST_MODEL, first)
    second = _save(tmp_path, 2, models)
    assert os.path.samefile(tmp_path / LATEST_MODEL, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", LATEST_MODEL]  # no temporary left


def test_without_hard_links_it_is_a_copy(tmp_path: Path, models: tuple[DPE, Discriminator], monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    generator = _save(tmp_path, 1, models)
    latest = tmp_path / LATEST_MODEL
    assert not os.path.samefile(latest, generator) and latest.read_bytes() == generator.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", LATEST_MODEL]


def test_temporary_names_are_not_predictable(tmp_path: Path, models: tuple[DPE, Discriminator], monkeypatch: pytest.MonkeyPatch) -> None:
    """A file at the name a pid would give is left alone, and each publication uses a new name."""
    planted = tmp_path / f".{LATEST_MODEL}.partial-{os.getpid()}"
    planted.write_text("someone else's")
    names: list[str] = []
    link = os.link

    def recording(source: str, target: str) -> None:
        names.append(Path(target).name)
        link(source, target)

    monkeypatch.setattr(os, "link", recording)
    _save(tmp_path, 1, models)
    _save(tmp_path, 2, models)
    assert planted.read_text() == "someone else's"
    assert len(names) == 2 and names[0] != names[1]


def test_a_link_planted_at_the_temporary_is_never_followed(
    tmp_path: Path, models: tuple[DPE, Discriminator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a symbolic link that appears at the temporary's name just before the hard link is
    made (so the link fails and the copy is tried) is not written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = os.link

    def planting(source: str, target: str) -> None:
        os.symlink(victim, target)
        link(source, target)

    monkeypatch.setattr(os, "link", planting)
    with pytest.raises(FileExistsError):
        _save(tmp_path / "run", 1, models)
    assert victim.read_text() == "precious"
    assert not (tmp_path / "run" / LATEST_MODEL).exists()
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoints"]  # the planted link is gone too
