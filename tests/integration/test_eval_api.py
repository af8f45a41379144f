"""Evaluation from Python: ``score_video`` is ``dpe eval compare``, and model calls go through
the engine (the same pixels as a direct call)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
SOURCE, DRIVER = MEDIA / "dpe_source_crop.mp4", MEDIA / "dpe_driver_crop.mp4"
needs_media = pytest.mark.skipif(not (SOURCE.is_file() and DRIVER.is_file()), reason=f"shared media not found in {MEDIA}")


def _dpe_eval(*args: str) -> str:
    """``dpe eval ARGS``' stdout."""
    from dpe_cli.cli import eval_cmd

    app = typer.Typer()
    eval_cmd.register(app)
    result = CliRunner().invoke(app, ["eval", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@needs_media
def test_score_video_gives_what_the_cli_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dpe_cli.eval import score_video
    from dpe_cli.eval.report import fmt

    result = score_video(DRIVER, SOURCE, pose_reference=DRIVER, max_frames=3, csim=False)
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    result.write_csv(tmp_path / "python.csv", per_frame=True)
    args = [str(DRIVER), str(SOURCE), "--pose-reference", str(DRIVER), "--max-frames", "3", "--no-csim"]
    printed = json.loads(_dpe_eval("compare", *args, "--json", "--per-frame", "--csv", str(tmp_path / "cli.csv")))
    assert printed == json.loads(json.dumps(result.to_dict(per_frame=True)))
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "python.csv").read_bytes()
    summary = result.summary
    assert summary["frames"] == 3 and summary["psnr"] is not None and summary["apd"] == pytest.approx(0.0, abs=1e-9)
    assert result.against()["apd"] == DRIVER.name and result.against()["psnr"] == SOURCE.name
    table = _dpe_eval("compare", *args)
    for metric in ("psnr", "ssim", "aed", "apd"):
        assert fmt(metric, summary[metric], summary["psnr_capped"]) in table


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dpe_cli.checkpoint import save_model
    from dpe_cli.model import DPE, DPEConfig

    torch.manual_seed(0)
    return save_model(DPE(DPEConfig(size=64, style_dim=64, motion_dim=8, width=0.0625)), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def _direct(weights: Path, source: np.ndarray, drivers: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """How evaluation called the model before the engine: the network itself, default layout."""
    from dpe_cli.checkpoint import load_model
    from dpe_cli.images import from_model, to_model

    model = load_model(weights)
    with torch.inference_mode():
        return from_model(model.edit(to_model([source], channels_last=False), to_model(drivers, channels_last=False), mode=mode))


@pytest.mark.parametrize("mode", ["expression", "pose", "both"])
def test_engine_edit_equals_the_direct_model_call(weights: Path, mode: str) -> None:
    from dpe_cli.engine import Engine

    rng = np.random.default_rng(1)
    source, *drivers = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(5))
    got = Engine.load(weights, "cpu", "fp32", channels_last=False).edit(source, drivers, mode)
    want = _direct(weights, source, drivers, mode)
    assert len(got) == len(want) == 4
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


@needs_media
def test_protocol_scores_the_direct_model_calls_pixels(weights: Path) -> None:
    """A protocol run scores exactly the pictures the direct call makes (channels-last, which
    moves a few pixels by one grey level, would change PSNR and SSIM)."""
    from dpe_cli.eval import EvalOptions, reconstruction
    from dpe_cli.eval.protocols import Job, references, select
    from dpe_cli.eval.scoring import Frame, Scorer

    result = reconstruction([SOURCE], EvalOptions(weights=[weights], max_frames=8, batch=4, csim=False))
    source, chosen = select(Job(driver=SOURCE), (64, 64), 8)
    drivers = [d for _, d, _ in chosen]
    outputs = _direct(weights, source, drivers[:4], "both") + _direct(weights, source, drivers[4:], "both")  # batches of 4, as asked
    with Scorer(use_identity=False) as scorer:
        want = [
            {"frame": i, **scorer.score(Frame(out), references("same", "both", Frame(source), Frame(drv)))}
            for (i, drv, _), out in zip(chosen, outputs)
        ]
    got = result.results[0].rows
    assert [(r["frame"], r["psnr"], r["ssim"]) for r in got] == [(r["frame"], r["psnr"], r["ssim"]) for r in want]
