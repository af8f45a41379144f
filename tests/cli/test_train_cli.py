"""``dpe train`` and ``dpe prepare-data`` run as commands: checkpoints, resume after Ctrl-C,
stage 2, the objectives, torchrun, bf16, and data preparation.

Everything runs a tiny model (64 px, 1/16 of the channels) on CPU with one thread per process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.cli import main
from dpe_cli.errors import InputError
from dpe_cli.model import DPEConfig
from dpe_cli.train.data import find_clips
from dpe_cli.train.expression import ExpressionRegressor, save_expression_regressor
from dpe_cli.train.options import TrainOptions, resolve_options
from dpe_cli.train.state import latest_checkpoint, load_training_state
from helpers import ROOT, media, tensors_equal

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = ["--size", "64", "--width", "0.0625", "--style-dim", "32", "--motion-dim", "4"]


QUICK = ["--batch-size", "2", "--workers", "0", "--device", "cpu", "--max-frames", "12", "--log-every", "1", "-q"]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def dpe(*args: str) -> int:
    """Run the dpe command in this process; its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    return exit_info.value.code or 0


def train_args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--cache", str(cache), *TINY, *QUICK, *extra]


# -- the command: checkpoints, resume, stage 2, torchrun ----------------------------------------


def test_train_writes_a_checkpoint_that_loads(training_data, training_cache, tmp_path, capfd):
    out = tmp_path / "run"
    args = train_args(training_data, out, training_cache, "--steps", "3", "--save-every", "2", "--sample-every", "2")
    assert dpe(*[a for a in args if a != "-q"]) == 0  # not quiet: the result line is printed
    captured = capfd.readouterr()
    assert "skipping" in captured.err  # the broken video, loudly
    assert captured.out.startswith("done: step 3, model ") and "done:" not in captured.err  # the result on stdout
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss_total"]) for r in rows)
    assert {p.name for p in (out / "checkpoints").iterdir()} == {
        f"step-00000{n}{suffix}" for n in (2, 3) for suffix in (".safetensors", ".discriminator.safetensors", ".state.pt")
    }
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000002.png", "step-000003.png"]
    assert load_training_state(out / "checkpoints" / "step-000003.state.pt")["step"] == 3
    model, info = read_checkpoint(out / "model.safetensors")  # what dpe edit-* --weights reads
    assert info.config == DPEConfig(size=64, style_dim=32, motion_dim=4, width=0.0625)
    assert info.metadata["step"] == "3"
    # A run from scratch starts every generator with identity warps and no RGB (three Adam
    # steps of lr 0.002 move a zero weight by at most 0.006; StyleGAN's start is N(0, 1)).
    for generator in (model.expression_generator, model.pose_generator):
        for level in generator.levels:
            assert level.to_flow.conv.weight.abs().max() < 0.01 and level.to_rgb.conv.weight.abs().max() < 0.01
    with torch.no_grad():
        assert model.edit(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(InputError, match="already holds a training run"):
        resolve_options(TrainOptions(out=out, data=training_data))
    with pytest.raises(InputError, match="cannot change `size`"):
        resolve_options(TrainOptions(out=out, resume=True, size=128))


def test_resume_after_sigint_matches_an_uninterrupted_run(training_data, training_cache, tmp_path):
    steps = ["--steps", "8", "--save-every", "100"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert dpe(*train_args(training_data, whole, training_cache, *steps)) == 0
    command = [sys.executable, "-m", "dpe_cli", *train_args(training_data, parts, training_cache, *steps)]
    proc = subprocess.Popen(command, env=ONE_THREAD, stderr=subprocess.PIPE, text=True)
    metrics = parts / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().strip()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped = latest_checkpoint(parts)
    assert stopped is not None and 1 <= stopped.step < 8, err
    assert dpe("train", "--out", str(parts), "--resume", "-q") == 0
    for name in ("model.safetensors", "checkpoints/step-000008.discriminator.safetensors"):
        assert tensors_equal(load_file(whole / name), load_file(parts / name)), name
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (whole, parts)]
    assert [r["step"] for r in rows[1]] == list(range(1, 9))
    assert [r["loss_total"] for r in rows[0]] == [r["loss_total"] for r in rows[1]]


def test_stage_two_changes_only_the_expression_generator_and_motion_mlps(training_data, training_cache, tiny_weights, tmp_path):
    out = tmp_path / "stage2"
    args = ["train", "--data", str(training_data), "--cache", str(training_cache), *QUICK, "--stage", "2", "--init", str(tiny_weights)]
    assert dpe(*args, "--out", str(out), "--steps", "2") == 0
    before, after = load_file(tiny_weights), load_file(out / "model.safetensors")
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"expression_generator", "motion_mlp", "expression_head", "pose_head"}
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["lr"] == 0.0008
    assert dpe(*args, "--out", str(tmp_path / "other"), "--size", "128") == 2  # the file is 64 px
    with pytest.raises(InputError, match="stage 2 refines a trained model"):
        resolve_options(TrainOptions(out=tmp_path / "new", data=training_data, stage=2))


