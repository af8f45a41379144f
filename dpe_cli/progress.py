"""Progress reporting for long work: silent in the library, rich bars on stderr in the CLI."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class Stage:
    """One pass over frames; ``advance`` may be called from any thread."""

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more frames done."""

    def describe(self, description: str) -> None:
        """Change what the pass says it is doing (e.g. a running count)."""

    def close(self) -> None:
        """The pass is over."""


class Reporter:
    """Hands out a :class:`Stage` per pass. This base class reports nothing."""

    def stage(self, description: str, total: int | None) -> Stage:
        return Stage()

    def note(self, message: str) -> None:
        """A one-line remark for the user (e.g. a fallback that was taken)."""

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


class _Rate(ProgressColumn):
    """Frames per second (or seconds per frame when slower than one)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed:
            return Text("-- fps", style="progress.data.speed")
        if speed >= 1:
            return Text(f"{speed:.1f} fps", style="progress.data.speed")
        return Text(f"{1 / speed:.1f} s/frame", style="progress.data.speed")


class _RichStage(Stage):
    def __init__(self, progress: Progress, task_id: int, shortened: dict[int, float]) -> None:
        self._progress, self._task, self._shortened = progress, task_id, shortened

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def describe(self, description: str) -> None:
        self._progress.update(self._task, description=description)

    def close(self) -> None:
        """A pass that ends early (the frame count was an estimate) shows as complete; the
        estimate is kept in case the run failed, whose bar must not read 100 %."""
        task = self._progress.tasks[self._task]
        if task.total is not None and task.completed < task.total:
            self._shortened[self._task] = task.total
            self._progress.update(self._task, total=task.completed)


class RichReporter(Reporter):
    """Progress bars on stderr: frames done, rate and time left, one line per pass."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            _Rate(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._shortened: dict[int, float] = {}

    def stage(self, description: str, total: int | None) -> Stage:
        return _RichStage(self._progress, self._progress.add_task(description, total=total), self._shortened)

    def note(self, message: str) -> None:
        self._progress.console.print(f"[yellow]note:[/] {message}", highlight=False)

    def __enter__(self) -> "RichReporter":
        self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:  # interrupted or failed: the bars stay where the work stopped
            for task_id, total in self._shortened.items():
                self._progress.update(task_id, total=total)
        self._progress.stop()


class BatchReporter(RichReporter):
    """A batch's bars: the first stage (the whole batch) stays, each job's passes disappear
    when they end, so a thousand jobs do not leave three thousand bars behind."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__(console)
        self._overall: int | None = None

    def stage(self, description: str, total: int | None) -> Stage:
        stage = super().stage(description, total)
        assert isinstance(stage, _RichStage)
        if self._overall is None:
            self._overall = stage._task
            return stage
        return _PassingStage(stage, self._progress)


class _PassingStage(Stage):
    def __init__(self, stage: _RichStage, progress: Progress) -> None:
        self._stage, self._progress = stage, progress

    def advance(self, n: int = 1) -> None:
        self._stage.advance(n)

    def close(self) -> None:
        self._progress.remove_task(self._stage._task)
