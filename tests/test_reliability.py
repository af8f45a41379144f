"""Issue 15: nothing the user owns is lost, and every signal and bad value ends cleanly.

Outputs that are inputs, links planted at temporary names, unwritable folders, stop signals
sent to the whole process group, stale partial folders, and the CLI's one-line endings.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dpe_cli.errors import InputError
from dpe_cli.video import VideoWriter, check_output_path, probe
from dpe_cli.video import writer as writer_module

from conftest import media

PARTIALS = ".dpe-partial-*"


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


# --- 1. an output is never an input ------------------------------------------------------


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


# --- 2. the temporary is private ---------------------------------------------------------


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


# --- 4. an unwritable folder is found before the work ------------------------------------


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


# --- 3. stop signals ---------------------------------------------------------------------

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


def test_usage_errors_are_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dpe_cli", "edit-expression", "x.mp4", "--driver", "y.mp4", "--crf", "abc"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: Invalid value for '--crf'")
    assert result.stderr.rstrip().endswith("(see dpe edit-expression --help)")


# --- 5. checkpoints whose metadata lies ------------------------------------------------------


def tiny_safetensors(path: Path, config: dict, tensors: dict | None = None) -> Path:
    """A valid safetensors file (a few bytes of tensors) whose metadata declares ``config``."""
    import json

    import torch
    from safetensors.torch import save_file

    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata={"format": "dpe-cli", "format_version": "1", "config": json.dumps(config)})
    return path


# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork).
PEAK_RSS_AFTER_READ = """
import re, sys
from pathlib import Path
from dpe_cli.checkpoint import read_checkpoint
from dpe_cli.errors import CheckpointError
try:
    read_checkpoint(sys.argv[1])
