"""``dpe eval`` through its command line: compare, the editing and reconstruction protocols,
frames without a face, frames paired by time, and the Python API that prints the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from dpe_cli.cli import eval_cmd
from dpe_cli.errors import InputError
from dpe_cli.eval import identity, metrics
from helpers import MEDIA, ffmpeg, read_frames

SOURCE = MEDIA / "dpe_source_crop.mp4"  # one person
DRIVER = MEDIA / "dpe_driver_crop.mp4"  # another person
MACRON = MEDIA / "portrait_macron.png"

needs_media = pytest.mark.skipif(not SOURCE.is_file(), reason=f"real face media not found in {MEDIA}")


def _cli(args: list[str]) -> typer.testing.Result:  # type: ignore[name-defined]
    app = typer.Typer()
    eval_cmd.register(app)
    return CliRunner().invoke(app, ["eval", *args])


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

    faces = read_frames(SOURCE, 3)
    blank = np.full_like(faces[0], 128)
    video = tmp_path / "gen.mp4"
    iio.imwrite(video, np.stack([faces[0], blank, faces[2]]), fps=25, codec="libx264", quality=9)
    result = _cli(["compare", str(video), str(SOURCE), "--json", "-q", "--per-frame", "--no-csim"])
    assert isinstance(result.exception, InputError) and "only the first 3 frames would be scored" in str(result.exception)
    result = _cli(["compare", str(video), str(SOURCE), "--max-frames", "3", "--json", "-q", "--per-frame", "--no-csim"])
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
    assert "`drivers`" in str(result.exception)  # the library's words (the dpe command shows --driver)


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


# --- eval compare pairs frames by time (issue 15) ----------------------------------------


@pytest.fixture(scope="module")
def rates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 2 s of moving test pattern at 30 and 15 fps, and a 16:9 crop of it."""

    folder = tmp_path_factory.mktemp("rates")
    clips = {name: folder / f"{name}.mp4" for name in ("30fps", "15fps", "wide")}
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2"]
    ffmpeg(*source, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["30fps"]))
    ffmpeg("-i", str(clips["30fps"]), "-vf", "fps=15", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["15fps"]))
    ffmpeg("-i", str(clips["30fps"]), "-vf", "crop=160:90", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["wide"]))
    return clips


def compare(generated: Path, reference: Path) -> dict:
    import json

    from typer.testing import CliRunner

    from dpe_cli.cli import app

    result = CliRunner().invoke(app, ["eval", "compare", str(generated), str(reference), "--json", "-q", "--no-csim"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compare_pairs_frames_by_timestamp(rates: dict[str, Path]) -> None:
    out = compare(rates["15fps"], rates["30fps"])
    assert out["frames"] == 30
    assert out["psnr"] > 40  # paired by index (frame i with frame i of twice the rate): 13 dB


def test_compare_refuses_videos_of_different_lengths(rates: dict[str, Path], tmp_path: Path) -> None:
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(rates["30fps"]), "-frames:v", "12", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(short))
    with pytest.raises(InputError, match="only the first 12 frames would be scored"):
        compare(short, rates["30fps"])
    with pytest.raises(InputError, match="only the first 12 frames"):
        compare(rates["30fps"], short)


def test_compare_refuses_a_different_aspect_ratio(rates: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="160x90 but the reference .* is 160x120: different aspect ratios"):
        compare(rates["wide"], rates["30fps"])
