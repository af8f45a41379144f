"""Stopping a run between steps: SIGINT and SIGTERM finish the current step, save, and stop.

:func:`dpe_cli.interrupt.stop_signals_raise` (active around every command) raises at once,
which would cut a step between the generator's and the discriminator's update and leave one
rank of a ``torchrun`` job waiting for the others. Training therefore defers these two
signals to the end of the step, where the ranks agree on stopping and the state is saved;
SIGHUP, and a second Ctrl-C, still raise :class:`~dpe_cli.interrupt.Interrupted` at once.
"""

from __future__ import annotations

import signal
from types import FrameType

from dpe_cli.errors import DPEError
from dpe_cli.interrupt import Interrupted

DEFERRED = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(DPEError):
    """SIGINT/SIGTERM: the run saved its state and stopped; ``--resume`` continues it."""

    def __init__(self, step: int, signum: int) -> None:
        stop = Interrupted(signum)
        self.step, self.signum, self.exit_code = step, signum, stop.exit_code
        super().__init__(f"{stop.name} received: saved step {step} and stopped", "continue with --resume")


class StopRequests:
    """Within the block, SIGINT/SIGTERM set :attr:`received` for the loop to check after each
    step. A second Ctrl-C falls back to Python's default and interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, _: FrameType | None) -> None:
        self.received = signum
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> StopRequests:
        for signum in DEFERRED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