def test_reenactment_objective_trains_the_motion_path_and_feeds_a_cyclic_run(training_data, training_cache, tmp_path):
    """LIA's objective (the start the paper assumes): only the encoder, the motion path and the
    pose generator learn; its model then starts a cyclic run as a full generator."""
    warm = tmp_path / "warm"
    assert dpe(*train_args(training_data, warm, training_cache, "--objective", "reenactment", "--pixel-pyramid", "--perceptual-weight", "1", "--steps", "2")) == 0
    rows = [json.loads(line) for line in (warm / "metrics.jsonl").read_text().splitlines()]
    terms = {k for k in rows[-1] if k.startswith("loss_")}
    assert terms == {"loss_total", "loss_reconstruction", "loss_perceptual", "loss_adversarial", "loss_discriminator"}
    assert json.loads((warm / "options.json").read_text())["objective"] == "reenactment"
    model, _ = read_checkpoint(warm / "model.safetensors")
    for level in model.expression_generator.levels:  # untouched: still the identity-warp start
        assert level.to_flow.conv.weight.abs().max() == 0
    assert any(level.to_flow.conv.weight.abs().max() > 0 for level in model.pose_generator.levels)
    cycle = tmp_path / "cycle"
    assert dpe("train", "--data", str(training_data), "--out", str(cycle), "--cache", str(training_cache), *QUICK, "--init", str(warm / "model.safetensors"), "--steps", "1") == 0
    before, after = load_file(warm / "model.safetensors"), load_file(cycle / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("expression_generator."))
    with pytest.raises(InputError, match="needs a head-pose network"):
        main_run = ["--init", str(warm / "model.safetensors"), "--steps", "1", "--pose-weight", "1", "--debug"]
        main(["train", "--data", str(training_data), "--out", str(tmp_path / "posed"), "--cache", str(training_cache), *QUICK, *main_run])
    with pytest.raises(InputError, match="unknown objective"):
        resolve_options(TrainOptions(out=tmp_path / "x", data=training_data, objective="lia"))
    with pytest.raises(InputError, match="cannot change `objective`"):
        resolve_options(TrainOptions(out=warm, resume=True, objective="cycle"))


def test_motion_weight_runs_in_both_objectives_and_needs_an_expression_network(training_data, training_cache, tmp_path):
    regressor = save_expression_regressor(ExpressionRegressor(dims=4, width=8, input_size=64).eval(), tmp_path / "expression.safetensors")
    for objective in ("reenactment", "cycle"):
        out = tmp_path / objective
        extra = ("--objective", objective, "--expression-weights", str(regressor), "--motion-weight", "2", "--steps", "1")
        assert dpe(*train_args(training_data, out, training_cache, *extra)) == 0
        row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert row["loss_motion"] > 0
        assert json.loads((out / "options.json").read_text())["motion_weight"] == 2
    with pytest.raises(InputError, match="cannot change `motion_weight`"):
        resolve_options(TrainOptions(out=tmp_path / "cycle", resume=True, motion_weight=1))
    with pytest.raises(InputError, match="needs an expression network"):
        main(train_args(training_data, tmp_path / "bare", training_cache, "--motion-weight", "1", "--debug"))


def test_single_edit_objectives_train_their_own_path(training_data, training_cache, tmp_path):
    """``--objective expression`` trains what the expression edit uses (the shared encoder and
    motion path too); ``--objective pose`` then refits only the pose head and generator, so the
    expression edit stays exactly as it was. Both need a trained model."""
    start = tmp_path / "start"
    assert dpe(*train_args(training_data, start, training_cache, "--steps", "1")) == 0
    expression = save_expression_regressor(ExpressionRegressor(dims=4, width=8, input_size=64).eval(), tmp_path / "expression.safetensors")
    pose = save_expression_regressor(ExpressionRegressor(dims=3, width=8, input_size=64).eval(), tmp_path / "pose.safetensors")
    readers = ("--expression-weights", str(expression), "--pose-weights", str(pose), "--pose-weight", "3", "--pixel-pyramid", "--sample-every", "2")
    base = ["train", "--data", str(training_data), "--cache", str(training_cache), *QUICK, *readers]
    trained = {
        "expression": {"encoder", "motion_mlp", "directions", "expression_head", "expression_generator"},
        "pose": {"pose_head", "pose_generator"},
    }
    previous = start
    for mode, modules in trained.items():
        out = tmp_path / mode
        assert dpe(*base, "--out", str(out), "--objective", mode, "--init", str(previous / "model.safetensors"), "--steps", "2") == 0
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        terms = {k for k in rows[-1] if k.startswith("loss_")}
        assert terms == {"loss_total", "loss_self_reconstruction", "loss_expression", "loss_pose", "loss_adversarial", "loss_discriminator"}
        before, after = load_file(previous / "model.safetensors"), load_file(out / "model.safetensors")
        assert {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])} == modules, mode
        assert cv2.imread(str(out / "samples" / "step-000002.png")).shape[1] == 3 * 64  # S, D, the edit
        previous = out
    with pytest.raises(InputError, match="pose objective refines a trained model"):
        main([*base, "--out", str(tmp_path / "bare"), "--objective", "pose", "--debug"])
    with pytest.raises(InputError, match="does not apply to `objective` expression"):
        main([*base, "--out", str(tmp_path / "moving"), "--objective", "expression", "--init", str(start / "model.safetensors"), "--motion-weight", "1", "--debug"])
    with pytest.raises(InputError, match="stage 2 refines the expression generator"):
        resolve_options(TrainOptions(out=tmp_path / "s2", data=training_data, stage=2, objective="pose", init=start / "model.safetensors"))


