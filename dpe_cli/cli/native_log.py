"""Keep native library chatter out of the terminal.

mediapipe's C++ code (absl, TensorFlow Lite) writes warnings and notices straight to file
descriptor 2 from its worker threads, whenever a graph first meets a face; no logging setting
reaches them, and they would break our one-line errors and progress bars. For the CLI, fd 2 is
routed through a pipe that drops those lines and passes everything else on; Python's own
``sys.stderr`` keeps writing to the terminal directly, so rich still sees a TTY.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+\.cc:\d+\]"  # absl INFO/WARNING lines
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\)"
    rb")"
)


def _forward(read_fd: int, write_fd: int) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if not NOISE.match(line):
                    os.write(write_fd, line + b"\n")
        if pending and not NOISE.match(pending):
            os.write(write_fd, pending)


@contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Route fd 2 through the noise filter for the duration of the block."""
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    thread = threading.Thread(target=_forward, args=(read_fd, terminal), name="stderr-filter", daemon=True)
    thread.start()
    saved_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(terminal), "wb", buffering=0), encoding=saved_stderr.encoding or "utf-8", errors="backslashreplace", line_buffering=True, write_through=True)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes the pipe's last write end: the thread drains and stops
        thread.join(timeout=2.0)
        replaced, sys.stderr = sys.stderr, saved_stderr
        replaced.close()
        os.close(terminal)
