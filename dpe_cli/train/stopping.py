"""Stopping a run: SIGINT and SIGTERM finish the current step, save, and stop, within seconds.

:func:`dpe_cli.interrupt.stop_signals_raise` (active around every command) raises at once,
which would cut a step between the generator's and the discriminator's update and leave one
rank of a ``torchrun`` job waiting for the others. Training therefore defers these two
signals to the end of the step, where the ranks agree on stopping and the state is saved. A
step that does not end within :data:`GRACE_SECONDS` (a huge batch, a slow loader) is abandoned:
:class:`StepAbandoned` is raised and the run keeps its last checkpoint. SIGHUP, and a second
Ctrl-C, still raise :class:`~dpe_cli.interrupt.Interrupted` at once.
"""

from __future__ import annotations

import signal
from types import FrameType

from dpe_cli.errors import DPEError
from dpe_cli.interrupt import Interrupted

DEFERRED = (signal.SIGINT, signal.SIGTERM)
GRACE_SECONDS = 5.0  # what a scheduler's SIGTERM-then-SIGKILL window (often 10-30 s) leaves room for


class TrainingInterrupted(DPEError):
    """SIGINT/SIGTERM: the run stopped; ``step`` is the last one saved (None: nothing saved),
    and ``--resume`` continues from it."""

    def __init__(self, step: int | None, signum: int, abandoned: bool = False) -> None:
        stop = Interrupted(signum)
        self.step, self.signum, self.exit_code = step, signum, stop.exit_code
        cut = f"the step in progress did not end within {GRACE_SECONDS:g} s and was dropped; " if abandoned else ""
        if step is None:
            super().__init__(f"{stop.name} received: {cut}stopped before the first checkpoint", "start the run again")
        else:
            super().__init__(f"{stop.name} received: {cut}saved step {step} and stopped", "continue with --resume")


class StepAbandoned(Interrupted):
    """The step in progress outlived the grace period after a stop signal."""


class StopRequests:
    """Within the block, SIGINT/SIGTERM set :attr:`received` for the loop to check after each
    step, and start a timer that raises :class:`StepAbandoned` if the step outlives
    ``grace`` seconds. A second Ctrl-C falls back to Python's default and interrupts at once."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _: FrameType | None) -> None:
        if self.received is None:
            signal.setitimer(signal.ITIMER_REAL, self.grace)
        self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def step_done(self) -> None:
        """The step ended: no need to abandon it (what follows it, saving included, is short)."""
        signal.setitimer(signal.ITIMER_REAL, 0)

    def _expired(self, *_: object) -> None:
        raise StepAbandoned(self.received or signal.SIGTERM)

    def __enter__(self) -> StopRequests:
        for signum in DEFERRED:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._expired)
        return self

    def __exit__(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
