"""Progress reporting: the bar of a stopped run does not show it complete; off a terminal, no
bars and one unwrapped line per finished pass, note and warning."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("error", [None, KeyboardInterrupt])
def test_progress_bar_of_a_stopped_run_is_not_complete(error: type[BaseException] | None) -> None:
    import io

    from rich.console import Console

    from dpe_cli.progress import RichReporter

    reporter = RichReporter(Console(file=io.StringIO(), width=120, force_terminal=True))
    try:
        with reporter:
            stage = reporter.stage("editing", 100)
            stage.advance(40)
            stage.close()  # what the pipeline's finally does
            if error is not None:
                raise error
    except KeyboardInterrupt:
        pass
    (task,) = reporter._progress.tasks
    assert task.finished is (error is None)
    assert task.completed == 40 and task.total == (40 if error is None else 100)


def test_off_a_terminal_a_pass_is_one_line_and_notes_are_not_wrapped() -> None:
    import io

    from rich.console import Console

    from dpe_cli.cli.common import console
    from dpe_cli.progress import BatchReporter, RichReporter

    log = io.StringIO()
    out = Console(file=log, soft_wrap=True, width=80)
    long_path = "/data/" + "very-long-folder-name/" * 8 + "clip[1].mp4"
    with RichReporter(out) as reporter:
        stage = reporter.stage("editing (expression)", 60)
        stage.advance(60)
        stage.close()
        reporter.note(f"the source {long_path} had 3 decode error(s):\nffmpeg concealed them")
        reporter.warn("x" * 300)
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and "\x1b" not in log.getvalue()  # no bar, no colour
    assert lines[0].startswith("editing (expression): 60 frames in ") and lines[0].endswith(" s")
    assert long_path in lines[1] and lines[1].startswith("note: ")  # brackets kept: no markup
    assert lines[2] == "warning: " + "x" * 300

    log = io.StringIO()
    with BatchReporter(Console(file=log, soft_wrap=True)) as reporter:
        overall = reporter.stage("batch", 2, unit="job")
        for _ in range(2):
            job = reporter.stage("editing", 5)
            job.advance(5)
            job.close()
            overall.advance()
        overall.close()
    assert log.getvalue().splitlines() == [log.getvalue().splitlines()[0]] and log.getvalue().startswith("batch: 2 jobs in ")
    assert console(to_stderr=True).width > 10_000  # pytest's stderr is no terminal: unlimited width
