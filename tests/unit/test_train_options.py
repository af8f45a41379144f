"""dpe train's options: resolved and checked before anything loads, and old runs resume."""

from __future__ import annotations

import json

import pytest

from dpe_cli.errors import InputError
from dpe_cli.train.options import OPTIONS_FILE, STAGE_TRAINABLE, TrainOptions, resolve_options, settle_model_shape
from dpe_cli.train.state import checkpoint_files


def test_stage_and_objective_resolve_together_before_anything_loads(tmp_path):
    """--stage and --objective both say what trains; options resolve them into one set of
    modules. A weight whose network was not given is refused here, before any file is read."""
    clips, init = tmp_path / "clips", tmp_path / "model.safetensors"  # never read by resolution

    def resolved(**given: object) -> TrainOptions:
        return resolve_options(TrainOptions(out=tmp_path / "run", data=clips, **given))

    new = resolved()
    assert (new.stage, new.objective, new.lr, new.steps, new.size) == (1, "cycle", 0.002, 100_000, None)
    assert new.trained_modules == STAGE_TRAINABLE[1] and new.refinement is None
    assert resolved(stage=2, init=init).trained_modules == STAGE_TRAINABLE[2]
    assert resolved(stage=2, init=init).lr == 0.0008 and resolved(stage=2, init=init).refinement == "stage 2"
    assert resolved(stage=2, objective="expression", init=init).trained_modules == ("expression_generator", "motion_mlp", "expression_head")
    pose = resolved(objective="pose", init=init)
    assert pose.trained_modules == ("pose_head", "pose_generator") and pose.refinement == "the pose objective"
    assert resolved(objective="reenactment", pose_weight=1).pose_weight == 1  # ignored there, with a warning
    with pytest.raises(InputError, match="needs a head-pose network"):
        resolved(pose_weight=1)
    with pytest.raises(InputError, match="needs an expression network"):
        resolved(motion_weight=1)


def test_runs_saved_before_an_option_existed_resume_with_its_default(tmp_path):
    """An options.json that lacks a later option reads as that option's default, so a resumed old
    run keeps the problem it was trained on (and a new option needs no entry of its own)."""
    out = tmp_path / "old"
    saved = settle_model_shape(resolve_options(TrainOptions(out=out, data=tmp_path / "clips")), None).to_json()
    for later in ("pixel_pyramid", "objective", "pose_weight", "motion_weight"):
        del saved[later]
    for path in checkpoint_files(out, 5).all_paths():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    (out / OPTIONS_FILE).write_text(json.dumps(saved))
    resumed = resolve_options(TrainOptions(out=out, resume=True, objective="cycle", steps=7))
    assert (resumed.pixel_pyramid, resumed.objective, resumed.pose_weight, resumed.motion_weight) == (False, "cycle", 0.0, 0.0)
    assert (resumed.size, resumed.steps, resumed.data) == (256, 7, tmp_path / "clips")
    with pytest.raises(InputError, match="cannot change `objective` reenactment"):
        resolve_options(TrainOptions(out=out, resume=True, objective="reenactment"))


@pytest.mark.parametrize(
    "given, message",
    [
        ({"lr": float("nan")}, "`lr` = nan is out of range"),
        ({"lr": 0.0}, "`lr` = 0.0 is out of range"),
        ({"reconstruction_weight": -5.0}, "`reconstruction_weight` = -5.0 is out of range"),
        ({"gan_weight": float("inf")}, "`gan_weight` = inf is out of range"),
    ],
)
def test_numbers_out_of_range_are_refused_before_anything_loads(tmp_path, given, message):
    (tmp_path / "clips").mkdir()
    with pytest.raises(InputError, match=message):
        resolve_options(TrainOptions(out=tmp_path / "run", data=tmp_path / "clips", **given))
    assert not (tmp_path / "run").exists()


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "afile").write_text("keep")
    for out in (tmp_path / "afile", tmp_path / "afile" / "run"):
        with pytest.raises(InputError, match="is a file, not a folder"):
            resolve_options(TrainOptions(out=out, data=tmp_path))
    assert (tmp_path / "afile").read_text() == "keep"


def test_a_step_that_outlives_the_grace_after_a_stop_signal_is_abandoned():
    """Training defers SIGTERM to the end of the step, but not for longer than the grace."""
    import os
    import signal
    import time

    from dpe_cli.train.stopping import StepAbandoned, StopRequests

    with StopRequests(grace=0.2) as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        stops.step_done()  # a step that ends in time is not cut
        time.sleep(0.4)
        assert stops.received == signal.SIGTERM
    started = time.monotonic()
    with pytest.raises(StepAbandoned) as cut, StopRequests(grace=0.2):
        os.kill(os.getpid(), signal.SIGTERM)
        while time.monotonic() - started < 10:  # a long step of Python work
            sum(range(1000))
    assert cut.value.exit_code == 143 and time.monotonic() - started < 5
