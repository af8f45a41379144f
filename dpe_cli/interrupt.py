"""Stop signals become one exception, so every way a run can end takes the same cleanup path.

Python's default for SIGTERM (``kill``, ``timeout``, containers, batch schedulers) and SIGHUP
(a closed terminal) is to die at once, skipping every ``finally`` and ``with`` exit: partial
files and ffmpeg children (which run in their own sessions) would be left behind. While
:func:`stop_signals_raise` is active, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`
in the main thread instead. It is a ``KeyboardInterrupt``, so code that already cleans up
after Ctrl-C does the same for the others. Later signals are ignored so that the cleanup
itself is not cut short; SIGKILL still ends a hung cleanup.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``exit_code`` is the shell's 128 + signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interruption(exc: KeyboardInterrupt) -> Interrupted:
    """The :class:`Interrupted` an interrupt stands for (a bare one is Ctrl-C's SIGINT)."""
    return exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)


def _raise(signum: int, _: FrameType | None) -> None:
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, the first stop signal raises :class:`Interrupted`; the handlers in
    place before (and signals ignored by our parent, as ``nohup`` does) are restored after."""
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(signum, _raise)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
