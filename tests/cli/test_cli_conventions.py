"""Command-line conventions: --version, choices in --help and in completion, one-line usage
errors, and a --help that loads neither torch, OpenCV nor mediapipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dpe_cli import __version__, version
from dpe_cli.choices import AUDIO_CHOICES, CROP_CHOICES, DRIVER_END_CHOICES, MODES, PASTE_METHODS, REFERENCES, RUN_PRECISIONS
from dpe_cli.cli.common import parse_device
from helpers import run_dpe


HEAVY = ("torch", "cv2", "mediapipe")


def test_version_comes_from_the_package() -> None:
    result = run_dpe("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"dpe {version()}"
    assert version() == __version__  # the installed metadata and the source agree


def test_help_and_completion_load_no_heavy_module() -> None:
    code = "import sys; from dpe_cli.cli import app; import typer; typer.main.get_command(app); print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code.format(heavy=HEAVY)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "dpe_cli", "--help"], capture_output=True, text=True)
    assert timed.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in timed.stderr.splitlines() if "|" in line}
    assert "dpe_cli" in imported  # the import-time table was read
    assert not imported & set(HEAVY)


@pytest.mark.parametrize(
    "command, option, choices",
    [
        ("edit-expression", "--audio", AUDIO_CHOICES),
        ("edit-expression", "--driver-end", DRIVER_END_CHOICES),
        ("edit-expression", "--precision", RUN_PRECISIONS),
        ("edit-expression", "--crop", CROP_CHOICES),
        ("edit-expression", "--paste", PASTE_METHODS),
        ("edit-expression", "--paste-reference", REFERENCES),
        ("reenact", "--mode", MODES),
    ],
)
def test_help_lists_the_choices(command: str, option: str, choices: tuple[str, ...]) -> None:
    result = run_dpe(command, "--help", env={**os.environ, "COLUMNS": "250"})
    line = next(line for line in result.stdout.splitlines() if f" {option} " in line)
    assert f"<{'|'.join(choices)}>" in line


def test_a_bad_choice_is_a_one_line_usage_error() -> None:
    result = run_dpe("edit-expression", "x.mp4", "--driver", "y.mp4", "--audio", "loud")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "'loud' is not one of 'source', 'driver', 'none'" in result.stderr
    assert result.stderr.rstrip().endswith("(see dpe edit-expression --help)")


def test_device_takes_the_choices_and_numbered_gpus() -> None:
    assert [parse_device(d) for d in ("auto", "cpu", "cuda", "cuda:1")] == ["auto", "cpu", "cuda", "cuda:1"]
    result = run_dpe("edit-expression", "x.mp4", "--driver", "y.mp4", "--device", "gpu")
    assert result.returncode == 2 and "is not one of auto, cpu, cuda or cuda:N" in result.stderr


def test_shell_completion_script_and_answers() -> None:
    script = run_dpe("--show-completion", "bash", env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert script.returncode == 0 and "_dpe_completion" in script.stdout and "_DPE_COMPLETE=complete_bash" in script.stdout
    env = {**os.environ, "_DPE_COMPLETE": "complete_bash", "COMP_WORDS": "dpe edit-expression --audio ", "COMP_CWORD": "3"}
    answer = run_dpe(env=env)
    assert answer.returncode == 0 and answer.stdout.split() == list(AUDIO_CHOICES)


def test_cli_help_and_info():
    help_ = run_dpe("--help")
    assert help_.returncode == 0 and "edit" in help_.stdout.lower()
    result = run_dpe("info", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["torch"].startswith("2.") and "cpu" in data["devices"]


def test_usage_errors_are_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dpe_cli", "edit-expression", "x.mp4", "--driver", "y.mp4", "--crf", "abc"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: Invalid value for '--crf'")
    assert result.stderr.rstrip().endswith("(see dpe edit-expression --help)")


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
