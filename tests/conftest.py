"""Shared fixtures (the parity fixture, small models, training clips) and the kind markers.

Tests live in three folders, one per kind, and each test is marked with its folder's name:
``unit`` (fast, pure functions and small modules), ``integration`` (the library run in
process on small videos: pipeline, training steps, evaluation, batch runner) and ``cli``
(the ``dpe`` command end to end). ``-m unit`` etc. selects a kind; ``slow`` is separate.
Helpers that are not fixtures are in helpers.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import PARITY_FILE, ROOT, media, official_state_from_fixture

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "integration", "cli")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its folder's kind; a test outside the three folders is an error."""
    stray = set()
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/
            continue
        if folder in KINDS:
            item.add_marker(getattr(pytest.mark, folder))
        else:
            stray.add(str(item.path.relative_to(ROOT)))
    if stray:
        raise pytest.UsageError(f"tests outside tests/{{{','.join(KINDS)}}}/: {', '.join(sorted(stray))}; move them into the folder of their kind")


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


@pytest.fixture
def one_torch_thread():
    """Two cores shared with other tests: one thread per process is fastest and steadiest."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def training_data(tmp_path_factory) -> Path:
    """VoxCeleb layout plus a flat broken file: two identities, three clips (two videos and a
    folder of frames), and a video that is random bytes."""
    import cv2

    root = tmp_path_factory.mktemp("data")
    (root / "id_a").mkdir()
    (root / "id_b" / "frames").mkdir(parents=True)
    shutil.copy(media("dpe_source_crop.mp4"), root / "id_a" / "talk.mp4")
    shutil.copy(media("dpe_driver_crop.mp4"), root / "id_b" / "talk.mov")
    for i in range(6):
        image = np.full((80, 80, 3), 40 * i, np.uint8)
        cv2.circle(image, (20 + 6 * i, 40), 12, (255, 200, 150), -1)
        cv2.imwrite(str(root / "id_b" / "frames" / f"{i}.png"), image)
    (root / "broken.mp4").write_bytes(os.urandom(4096))
    return root


@pytest.fixture(scope="session")
def training_cache(tmp_path_factory) -> Path:
    """One frame cache for every test that reads ``training_data`` (64 px, 12 frames a clip)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def weight_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty working folder, user data folder and shipped folder, and no $DPE_WEIGHTS."""
    from dpe_cli import weights as lookup

    work, data, shipped = tmp_path / "work", tmp_path / "data", tmp_path / "shipped"
    for folder in (work, data, shipped):
        folder.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DPE_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(lookup, "SHIPPED_DIR", shipped)
    return {"work": work, "user": data / "dpe" / "weights", "shipped": shipped}


@pytest.fixture(scope="session")
def small_judge(tmp_path_factory) -> Path:
    """A small random factor regressor (32 px) to judge disentanglement with."""
    from dpe_cli.synth.factors import FACTORS, save_factor_regressor
    from dpe_cli.synth.regressor import ExpressionRegressor

    torch.manual_seed(0)
    return save_factor_regressor(ExpressionRegressor(dims=len(FACTORS), width=4, input_size=32).eval(),
                                 tmp_path_factory.mktemp("judge") / "judge.safetensors")