except CheckpointError as exc:
    print(exc.one_line())
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) // 1024)
"""


@pytest.mark.parametrize(
    "config, message",
    [
        ({"size": 512, "style_dim": 10**9, "motion_dim": 20, "width": 1.0}, "declares a model config no DPE has"),
        ({"size": 512, "style_dim": 512, "motion_dim": 20, "width": 1e6}, "declares a model config no DPE has"),
        ({"size": 256, "style_dim": 512, "motion_dim": 10**6, "width": 1.0}, "declares a model config no DPE has"),
        ({"size": float("inf"), "style_dim": 512, "motion_dim": 20, "width": 1.0}, "no valid model config"),
        # Within the bounds, about 1 GB of weights, but the file holds one number.
        ({"size": 512, "style_dim": 1024, "motion_dim": 128, "width": 2.0}, "does not match the DPE architecture"),
    ],
)
def test_lying_checkpoint_header_fails_before_allocating(tmp_path: Path, config: dict, message: str) -> None:
    path = tiny_safetensors(tmp_path / "lying.safetensors", config)
    assert path.stat().st_size < 400
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", PEAK_RSS_AFTER_READ, str(path)], capture_output=True, text=True, check=True)
    error, peak_mib = result.stdout.splitlines()
    assert message in error and "\n" not in error
    assert int(peak_mib) < 900, f"{peak_mib} MiB peak: the declared model was built"
    assert time.monotonic() - began < 30


def test_header_shapes_that_disagree_with_the_config_are_refused(tiny_weights: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from dpe_cli.checkpoint import read_checkpoint
    from dpe_cli.errors import CheckpointError

    tensors = load_file(str(tiny_weights))
    name = next(iter(tensors))
    tensors[name] = tensors[name].flatten()[:1].clone()
    path = tiny_safetensors(tmp_path / "reshaped.safetensors", {"size": 64, "style_dim": 64, "motion_dim": 8, "width": 0.0625}, tensors)
    with pytest.raises(CheckpointError, match=f"declared size 64.*mis-shaped \\({name}"):
        read_checkpoint(path)


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_pickle_with_code_is_refused_and_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from dpe_cli.checkpoint import read_checkpoint
    from dpe_cli.errors import CheckpointError

    path = tmp_path / "evil.pt"
    torch.save({"gen": {"x": torch.zeros(1)}, "payload": _Payload()}, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(path)
    message = caught.value.one_line()
    assert "code or objects that a safe load refuses (posix.system)" in message
    assert "truncated" not in message and ".safetensors" in message
    assert not (tmp_path / "pwned").exists()


def test_damaged_zip_always_has_a_reason(tmp_path: Path) -> None:
    import torch

    from dpe_cli.checkpoint import read_checkpoint
    from dpe_cli.errors import CheckpointError

    good = tmp_path / "good.pt"
    torch.save({"gen": {"a": torch.randn(50, 50)}}, good)
    data = good.read_bytes()
    for start in range(0, len(data), 23):
        damaged = bytearray(data)
        damaged[start : start + 16] = bytes(b ^ 0xFF for b in damaged[start : start + 16])
        path = tmp_path / "damaged.pt"
        path.write_bytes(bytes(damaged))
        try:
            read_checkpoint(path)
        except CheckpointError as exc:
            message = exc.one_line()
            if message.startswith("cannot read"):
                reason = message.split(": ", 1)[1].split(" (the file")[0]
                assert sum(c.isalnum() for c in reason) >= 3, message


@pytest.mark.parametrize("text", ["", ". ", "\n:\n"])
def test_reason_is_never_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    import torch

    from dpe_cli.checkpoint import read_checkpoint
    from dpe_cli.errors import CheckpointError

    path = tmp_path / "damaged.pt"
    torch.save({"gen": {"a": torch.zeros(1)}}, path)

    def damaged(*_: object, **__: object) -> None:
        raise RuntimeError(text)

    monkeypatch.setattr(torch, "load", damaged)
    with pytest.raises(CheckpointError, match=r"cannot read .*damaged\.pt: RuntimeError while reading the data \(the file"):
        read_checkpoint(path)


# --- 8. messages -----------------------------------------------------------------------------


@pytest.mark.parametrize("error", [None, KeyboardInterrupt])
def test_progress_bar_of_a_stopped_run_is_not_complete(error: type[BaseException] | None) -> None:
    import io

    from rich.console import Console

    from dpe_cli.progress import RichReporter

    reporter = RichReporter(Console(file=io.StringIO(), width=120))
    try:
        with reporter:
            stage = reporter.stage("editing", 100)
            stage.advance(40)
            stage.close()  # what the pipeline's finally does
            if error is not None:
                raise error
    except KeyboardInterrupt:
        pass
    (task,) = reporter._progress.tasks
    assert task.finished is (error is None)
    assert task.completed == 40 and task.total == (40 if error is None else 100)


def test_opencv_error_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    from dpe_cli import cli

    def fail(*_: object) -> int:
        cv2.cvtColor(np.zeros((0, 0, 3), np.uint8), cv2.COLOR_RGB2BGR)  # raises cv2.error
        return 0

    monkeypatch.setattr(cli, "_invoke", fail)
    with pytest.raises(SystemExit) as caught:
        cli.main(["info"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: OpenCV") and "error: error" not in err


# --- 6. eval compare pairs frames by time ------------------------------------------------------


@pytest.fixture(scope="module")
def rates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 2 s of moving test pattern at 30 and 15 fps, and a 16:9 crop of it."""
    from conftest import ffmpeg

    folder = tmp_path_factory.mktemp("rates")
    clips = {name: folder / f"{name}.mp4" for name in ("30fps", "15fps", "wide")}
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30:duration=2"]
    ffmpeg(*source, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["30fps"]))
    ffmpeg("-i", str(clips["30fps"]), "-vf", "fps=15", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["15fps"]))
    ffmpeg("-i", str(clips["30fps"]), "-vf", "crop=160:90", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv444p", str(clips["wide"]))
    return clips


def compare(generated: Path, reference: Path) -> dict:
    import json

    from typer.testing import CliRunner

    from dpe_cli.cli import app

    result = CliRunner().invoke(app, ["eval", "compare", str(generated), str(reference), "--json", "-q", "--no-csim"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_compare_pairs_frames_by_timestamp(rates: dict[str, Path]) -> None:
    out = compare(rates["15fps"], rates["30fps"])
    assert out["frames"] == 30
    assert out["psnr"] > 40  # paired by index (frame i with frame i of twice the rate): 13 dB


def test_compare_refuses_a_different_aspect_ratio(rates: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="160x90 but the reference .* is 160x120: different aspect ratios"):
        compare(rates["wide"], rates["30fps"])


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
