"""Output a pipeline can rely on: each command's result on stdout, everything else on stderr
(one README row each), and off a terminal no progress bars, no colour and no wrapped line."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from helpers import run_dpe, write_jsonl

BAR = re.compile("[━█▏▎▍▌▋▊▉]|\x1b\\[")  # rich's bar glyphs and any escape sequence


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 6-frame square synthetic face clip (edited with --crop none: no detection)."""
    from dpe_cli.synth import write_clip

    path = tmp_path_factory.mktemp("clip") / "face.mp4"
    write_clip(path, 3, n_frames=6, size=64, kind="crop")
    return path


def _plain(result) -> None:
    """A run in a pipe: no bars or escapes on either stream, and every line a whole message."""
    assert not BAR.search(result.stdout) and not BAR.search(result.stderr), result.stderr


def test_edit_result_on_stdout_one_line_per_stage_on_stderr(tiny_weights, clip, tmp_path):
    out = tmp_path / ("deep-" * 30) / "edited.mp4"  # a path far longer than 80 columns
    out.parent.mkdir()
    result = run_dpe("edit-expression", str(clip), "--driver", str(clip), "--crop", "none", "-w", str(tiny_weights), "-o", str(out))
    assert result.returncode == 0, result.stderr
    _plain(result)
    assert result.stdout.splitlines() == [result.stdout.strip()] and result.stdout.startswith(f"wrote {out} (6 frames")
    assert re.search(r"^editing \(expression\): 6 frames in \d+\.\d s$", result.stderr, re.M)
    assert "wrote" not in result.stderr


def test_a_long_error_is_one_line_in_a_pipe(tmp_path):
    missing = tmp_path / ("long-folder-name-" * 12) / "x.mp4"
    result = run_dpe("edit-expression", str(missing), "--driver", str(missing))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and str(missing) in result.stderr


def test_batch_and_status_print_their_reports_on_stdout(tiny_weights, clip, tmp_path):
    manifest = write_jsonl(tmp_path / "jobs.jsonl", [{"source": str(clip), "driver": str(clip), "output": "out/a.mp4", "crop": "none"}])
    result = run_dpe("batch", str(manifest), "--results", str(tmp_path / "R"), "-w", str(tiny_weights))
    assert result.returncode == 0, result.stderr
    _plain(result)
    assert result.stdout.startswith("1 done, 0 already done, 0 failed of 1 jobs") and "records in" in result.stdout
    assert re.search(r"^batch .*: 1 jobs? in \d+\.\d s$", result.stderr, re.M) and "done, 0 already" not in result.stderr
    status = run_dpe("batch", "status", str(tmp_path / "R"))
    assert status.returncode == 0 and status.stdout.startswith("1 done, 0 failed, 0 pending of 1 jobs") and status.stderr == ""


def test_synth_result_on_stdout(tmp_path):
    result = run_dpe("synth", str(tmp_path / "one.mp4"), "--frames", "3", "--size", "64")
    assert result.returncode == 0, result.stderr
    _plain(result)
    assert result.stdout.startswith("wrote 1 clip(s), 3 frames") and "wrote" not in result.stderr


def test_preview_result_on_stdout(tiny_weights, clip, tmp_path):
    result = run_dpe("preview", str(clip), "-w", str(tiny_weights), "-o", str(tmp_path / "p.png"))
    assert result.returncode == 0, result.stderr
    _plain(result)
    assert result.stdout.startswith(f"wrote {tmp_path / 'p.png'}") and "wrote" not in result.stderr


def test_weights_convert_and_install_results_on_stdout_same_bytes_and_mode(tiny_weights, tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    first = run_dpe("weights", "convert", str(tiny_weights), "-o", str(tmp_path / "a.safetensors"), env=env)
    second = run_dpe("weights", "convert", str(tiny_weights), "-o", str(tmp_path / "b.safetensors"), env=env)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout.startswith(f"wrote {tmp_path / 'a.safetensors'}") and first.stderr == ""
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()  # deterministic
    installed = run_dpe("weights", "install", str(tmp_path / "a.safetensors"), env=env)
    assert installed.returncode == 0 and installed.stdout.startswith("installed ") and installed.stderr == ""
    target = Path(installed.stdout.split()[1])
    modes = {p: p.stat().st_mode & 0o777 for p in (tmp_path / "a.safetensors", target)}
    assert len(set(modes.values())) == 1, modes  # convert and install give the same permissions


def test_info_and_weights_info_on_stdout(tiny_weights, tmp_path):
    for value, expected in (("", "torch's default"), ("1", "1 ($DPE_THREADS)"), ("abc", "DPE_THREADS='abc' is not a positive integer"),
                            ("999", "DPE_THREADS=999 is more than this machine's")):
        result = run_dpe("info", env={**os.environ, "DPE_THREADS": value})
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith("threads:"))
        assert result.returncode == 0 and expected in line, line
    info = run_dpe("weights", "info", str(tiny_weights), "--json")
    assert json.loads(info.stdout)["format"] == "safetensors"
    missing = run_dpe("weights", "info", str(tmp_path / "missing.pt"))
    assert missing.returncode == 2 and "--weights" not in missing.stderr and "check the path" in missing.stderr


def test_eval_compare_table_on_stdout_unwrapped(clip):
    result = run_dpe("eval", "compare", str(clip), str(clip), "--no-csim")
    assert result.returncode == 0, result.stderr
    assert not BAR.search(result.stderr) and "\x1b" not in result.stdout  # the table's rules are text, not escapes
    assert "PSNR" in result.stdout and re.fullmatch(r"scoring face.mp4: 6 frames in \d+\.\d s\n", result.stderr)


def test_batch_help_shows_choices_and_brackets():
    result = run_dpe("batch", "run", "--help", env={**os.environ, "COLUMNS": "250"})
    text = result.stdout
    assert "(source, driver, output, [command], [options])" in text
    for option, choices in (("--command", "<edit-expression|edit-pose|reenact>"), ("--precision", "<auto|fp32|bf16|fp16>"),
                            ("--audio", "<source|driver|none>"), ("--device", "<auto|cpu|cuda|cuda:N>")):
        line = next(line for line in text.splitlines() if f" {option} " in line)
        assert choices in line, line


def test_force_color_and_no_color(tmp_path):
    """FORCE_COLOR gives a pipe the terminal's colours; NO_COLOR takes colour away again."""
    forced = run_dpe("synth", str(tmp_path / "a.mp4"), "--frames", "2", "--size", "64", env={**os.environ, "FORCE_COLOR": "1"})
    assert forced.returncode == 0 and "\x1b[" in forced.stdout
    plain = run_dpe("synth", str(tmp_path / "b.mp4"), "--frames", "2", "--size", "64", env={**os.environ, "FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout and plain.stdout.startswith("wrote ")
