"""Every numeric option has one range, checked before work from the CLI, manifests and Python."""

from __future__ import annotations

import math

import pytest

from dpe_cli.bounds import BOUNDS, check
from dpe_cli.edit import EditRequest
from dpe_cli.edit.motion import MotionControl
from dpe_cli.errors import InputError
from dpe_cli.synth.dataset import check_counts
from dpe_cli.train.options import TrainOptions, resolve_options
from dpe_cli.video.writer import check_encoding

NOT_NUMBERS = (math.nan, math.inf, -math.inf)


@pytest.mark.parametrize("flag", sorted(BOUNDS))
def test_every_bound_refuses_nan_infinity_and_its_neighbours(flag):
    bound = BOUNDS[flag]
    for value in (*NOT_NUMBERS, bound.high + 1, bound.low - 1):
        with pytest.raises(InputError, match=f"`{flag}` = .* is out of range") as refused:
            check(flag, value)
        assert refused.value.hint.startswith("use ")
    inside = bound.low + 1 if bound.integer else (bound.low + min(bound.high, bound.low + 1)) / 2
    check(flag, inside)
    if bound.integer:
        with pytest.raises(InputError):
            check(flag, inside + 0.5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: EditRequest(p, p, "o.mp4", box_scale=1000), "`box_scale` = 1000 is out of range"),
        (lambda p: EditRequest(p, p, "o.mp4", box_scale=math.nan), "`box_scale` = nan is out of range"),
        (lambda p: EditRequest(p, p, "o.mp4", fade=math.inf), "`fade` = inf is out of range"),
        (lambda p: EditRequest(p, p, "o.mp4", crf=999), "`crf` = 999 is out of range"),
        (lambda p: EditRequest(p, p, "o.mp4", batch_size=10**9), "`batch_size` = 1000000000 is out of range"),
        (lambda p: EditRequest(p, p, "o.mp4", face_index=-1), "`face_index` = -1 is out of range"),
        (lambda p: MotionControl(strength=math.nan), "`strength` = nan is out of range"),
        (lambda p: check_counts(fps=1e-6), "`fps` = 1e-06 is out of range"),
        (lambda p: check_counts(fps=math.inf), "`fps` = inf is out of range"),
        (lambda p: check_encoding(-1), "`crf` = -1 is out of range"),
        (lambda p: resolve_options(TrainOptions(out=p / "run", data=p, batch_size=0)), "`batch_size` = 0 is out of range"),
        (lambda p: resolve_options(TrainOptions(out=p / "run", data=p, steps=10**12)), "`steps` = 1000000000000 is out of range"),
    ],
)
def test_each_command_checks_its_numbers_through_the_table(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        make(tmp_path)
    assert not (tmp_path / "run").exists()
