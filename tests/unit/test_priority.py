"""The stages beside the model yield the CPU to it: the paste-and-encode thread and the encoder
process run at the lowest priority."""

import os
import sys
import threading

import numpy as np
import pytest

from dpe_cli.edit.stream import Sink
from dpe_cli.video import VideoWriter

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have their own nice value only on Linux")


def _priorities(yielding: bool) -> tuple[list[int], list[int]]:
    seen: list[int] = []
    niceness: list[int] = []

    def handle(item: int) -> None:
        seen.append(item)
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    with Sink(handle, depth=2, name="test", yielding=yielding) as sink:
        for i in range(5):
            sink.put(i)
    return seen, niceness


@linux
def test_a_yielding_sink_handles_every_item_in_order_at_the_lowest_priority():
    seen, niceness = _priorities(yielding=True)
    assert seen == list(range(5))
    assert set(niceness) == {19}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0)  # the caller keeps its own


@linux
def test_a_plain_sink_keeps_the_process_priority():
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen, niceness = _priorities(yielding=False)
    assert seen == list(range(5))
    assert set(niceness) == {own}


def test_a_yielding_sink_still_reports_the_handler_error():
    def handle(item: int) -> None:
        raise ValueError("bad frame")

    sink = Sink(handle, depth=1, name="test", yielding=True)
    sink.put(1)
    with pytest.raises(ValueError, match="bad frame"):
        sink.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no nice values on this platform")
def test_the_encoder_process_runs_at_the_lowest_priority(tmp_path):
    with VideoWriter(tmp_path / "out.mp4", width=64, height=48, fps=25) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        assert os.getpriority(os.PRIO_PROCESS, writer._proc.pid) == 19
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert (tmp_path / "out.mp4").stat().st_size > 0
