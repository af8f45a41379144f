"""Progress reporting: the bar of a stopped run does not show it complete."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("error", [None, KeyboardInterrupt])
def test_progress_bar_of_a_stopped_run_is_not_complete(error: type[BaseException] | None) -> None:
    import io

    from rich.console import Console

    from dpe_cli.progress import RichReporter

    reporter = RichReporter(Console(file=io.StringIO(), width=120))
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
