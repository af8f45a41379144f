"""The one progress interface: the silent base, the terminal's bars, quiet mode, batch bars."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dpe_cli.progress import BatchReporter, Reporter, RichReporter


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=160, color_system=None), out


def _use(reporter: Reporter) -> None:
    """Everything library code does with a reporter, warnings aside."""
    with reporter:
        stage = reporter.stage("editing", None)
        stage.update(total=4)
        stage.advance(2)
        stage.describe("editing (expression)")
        stage.detail("total 0.1234")
        stage.close()
        reporter.say("data: 3 clips")
        reporter.note("model: tiny.safetensors")


def test_the_base_reporter_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = Reporter()
    _use(reporter)
    reporter.warn("something to act on")
    assert capsys.readouterr() == ("", "")


def test_quiet_shows_only_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    console, out = _terminal()
    reporter = RichReporter(console, quiet=True)
    _use(reporter)
    assert out.getvalue() == "" and capsys.readouterr() == ("", "")
    reporter.warn("something to act on")
    assert out.getvalue() == "warning: something to act on\n"


def test_bars_show_the_pass_its_unit_and_detail() -> None:
    console, out = _terminal()
    with RichReporter(console) as reporter:
        stage = reporter.stage("training", 10, completed=4, unit="step")
        stage.advance()
        stage.detail("total 0.1234")
        reporter.say("losses: rec 1")
    text = out.getvalue()
    assert "training" in text and "5/10" in text and "total 0.1234" in text and "losses: rec 1" in text
    assert "step" in text and "fps" not in text


def test_no_bar_is_drawn_before_the_first_pass() -> None:
    """A run that fails while setting up leaves nothing on the terminal (not even a blank line)."""
    console, out = _terminal()
    with pytest.raises(ValueError), RichReporter(console):
        raise ValueError("bad input")
    assert out.getvalue() == ""


def test_batch_keeps_its_own_bar_and_drops_each_jobs() -> None:
    console, _ = _terminal()
    with BatchReporter(console) as reporter:
        overall = reporter.stage("batch: jobs", 2, unit="job")
        for job in ("a", "b"):
            stage = reporter.stage(f"editing {job}", 3)
            stage.advance(3)
            stage.close()
            overall.advance()
        overall.close()
    (task,) = reporter._progress.tasks
    assert task.description == "batch: jobs" and task.completed == 2
