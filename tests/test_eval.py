"""`dpe eval`: metric definitions, protocols and the CLI, on synthetic arrays and real media."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from dpe_cli.cli import eval_cmd
from dpe_cli.errors import InputError
from dpe_cli.eval import facegeom, identity, metrics
from dpe_cli.eval.lpips import load_lpips
from dpe_cli.eval.scoring import Frame, References, Scorer, summarise

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
SOURCE = MEDIA / "dpe_source_crop.mp4"  # one person
DRIVER = MEDIA / "dpe_driver_crop.mp4"  # another person
MACRON = MEDIA / "portrait_macron.png"
TAYLOR = MEDIA / "portrait_taylor.png"

needs_media = pytest.mark.skipif(not SOURCE.is_file(), reason=f"real face media not found in {MEDIA}")
needs_dlib = pytest.mark.skipif(
    identity.unavailable_reason() is not None,
    reason="dlib-bin / face-recognition-models (the eval extra) not installed",
)


def _cli(args: list[str]) -> typer.testing.Result:  # type: ignore[name-defined]
    app = typer.Typer()
    eval_cmd.register(app)
    return CliRunner().invoke(app, ["eval", *args])


def _frames(path: Path, count: int, step: int = 1) -> list[np.ndarray]:
    from dpe_cli.video.reader import FrameReader

    with FrameReader(path) as reader:
        return [f for i, f in zip(range(count * step), reader) if i % step == 0]


def _patterns() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:48, 0:64]
    a = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1).astype(np.uint8)
    b = np.stack([(x * 4 + 20 * np.sin(y / 3)) % 256, (y * 5) % 256, ((x * 2 + y) * 3) % 256], -1).astype(np.uint8)
    return a, b


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    with Scorer() as s:
        yield s


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


# --- head pose and expression geometry -------------------------------------------------


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_euler_angles_round_trip() -> None:
    for angles in [(0, 0, 0), (20, -10, 5), (-35, 25, -15)]:
        assert facegeom.euler_from_rotation(_rotation(*angles)) == pytest.approx(angles, abs=1e-9)
    assert facegeom.pose_distance((10, 0, 179), (10, 0, -179)) == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def real_mesh(scorer: Scorer) -> np.ndarray:
    if not SOURCE.is_file():
        pytest.skip(f"real face media not found in {MEDIA}")
    frame = Frame(_frames(SOURCE, 1)[0])
    scorer.score(frame, References(pose=frame))
    assert frame.mesh is not None
    return frame.mesh.astype(np.float64)


def test_rotating_a_real_mesh_changes_pose_by_that_rotation_only(real_mesh: np.ndarray) -> None:
    base = np.array(facegeom.head_pose(real_mesh))
    assert np.all(np.abs(base) < 25), "a frontal talking head is near (0, 0, 0)"
    centre = real_mesh.mean(axis=0)
    for delta in [(15, 0, 0), (0, 12, 0), (0, 0, 20)]:
        turned = (real_mesh - centre) @ _rotation(*delta).T + centre
        got = np.array(facegeom.head_pose(turned)) - base
        assert got == pytest.approx(delta, abs=1.0)
        # The expression descriptor is pose-normalised: a turned head keeps its expression.
        assert (
            facegeom.expression_distance(
                facegeom.expression_descriptor(turned), facegeom.expression_descriptor(real_mesh)
            )
            < 1e-6
        )


# --- scoring on real faces -------------------------------------------------------------


@needs_media
def test_rotated_head_gives_ordered_apd(scorer: Scorer) -> None:
    """A real frame rotated in the image plane by known angles: APD grows with the angle and
    the roll difference matches it; AED (expression) barely moves."""
    rgb = _frames(SOURCE, 1)[0]
    ref = Frame(rgb)
    apds = []
    for angle in (4.0, 12.0, 24.0):
        warp = cv2.getRotationMatrix2D((128.0, 140.0), angle, 1.0)
        turned = Frame(cv2.warpAffine(rgb, warp, (256, 256), borderMode=cv2.BORDER_REFLECT))
        row = scorer.score(turned, References(expression=ref, pose=ref))
        assert row["no_face"] == ""
        # cv2 turns counter-clockwise on screen for positive angles: roll goes negative.
        assert ref.pose[2] - row["roll"] == pytest.approx(angle, abs=1.5)  # type: ignore[index]
        assert row["aed"] < 0.02
        apds.append(row["apd"])
    assert apds == sorted(apds) and apds[0] < 3 < apds[-1]


@needs_media
@needs_dlib
def test_csim_separates_people(scorer: Scorer) -> None:
    one = _frames(SOURCE, 2, step=100)
    other = _frames(DRIVER, 1)[0]
    same = scorer.score(Frame(one[0]), References(identity=Frame(one[1])))["csim"]
    different = scorer.score(Frame(one[0]), References(identity=Frame(other)))["csim"]
    portraits = scorer.score(
        Frame(cv2.imread(str(MACRON))[..., ::-1].copy()),
        References(identity=Frame(cv2.imread(str(TAYLOR))[..., ::-1].copy())),
    )["csim"]
    assert same > 0.93
    assert different < same - 0.05 and portraits < same - 0.05


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


# --- the CLI ---------------------------------------------------------------------------


@needs_media
def test_compare_identical_videos(tmp_path: Path) -> None:
    result = _cli(["compare", str(SOURCE), str(SOURCE), "--max-frames", "4", "--json", "-q",
                   "--csv", str(tmp_path / "f.csv"), "--per-frame", "--plot", str(tmp_path / "p.png")])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(out) >= {"psnr", "ssim", "lpips", "csim", "aed", "apd", "frames", "frames_without_face"}
    assert out["frames"] == 4 and out["frames_without_face"] == 0
    assert out["psnr"] == metrics.PSNR_CAP and out["psnr_capped"] is True
    assert out["ssim"] == pytest.approx(1.0)
    assert out["aed"] == pytest.approx(0.0, abs=1e-9) and out["apd"] == pytest.approx(0.0, abs=1e-9)
    assert out["lpips"] is None and "lpips" in out["unavailable"]
    if identity.unavailable_reason() is None:
        assert out["csim"] == pytest.approx(1.0, abs=1e-6)
    assert len((tmp_path / "f.csv").read_text().strip().splitlines()) == 1 + 4
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    # Another person's head as the pose reference: APD only moves.
    result = _cli(
        [
            "compare",
            str(SOURCE),
            str(SOURCE),
            "--pose-reference",
            str(DRIVER),
            "--max-frames",
            "2",
            "--no-csim",
            "--json",
            "-q",
        ]
    )
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["apd"] > 0.5 and out["aed"] == pytest.approx(0.0, abs=1e-9)


@needs_media
def test_frames_without_a_face_are_counted(tmp_path: Path) -> None:
    import imageio.v3 as iio

    faces = _frames(SOURCE, 3)
    blank = np.full_like(faces[0], 128)
    video = tmp_path / "gen.mp4"
    iio.imwrite(video, np.stack([faces[0], blank, faces[2]]), fps=25, codec="libx264", quality=9)
    result = _cli(["compare", str(video), str(SOURCE), "--json", "-q", "--per-frame", "--no-csim"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["frames"] == 3 and out["frames_without_face"] == 1
    middle = out["per_frame"][1]
    assert middle["no_face"] == "generated" and middle["aed"] is None and middle["psnr"] is not None
    assert out["aed"] is not None and out["apd"] is not None


@needs_media
def test_editing_protocol_references(tmp_path: Path) -> None:
    """With the driver itself as the 'generated' video, an expression edit matches the driver's
    expression (AED 0) but not the source's pose, and a pose edit the reverse."""
    for mode, zero, nonzero in (("expression", "aed", "apd"), ("pose", "apd", "aed")):
        result = _cli(["editing", "--mode", mode, "--source", str(MACRON), "--driver", str(DRIVER),
                       "--generated", str(DRIVER), "--max-frames", "2", "--no-csim", "--json", "-q"])  # fmt: skip
        assert result.exit_code == 0, result.output
        table = json.loads(result.stdout.strip().splitlines()[-1])["tables"][0]
        assert (table["mode"], table["setting"], table["frames"]) == (mode, "cross", 2)
        assert table[zero] == pytest.approx(0.0, abs=1e-9) and table[nonzero] > 0


