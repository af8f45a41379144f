"""The lowest CPU priority for the stages that run beside the model.

Where the model's threads fill the cores, a stage beside them at the same priority slows them
by more than its own time: they wait for one another at every layer, and a core taken from
one of them stalls the rest. At the lowest priority the stage takes the cores the model
leaves, and when its queue is full the model waits and frees them. Measured on 2 cores with
the official-size model in bf16: a paste beside the model added 33 % per frame, at the lowest
priority 26 %, as much as running it in the model's own thread (24 %). A talking portrait of
30 frames took 8.6 s instead of 9.3 s, and with the encoder at the lowest priority too 8.8 s
instead of 9.2 s in another run (medians of 3); a 720p edit of 50 frames was 2.5 % faster, and
1.9x faster beside another program that kept a core busy.
"""

from __future__ import annotations

import os
import sys
import threading

LOWEST = 19  # the largest nice value


def lower_thread() -> None:
    """The calling thread at the lowest priority (Linux, where each thread has its own nice
    value; elsewhere nothing changes)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST)
        except OSError:
            pass


def lower_process(pid: int) -> None:
    """A child process (an encoder) at the lowest priority; the threads it starts afterwards
    inherit it. Nothing changes where the platform has no nice values."""
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, pid, LOWEST)
        except OSError:
            pass
