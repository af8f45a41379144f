"""Issue 15, while writing: an output that becomes an input, links planted at temporary names,
stale partials of dead processes, and a cleanup that fails without hiding the error."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dpe_cli.errors import InputError
from dpe_cli.video import VideoWriter, probe
from dpe_cli.video import writer as writer_module
from helpers import PARTIALS


def frame(i: int = 0) -> np.ndarray:
    return np.full((48, 64, 3), i % 256, np.uint8)


def write_clip(path: Path | str, count: int = 3, **kwargs: object) -> None:
    with VideoWriter(path, width=64, height=48, fps=25, **kwargs) as w:
        for i in range(count):
            w.write(frame(i))


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_output_turned_into_an_input_during_the_run_is_refused_at_the_end(tmp_path: Path) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(b"precious")
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="is the input"):
        with VideoWriter(out, width=64, height=48, fps=25, overwrite=True, inputs=[source]) as w:
            w.write(frame())
            os.link(source, out)  # appears while the long work runs
    assert source.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "source.mp4"]


def test_planted_links_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.mp4"
    victim.write_bytes(b"victim")
    work = tmp_path / "work"
    work.mkdir()
    # Every name the old scheme (".NAME.partial-PID.ext", frames folder ".NAME.partial-PID")
    # could use, for this process and its neighbours.
    for pid in range(os.getpid() - 50, os.getpid() + 50):
        (work / f".out.partial-{pid}.mp4").symlink_to(victim)
        (work / f".frames.partial-{pid}").symlink_to(outside)
    planted = set(work.iterdir())
    with VideoWriter(work / "out.mp4", width=64, height=48, fps=25) as w:
        w.write(frame())
        private = [p for p in work.glob(PARTIALS)]
        assert len(private) == 1 and (private[0].stat().st_mode & 0o777) == 0o700
        w.write(frame(1))
    with VideoWriter(f"{work / 'frames'}/", width=64, height=48, fps=25) as w:
        w.write(frame())
    assert victim.read_bytes() == b"victim"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.mp4"]
    assert set(work.iterdir()) - planted == {work / "out.mp4", work / "frames"}
    assert probe(work / "out.mp4").frame_count == 2
    assert [p.name for p in (work / "frames").iterdir()] == ["frame_000001.png"]
    assert (work / "frames").stat().st_mode & 0o777 != 0o700  # the user's umask, not ours


def test_stale_partials_of_dead_processes_are_removed(tmp_path: Path) -> None:
    old = time.time() - writer_module.STALE_AFTER_S - 60
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gone, alive, fresh = dead_pid(), os.getpid(), dead_pid()

    def partial(pid: int, tag: str, when: float) -> Path:
        folder = tmp_path / f".dpe-partial-{pid}-{tag}"
        folder.mkdir()
        (folder / "video.mp4").write_bytes(b"half")
        for p in (folder / "video.mp4", folder):
            os.utime(p, (when, when))
        return folder

    stale = partial(gone, "abc123", old)
    running = partial(alive, "def456", old)
    recent = partial(fresh, "ghi789", time.time())
    link = tmp_path / f".dpe-partial-{gone}-lnk000"
    link.symlink_to(elsewhere)
    write_clip(tmp_path / "out.mp4")
    assert not stale.exists()
    assert running.exists() and recent.exists() and link.is_symlink() and elsewhere.is_dir()


def test_failing_cleanup_does_not_hide_the_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, *_: object, **__: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    with pytest.raises(RuntimeError, match="the real problem") as caught:
        with VideoWriter(tmp_path / "out.mp4", width=64, height=48, fps=25) as w:
            w.write(frame())
            monkeypatch.setattr(writer_module.shutil, "rmtree", refuse)
            raise RuntimeError("the real problem")
    monkeypatch.undo()
    (note,) = caught.value.__notes__
    assert "could not be removed" in note and "Read-only file system" in note
    assert not (tmp_path / "out.mp4").exists()