def test_torchrun_two_processes_on_gloo(training_data, training_cache, tmp_path):
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "dpe_cli", *train_args(training_data, out, training_cache, "--steps", "2", "--batch-size", "4"),
    ]  # fmt: skip
    done = subprocess.run(command, env=ONE_THREAD, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]  # rank 0 alone writes
    assert load_training_state(out / "checkpoints" / "step-000002.state.pt")["world_size"] == 2
    read_checkpoint(out / "model.safetensors")


def test_bf16_training_steps_stay_finite_and_save_float32(training_data, training_cache, tmp_path):
    """--precision bf16 (autocast on the CPU here) trains, and the saved model is float32."""
    out = tmp_path / "bf16"
    assert dpe(*train_args(training_data, out, training_cache, "--steps", "2", "--precision", "bf16")) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss_total"]) for r in rows)
    model, _ = read_checkpoint(out / "model.safetensors")
    assert all(p.dtype == torch.float32 for p in model.parameters())


# -- prepare-data ----------------------------------------------------------------------------


def test_prepare_data_crops_faces_and_skips_broken_videos(tmp_path, capfd):
    from dpe_cli.video import probe

    raw = tmp_path / "raw"
    (raw / "speaker").mkdir(parents=True)
    shutil.copy(media("talk_full_590.mp4"), raw / "speaker" / "talk.mp4")
    (raw / "bad.mkv").write_bytes(os.urandom(2048))
    out = tmp_path / "crops"
    assert dpe("prepare-data", str(raw), str(out), "--size", "64", "--detect-every", "25") == 0
    captured = capfd.readouterr()
    assert "skipping" in captured.err and captured.out.startswith("done: 1 cropped")  # the result on stdout
    info = probe(out / "speaker" / "talk.mp4")
    assert (info.width, info.height) == (64, 64) and info.frame_count == probe(raw / "speaker" / "talk.mp4").frame_count
    assert [c.identity for c in find_clips(out)] == ["speaker"]


def test_prepare_data_fails_when_every_video_failed(tmp_path, capfd):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("a.mp4", "b.mkv"):
        (raw / name).write_bytes(os.urandom(2048))
    assert dpe("prepare-data", str(raw), str(tmp_path / "crops")) == 2
    err = capfd.readouterr().err.splitlines()
    assert sum("skipping" in line for line in err) == 2
    assert err[-1].startswith("error: nothing was prepared: all 2 videos under") and "done:" not in "".join(err)


# -- refusals and stops: nothing unbounded, nothing half-made left behind -------------------------


def test_a_batch_that_cannot_fit_is_refused_before_any_work(training_data, tmp_path, capfd):
    out = tmp_path / "run"
    assert dpe("train", "--data", training_data, "--out", out, *TINY, *QUICK, "--batch-size", "500000") == 2  # the last --batch-size counts
    err = capfd.readouterr().err
    assert "--batch-size 500000 needs at least" in err and "GiB is free" in err and "Traceback" not in err
    assert not out.exists()


def test_a_stop_before_the_first_checkpoint_removes_what_the_run_created(training_data, tmp_path):
    """SIGTERM while the run caches frames or takes its first steps: exit 143 within seconds,
    and OUT (with its default frame cache) is gone, so no half-made run is left to resume."""
    out = tmp_path / "run"
    keep = tmp_path / "keep"
    keep.mkdir()
    command = [sys.executable, "-m", "dpe_cli", "train", "--data", str(training_data), "--out", str(out), *TINY, *QUICK, "--steps", "100000", "--save-every", "100000"]
    proc = subprocess.Popen(command, env=ONE_THREAD, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "cache").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert keep.is_dir()
