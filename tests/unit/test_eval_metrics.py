"""`dpe eval`'s definitions on synthetic arrays: PSNR, SSIM, LPIPS from user weights, head-pose
angles, summaries, the optional identity extra, and requests checked before anything loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_cli.errors import InputError
from dpe_cli.eval import facegeom, identity, metrics
from dpe_cli.eval.lpips import load_lpips
from dpe_cli.eval.scoring import Frame, References, Scorer, summarise
from helpers import rotation_matrix


def _patterns() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:48, 0:64]
    a = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    b = np.stack([(x * 4 + 20 * np.sin(y / 3)) % 256, (y * 5) % 256, ((x * 2 + y) * 3) % 256], -1).astype(np.uint8)
    return a, b


# --- pixel metrics ---------------------------------------------------------------------


def test_psnr_is_capped_and_flagged_for_identical_frames() -> None:
    a, b = _patterns()
    assert metrics.psnr(a, a) == (metrics.PSNR_CAP, True)
    value, capped = metrics.psnr(a, b)
    assert not capped and 5 < value < 40
    big = np.zeros((256, 256, 3), np.uint8)
    nudged = big.copy()
    nudged[0, 0, 0] = 1  # one grey level in one pixel of a 256x256 frame: ~101 dB, capped too
    assert metrics.psnr(big, nudged) == (metrics.PSNR_CAP, True)


def test_ssim_matches_scikit_image_definition() -> None:
    a, b = _patterns()
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    # skimage.metrics.structural_similarity(a, b, channel_axis=-1, gaussian_weights=True,
    # sigma=1.5, use_sample_covariance=False, data_range=255) on these two patterns:
    assert metrics.ssim(a, b) == pytest.approx(0.739776117630803, abs=1e-9)
    with pytest.raises(ValueError):
        metrics.ssim(a, b[:, :32])


# --- LPIPS from user weights -----------------------------------------------------------


def _random_lpips_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    convs = ((0, 3, 64, 11), (3, 64, 192, 5), (6, 192, 384, 3), (8, 384, 256, 3), (10, 256, 256, 3))
    state = {}
    for n, (i, cin, cout, k) in enumerate(convs):
        state[f"features.{i}.weight"] = torch.randn(cout, cin, k, k) * 0.05
        state[f"features.{i}.bias"] = torch.zeros(cout)
        state[f"lin{n}.model.1.weight"] = torch.rand(1, cout, 1, 1)
    return state


def test_lpips_loads_split_or_merged_weights_and_measures(tmp_path: Path) -> None:
    state = _random_lpips_state()
    torch.save({k: v for k, v in state.items() if k.startswith("features")}, tmp_path / "alexnet.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "alex.pth")
    # The lpips package's own naming of the same convolutions.
    slices = {"0": "net.slice1.0", "3": "net.slice2.3", "6": "net.slice3.6", "8": "net.slice4.8", "10": "net.slice5.10"}
    renamed = {
        slices[k.split(".")[1]] + "." + k.split(".")[2] if k.startswith("features") else k: v for k, v in state.items()
    }
    torch.save(renamed, tmp_path / "lpips_full.pth")
    a, b = _patterns()
    split = load_lpips([tmp_path / "alexnet.pth", tmp_path / "alex.pth"])
    merged = load_lpips([tmp_path / "lpips_full.pth"])
    assert split.distance(a, a) == pytest.approx(0.0, abs=1e-7)
    assert split.distance(a, b) > 0
    assert merged.distance(a, b) == pytest.approx(split.distance(a, b), rel=1e-6)
    with pytest.raises(InputError, match="lin0"):
        load_lpips([tmp_path / "alexnet.pth"])


# --- head pose ---------------------------------------------------------------------------


def test_euler_angles_round_trip() -> None:
    for angles in [(0, 0, 0), (20, -10, 5), (-35, 25, -15)]:
        assert facegeom.euler_from_rotation(rotation_matrix(*angles)) == pytest.approx(angles, abs=1e-9)
    assert facegeom.pose_distance((10, 0, 179), (10, 0, -179)) == pytest.approx(2 / 3)


# --- summaries, the identity extra, requests ----------------------------------------------


def test_summary_counts_faceless_frames_and_ignores_missing_values() -> None:
    rows = [
        {"psnr": 30.0, "psnr_capped": False, "aed": 0.1, "no_face": ""},
        {"psnr": 100.0, "psnr_capped": True, "aed": None, "no_face": "generated"},
    ]
    out = summarise(rows, {"lpips": "why"})
    assert out["psnr"] == pytest.approx(65.0) and out["psnr_capped"] is True
    assert out["aed"] == pytest.approx(0.1) and out["csim"] is None
    assert out["frames"] == 2 and out["frames_without_face"] == 1
    assert out["unavailable"] == {"lpips": "why"}


def test_missing_identity_extra_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    real = identity.importlib.util.find_spec
    hidden = ("dlib", "face_recognition_models")
    monkeypatch.setattr(
        identity.importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )
    assert identity.unavailable_reason() == identity.INSTALL_HINT
    with Scorer() as s:
        assert "dpe-cli[eval]" in s.unavailable["csim"]
        a, _ = _patterns()
        assert s.score(Frame(a), References(identity=Frame(a)))["csim"] is None


def test_requests_are_checked_before_anything_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairing, counts and modes fail at once, from Python too: no scorer, no model, no video."""
    from dpe_cli.eval import EvalOptions, ProtocolRequest, editing, reenactment, scoring

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("loaded before the request was checked")

    monkeypatch.setattr(scoring.Scorer, "__init__", refuse)
    with pytest.raises(InputError, match="2 `sources` but 1 `drivers`"):
        reenactment([Path("a.png"), Path("b.png")], [Path("c.mp4")])
    with pytest.raises(InputError, match="no clips to evaluate"):
        editing()
    with pytest.raises(InputError, match="needs a single edit mode"):
        editing([Path("c.mp4")], options=EvalOptions(generated=[Path("g.mp4")]))
    with pytest.raises(InputError, match="1 `generated` for 2 clips"):
        ProtocolRequest("editing", ["pose"], [Path("c.mp4"), Path("d.mp4")], options=EvalOptions(generated=[Path("g.mp4")]))
    with pytest.raises(InputError, match="unknown edit mode 'smile'"):
        ProtocolRequest("editing", ["smile"], [Path("c.mp4")])
    with pytest.raises(InputError, match="`batch` = 0"):
        EvalOptions(batch=0)
