"""Where the weights come from: the lookup order, the demo-model note, and the shipped model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dpe_cli import weights as lookup
from dpe_cli.errors import CheckpointError
from dpe_cli.weights import locate_weights, model_note, resolve_weights, user_weights_dir
from helpers import ROOT

SHIPPED = ROOT / "dpe_cli" / "data" / "weights" / "dpe-synthetic-64.safetensors"


def put(folder: Path, name: str, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / name)
    return folder / name


def test_lookup_order_takes_each_step_in_turn(weight_places: dict[str, Path], tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="--weights.*DPE_WEIGHTS.*weights/.*dpe weights install"):
        resolve_weights(None)
    shipped = put(weight_places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights)
    assert (locate_weights().path, locate_weights().origin) == (shipped, "shipped")
    user = put(weight_places["user"], "mine.safetensors", tiny_weights)
    assert user_weights_dir() == weight_places["user"]
    assert (locate_weights().path, locate_weights().origin) == (user, "user folder")
    put(weight_places["work"] / "weights", "small.safetensors", tiny_weights)
    assert resolve_weights(None) == Path("weights/small.safetensors")
    put(weight_places["work"] / "weights", "dpe.safetensors", tiny_weights)
    assert (locate_weights().path, locate_weights().origin) == (Path("weights/dpe.safetensors"), "./weights")  # official name first
    monkeypatch.setenv("DPE_WEIGHTS", str(user))
    assert (locate_weights().path, locate_weights().origin) == (user, "$DPE_WEIGHTS")
    assert (locate_weights(shipped).path, locate_weights(shipped).origin) == (shipped, "--weights")
    located = locate_weights(shipped)
    assert (located.name, located.size) == ("dpe-synthetic-64.safetensors", tiny_weights.stat().st_size)
    assert resolve_weights("explicit.safetensors") == Path("explicit.safetensors")  # checked by the loader


def test_demo_model_in_a_folder_comes_after_the_user_folder(weight_places: dict[str, Path], tiny_weights: Path) -> None:
    """A clone's weights/ holds the demo model: it must not hide a model the user installed."""
    put(weight_places["work"] / "weights", "dpe-synthetic-64.safetensors", tiny_weights)
    shipped = put(weight_places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights)
    assert locate_weights().origin == "shipped" and locate_weights().path == shipped
    installed = put(weight_places["user"], "dpe.safetensors", tiny_weights)
    assert locate_weights().path == installed


def test_locate_refuses_a_missing_or_folder_path(weight_places: dict[str, Path]) -> None:
    with pytest.raises(CheckpointError, match="nope.pt \\(--weights\\) not found"):
        locate_weights("nope.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        locate_weights(weight_places["work"])


def test_the_synthetic_model_gets_one_note_and_others_none(weight_places: dict[str, Path], tiny_weights: Path) -> None:
    demo = locate_weights(put(weight_places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights))
    note = model_note(demo)
    assert note is not None and "\n" not in note and note.count(". ") == 0
    assert "synthetic faces only" in note and "dpe weights install dpe.pt" in note
    assert model_note(locate_weights(put(weight_places["user"], "dpe.safetensors", tiny_weights))) is None


def test_the_shipped_model_is_the_package_copy_and_weights_links_to_it() -> None:
    assert lookup.SHIPPED_DIR / SHIPPED.name == SHIPPED and SHIPPED.is_file() and not SHIPPED.is_symlink()
    link = ROOT / "weights" / SHIPPED.name
    assert link.is_symlink() and link.resolve() == SHIPPED.resolve()
