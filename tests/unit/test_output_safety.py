"""Issue 15, checked before any work: an output is never an input, unwritable folders are
found early, and atomic files never follow a planted link."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from dpe_cli.errors import InputError
from dpe_cli.video import VideoWriter, check_output_path
from dpe_cli.video import writer as writer_module


@pytest.mark.parametrize("how", ["same", "hard link", "symlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_output_that_is_an_input_is_refused(tmp_path: Path, how: str, overwrite: bool) -> None:
    source = tmp_path / "source.mp4"
    source.write_bytes(b"precious")
    out = tmp_path / "out.mp4"
    if how == "same":
        out = source
    elif how == "hard link":
        os.link(source, out)
    else:
        out.symlink_to(source)
    for attempt in (
        lambda: check_output_path(out, overwrite, inputs=[source]),
        lambda: VideoWriter(out, width=64, height=48, fps=25, overwrite=overwrite, inputs=[source]),
    ):
        with pytest.raises(InputError) as caught:
            attempt()
        message = caught.value.one_line()
        assert "is the input" in message and "--overwrite" not in message and "\n" not in message
        assert caught.value.exit_code == 2
    assert source.read_bytes() == b"precious"


def test_frames_folder_holding_an_input_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    portrait = folder / "frame_000001.png"
    portrait.write_bytes(b"png")
    with pytest.raises(InputError, match="holds the input"):
        check_output_path(f"{folder}/", True, inputs=[portrait])


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_unwritable_folder_is_refused_early(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        for target in (folder / "out.mp4", f"{folder / 'frames'}/"):
            with pytest.raises(InputError, match="cannot write in the output folder"):
                check_output_path(target, False)
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("target", ["out.mp4", "frames/"])
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_folder_that_refuses_files_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, code: int) -> None:
    def refuse(*_: object, **__: object) -> str:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writer_module.tempfile, "mkdtemp", refuse)
    with pytest.raises(InputError) as caught:
        VideoWriter(str(tmp_path) + "/" + target, width=64, height=48, fps=25)
    message = caught.value.one_line()
    assert str(tmp_path) in message and os.strerror(code) in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_atomic_files_never_follow_a_planted_link(tmp_path: Path) -> None:
    from dpe_cli.atomic import replacing

    victim = tmp_path / "victim"
    victim.write_text("mine")
    target = tmp_path / "model.safetensors"
    for pid in range(os.getpid() - 50, os.getpid() + 50):  # the names the old scheme used
        (tmp_path / f".{target.name}.partial-{pid}").symlink_to(victim)
    with replacing(target) as tmp:
        assert not tmp.is_symlink() and tmp.stat().st_size == 0
        tmp.write_text("new")
    assert target.read_text() == "new" and victim.read_text() == "mine"
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            raise RuntimeError
    assert not tmp.exists() and target.read_text() == "new"
