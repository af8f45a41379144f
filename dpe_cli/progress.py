"""Progress for long work, in one small interface that every library function reports through.

Library code takes a :class:`Reporter` and never prints: it asks for a :class:`Stage` per pass
over its work (frames, steps, jobs), and hands the reporter lines for the user (``say``,
``note``, ``warn``). The base class reports nothing: the library's default, also right for
scripts. :class:`RichReporter` is the terminal's: bars on stderr (stdout stays for ``--json``)
and the lines above them; ``quiet`` keeps only the warnings. :class:`BatchReporter` is
``dpe batch``'s variant, which does not pile up a bar per job.
"""

from __future__ import annotations

import threading
import time
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

from dpe_cli.errors import single_line


class Stage:
    """One pass over counted work; ``advance`` may be called from any thread."""

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done."""

    def update(self, *, completed: int | None = None, total: int | None = None) -> None:
        """Set the count or the total: for a total learnt after the pass began, or a count
        kept by the work itself."""

    def describe(self, description: str) -> None:
        """Change what the pass says it is doing (e.g. a running count)."""

    def detail(self, text: str) -> None:
        """A short status shown after the count (e.g. training's latest losses)."""

    def close(self) -> None:
        """The pass is over."""


class Reporter:
    """Hands out a :class:`Stage` per pass and takes lines for the user. This base class
    reports nothing."""

    def stage(self, description: str, total: int | None, *, completed: int = 0, unit: str = "frame") -> Stage:
        """A pass of ``total`` units (None: not known yet), ``completed`` of them already done
        (a resumed run); ``unit`` names what is counted, for the rate."""
        return Stage()

    def say(self, message: str) -> None:
        """A line that describes the run (e.g. what training is about to do)."""

    def note(self, message: str) -> None:
        """A one-line remark (e.g. which model runs, a fallback that was taken)."""

    def warn(self, message: str) -> None:
        """Something the user should act on; shown even when quiet."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None


class _Rate(ProgressColumn):
    """Units per second (frames as fps), or seconds per unit when slower than one."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "frame")
        per_second = "fps" if unit == "frame" else f"{unit}s/s"
        speed = task.finished_speed or task.speed
        if not speed:
            text = f"-- {per_second}"
        elif speed >= 1:
            text = f"{speed:.1f} {per_second}"
        else:
            text = f"{1 / speed:.1f} s/{unit}"
        return Text(text, style="progress.data.speed")


class _RichStage(Stage):
    def __init__(self, progress: Progress, task_id: int, shortened: dict[int, float]) -> None:
        self._progress, self._task, self._shortened = progress, task_id, shortened

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def update(self, *, completed: int | None = None, total: int | None = None) -> None:
        self._progress.update(self._task, completed=completed, total=total)

    def describe(self, description: str) -> None:
        self._progress.update(self._task, description=description)

    def detail(self, text: str) -> None:
        self._progress.update(self._task, detail=text)

    def close(self) -> None:
        """A pass that ends early (the frame count was an estimate) shows as complete; the
        estimate is kept in case the run failed, whose bar must not read 100 %."""
        task = self._progress.tasks[self._task]
        if task.total is not None and task.completed < task.total:
            self._shortened[self._task] = task.total
            self._progress.update(self._task, total=task.completed)


class _PlainStage(Stage):
    """A pass off a terminal (a pipe, a log file): no bar, one line when it ends, e.g.
    ``editing (expression): 60 frames in 43.5 s`` (``shown`` False: none at all)."""

    def __init__(self, console: Console, description: str, total: int | None, completed: int, unit: str, *, shown: bool = True) -> None:
        self._console, self._description, self._unit, self._shown = console, description, unit, shown
        self._done, self._total = completed, total
        self._began = time.perf_counter()
        self._lock = threading.Lock()
        self._closed = False

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n

    def update(self, *, completed: int | None = None, total: int | None = None) -> None:
        with self._lock:
            self._done = self._done if completed is None else completed
            self._total = self._total if total is None else total

    def describe(self, description: str) -> None:
        self._description = description

    def close(self) -> None:
        if self._closed or not self._shown:
            return
        self._closed = True
        units = self._unit if self._done == 1 else f"{self._unit}s"
        line = f"{self._description}: {self._done} {units} in {time.perf_counter() - self._began:.1f} s"
        self._console.print(Text(single_line(line)), soft_wrap=True)


class RichReporter(Reporter):
    """Progress bars on stderr (units done, rate, time left; one line per pass) and the lines
    above them. The bars appear with the first pass, so a run that fails while setting up
    draws none; ``transient`` bars vanish when done (for output printed after them);
    ``quiet`` shows only warnings. Off a terminal there are no bars: one line per finished
    pass. Every note and warning is one line, whatever its length."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False, transient: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
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
            TextColumn("{task.fields[detail]}"),
            console=self.console,
            transient=transient,
        )
        self._shortened: dict[int, float] = {}
        self._open = False  # inside ``with``: the bars may be shown

    def stage(self, description: str, total: int | None, *, completed: int = 0, unit: str = "frame") -> Stage:
        if self.quiet:
            return Stage()
        if not self.console.is_terminal:
            return _PlainStage(self.console, description, total, completed, unit)
        if self._open and not self._progress.live.is_started:
            self._progress.start()
        task = self._progress.add_task(description, total=total, completed=completed, unit=unit, detail="")
        return _RichStage(self._progress, task, self._shortened)

    def _line(self, label: str, style: str, message: str) -> None:
        text = Text.assemble((label, style), " ", single_line(message)) if label else Text(single_line(message))
        self.console.print(text, soft_wrap=True, highlight=False)

    def say(self, message: str) -> None:
        if not self.quiet:
            self._line("", "", message)

    def note(self, message: str) -> None:
        if not self.quiet:
            self._line("note:", "yellow", message)

    def warn(self, message: str) -> None:
        self._line("warning:", "bold yellow", message)

    def __enter__(self) -> RichReporter:
        self._open = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._open = False
        if exc_type is not None:  # interrupted or failed: the bars stay where the work stopped
            for task_id, total in self._shortened.items():
                self._progress.update(task_id, total=total)
        if self._progress.live.is_started:
            self._progress.stop()


class BatchReporter(RichReporter):
    """A batch's bars: the first stage (the whole batch) stays, each job's passes disappear
    when they end, so a thousand jobs do not leave three thousand bars behind."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        super().__init__(console, quiet=quiet)
        self._overall_shown = False

    def stage(self, description: str, total: int | None, *, completed: int = 0, unit: str = "frame") -> Stage:
        if not self.quiet and not self.console.is_terminal:  # a log: the batch's line, none per job
            shown, self._overall_shown = not self._overall_shown, True
            return _PlainStage(self.console, description, total, completed, unit, shown=shown)
        stage = super().stage(description, total, completed=completed, unit=unit)
        if not isinstance(stage, _RichStage) or not self._overall_shown:  # quiet, or the batch's own bar
            self._overall_shown = True
            return stage
        return _PassingStage(stage, self._progress)


class _PassingStage(Stage):
    def __init__(self, stage: _RichStage, progress: Progress) -> None:
        self._stage, self._progress = stage, progress

    def advance(self, n: int = 1) -> None:
        self._stage.advance(n)

    def update(self, *, completed: int | None = None, total: int | None = None) -> None:
        self._stage.update(completed=completed, total=total)

    def describe(self, description: str) -> None:
        self._stage.describe(description)

    def detail(self, text: str) -> None:
        self._stage.detail(text)

    def close(self) -> None:
        self._progress.remove_task(self._stage._task)
