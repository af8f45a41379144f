"""``dpe synth``: a data set or a single clip, and bad options refused with a hint."""

from __future__ import annotations

import imageio_ffmpeg
import pytest
import typer
from typer.testing import CliRunner

from dpe_cli.cli.synth_cmd import register
from dpe_cli.errors import InputError, OutputExistsError
from dpe_cli.synth import read_labels


@pytest.fixture
def cli():
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test harness: ``synth`` registered on a fresh app."""

    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["synth", *map(str, args)])


def test_cli_writes_a_dataset_and_a_single_clip(cli, tmp_path):
    result = cli(tmp_path / "ds", "--identities", 2, "--clips", 1, "--frames", 3, "--size", 64, "--seed", 7, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["id00007", "id00008"]
    result = cli(tmp_path / "one.mp4", "--frames", 4, "--kind", "full", "--size", "320x180", "--quiet")
    assert result.exit_code == 0, result.output
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "one.mp4"))[0] == 4
    assert read_labels(tmp_path / "one.mp4")["kind"] == "full"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--size", "65"], InputError),
        (["--size", "big"], InputError),
        (["--frames", "0"], InputError),
        (["--fps", "-1"], InputError),
        (["--fps", "1e-6"], InputError),  # 40 s of work, then a file with no streams
        (["--fps", "inf"], InputError),
        (["--fps", "nan"], InputError),
        (["--frames", "100000000"], InputError),
        (["--clips", "2"], InputError),  # a single .mp4 has no clips
        (["--workers", "0"], InputError),
        (["--motion", "keyframes", "--kind", "full"], InputError),
    ],
)
def test_cli_rejects_bad_options_with_a_hint(cli, tmp_path, args, error):
    result = cli(tmp_path / "x.mp4", *args)
    assert isinstance(result.exception, error)
    assert result.exception.hint
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("args", [["--kind", "portrait"], ["--motion", "jerky"]])
def test_cli_kind_and_motion_are_choices(cli, tmp_path, args):
    result = cli(tmp_path / "x.mp4", *args)
    assert result.exit_code == 2 and "is not one of" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_cli_refuses_to_overwrite_without_the_flag(cli, tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("x")
    assert isinstance(cli(tmp_path / "ds", "--frames", 1, "--size", 64).exception, OutputExistsError)
    assert cli(tmp_path / "ds", "-n", 1, "--clips", 1, "--frames", 1, "--size", 64, "-y", "-q").exit_code == 0
