"""Issue 15: stop signals sent to the whole process group end a run cleanly, in one line, and
leave nothing behind (no file, no encoder)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import PARTIALS, media


SLOW_WRITER = """
import sys, time
import numpy as np
from dpe_cli.cli import app, main
from dpe_cli.video import VideoWriter

@app.command("slow-write")
def slow_write(out: str) -> None:
    with VideoWriter(out, width=64, height=48, fps=25) as w:
        for i in range(100_000):
            w.write(np.full((48, 64, 3), i % 256, np.uint8))
            if i == 0:
                print(w._proc.pid, flush=True)
            time.sleep(0.01)

main(["slow-write", sys.argv[1]])
"""


def processes_using(path: Path) -> list[int]:
    """PIDs whose command line mentions ``path`` (ffmpeg children name their files)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(int(entry.name))
    return found


def stop_group(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signal_to_the_group_leaves_nothing(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    encoder = int(proc.stdout.readline())
    code, err = stop_group(proc, signum)
    assert code == 128 + signum, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert signal.Signals(signum).name in lines[0]
    assert list(tmp_path.iterdir()) == []
    assert not Path(f"/proc/{encoder}").exists() or encoder not in processes_using(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_edit_stopped_by_a_signal_leaves_nothing(tmp_path: Path, tiny_weights: Path, signum: int) -> None:
    source, driver = tmp_path / "source.mp4", tmp_path / "driver.mp4"
    shutil.copy(media("dpe_source_crop.mp4"), source)
    shutil.copy(media("dpe_driver_crop.mp4"), driver)
    out = tmp_path / "out" / "edited.mp4"
    out.parent.mkdir()
    command = [sys.executable, "-m", "dpe_cli", "edit-expression", str(source), "--driver", str(driver), "-w", str(tiny_weights), "-o", str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(PARTIALS)):  # stop it mid-write
        assert proc.poll() is None and time.monotonic() < deadline, "the edit ended before it wrote"
        time.sleep(0.02)
    code, err = stop_group(proc, signum)
    assert code == 128 + signum, err
    assert err.strip().splitlines()[-1].startswith("interrupted") and "Traceback" not in err
    assert list(out.parent.iterdir()) == []
    assert processes_using(tmp_path) == []