@needs_media
def test_reconstruction_with_a_model_and_with_generated_videos(tmp_path: Path) -> None:
    from dpe_cli.checkpoint import save_model
    from dpe_cli.model import DPE, DPEConfig

    torch.manual_seed(0)
    weights = save_model(DPE(DPEConfig(size=64, width=0.25)).eval(), tmp_path / "tiny.safetensors")
    result = _cli(["reconstruction", str(SOURCE), "-w", str(weights), "--max-frames", "2", "--no-csim", "--json", "-q"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout.strip().splitlines()[-1])["tables"][0]
    assert (table["model"], table["frames"]) == ("tiny", 2)
    assert table["psnr"] is not None and table["ssim"] is not None
    # An untrained network draws no face: counted, not fatal.
    assert table["frames_without_face"] == 2 and table["aed"] is None
    # The clip as its own "generated" video: output frame i is compared with clip frame i.
    result = _cli(["reconstruction", str(SOURCE), "--generated", str(SOURCE), "--max-frames", "2", "--no-csim"])
    assert result.exit_code == 0, result.output
    assert "Table 3" in result.stdout and "100.00*" in result.stdout and "generated" in result.stdout
    assert "LPIPS not computed" in result.stdout


def test_cli_rejects_unpaired_sources(tmp_path: Path) -> None:
    result = _cli(["reenactment", "--source", "a.png", "--source", "b.png", "--driver", "c.mp4", "-q"])
    assert isinstance(result.exception, InputError)
    assert "--driver" in str(result.exception)


def test_requests_are_checked_before_anything_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairing, counts and modes fail at once, from Python too: no scorer, no model, no video."""
    from dpe_cli.eval import EvalOptions, ProtocolRequest, editing, reenactment, scoring

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("loaded before the request was checked")

    monkeypatch.setattr(scoring.Scorer, "__init__", refuse)
    with pytest.raises(InputError, match="2 --source but 1 --driver"):
        reenactment([Path("a.png"), Path("b.png")], [Path("c.mp4")])
    with pytest.raises(InputError, match="no clips to evaluate"):
        editing()
    with pytest.raises(InputError, match="needs a single edit mode"):
        editing([Path("c.mp4")], options=EvalOptions(generated=[Path("g.mp4")]))
    with pytest.raises(InputError, match="1 --generated for 2 clips"):
        ProtocolRequest("editing", ["pose"], [Path("c.mp4"), Path("d.mp4")], options=EvalOptions(generated=[Path("g.mp4")]))
    with pytest.raises(InputError, match="unknown edit mode 'smile'"):
        ProtocolRequest("editing", ["smile"], [Path("c.mp4")])
    with pytest.raises(InputError, match="--batch 0"):
        EvalOptions(batch=0)


@needs_media
def test_python_api_gives_what_the_cli_prints(tmp_path: Path) -> None:
    from dpe_cli.checkpoint import save_model
    from dpe_cli.eval import EvalOptions, reconstruction
    from dpe_cli.model import DPE, DPEConfig

    torch.manual_seed(0)
    weights = save_model(DPE(DPEConfig(size=64, width=0.25)).eval(), tmp_path / "tiny.safetensors")
    result = reconstruction([SOURCE], EvalOptions(weights=[weights], max_frames=2, batch=1, csim=False))
    assert result.models == ("tiny",) and [r.mode for r in result.results] == ["both"]
    cli = _cli(["reconstruction", str(SOURCE), "-w", str(weights), "--max-frames", "2", "--no-csim", "--json", "-q"])
    assert json.loads(cli.stdout.strip().splitlines()[-1]) == json.loads(json.dumps(result.to_dict()))
    result.write_csv(tmp_path / "t.csv")
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 1 + 2  # the job and the pooled table
    assert "Table 3" in result.paper_tables()[0].title
