"""dpe works wherever it is installed: the weights lookup, the demo-model note, installing
checkpoints, and (slow) the built wheel in a fresh venv, run from an empty folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from dpe_cli import weights as lookup
from dpe_cli.errors import CheckpointError, OutputExistsError
from dpe_cli.weights import locate_weights, model_note, resolve_weights, user_weights_dir

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "dpe_cli" / "data" / "weights" / "dpe-synthetic-64.safetensors"


def run_dpe(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dpe_cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty working folder, user data folder and shipped folder, and no $DPE_WEIGHTS."""
    work, data, shipped = tmp_path / "work", tmp_path / "data", tmp_path / "shipped"
    for folder in (work, data, shipped):
        folder.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DPE_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(lookup, "SHIPPED_DIR", shipped)
    return {"work": work, "user": data / "dpe" / "weights", "shipped": shipped}


def put(folder: Path, name: str, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / name)
    return folder / name


def test_lookup_order_takes_each_step_in_turn(places: dict[str, Path], tiny_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="--weights.*DPE_WEIGHTS.*weights/.*dpe weights install"):
        resolve_weights(None)
    shipped = put(places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights)
    assert (locate_weights().path, locate_weights().origin) == (shipped, "shipped")
    user = put(places["user"], "mine.safetensors", tiny_weights)
    assert user_weights_dir() == places["user"]
    assert (locate_weights().path, locate_weights().origin) == (user, "user folder")
    put(places["work"] / "weights", "small.safetensors", tiny_weights)
    assert resolve_weights(None) == Path("weights/small.safetensors")
    put(places["work"] / "weights", "dpe.safetensors", tiny_weights)
    assert (locate_weights().path, locate_weights().origin) == (Path("weights/dpe.safetensors"), "./weights")  # official name first
    monkeypatch.setenv("DPE_WEIGHTS", str(user))
    assert (locate_weights().path, locate_weights().origin) == (user, "$DPE_WEIGHTS")
    assert (locate_weights(shipped).path, locate_weights(shipped).origin) == (shipped, "--weights")
    located = locate_weights(shipped)
    assert (located.name, located.size) == ("dpe-synthetic-64.safetensors", tiny_weights.stat().st_size)
    assert resolve_weights("explicit.safetensors") == Path("explicit.safetensors")  # checked by the loader


def test_demo_model_in_a_folder_comes_after_the_user_folder(places: dict[str, Path], tiny_weights: Path) -> None:
    """A clone's weights/ holds the demo model: it must not hide a model the user installed."""
    put(places["work"] / "weights", "dpe-synthetic-64.safetensors", tiny_weights)
    shipped = put(places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights)
    assert locate_weights().origin == "shipped" and locate_weights().path == shipped
    installed = put(places["user"], "dpe.safetensors", tiny_weights)
    assert locate_weights().path == installed


def test_locate_refuses_a_missing_or_folder_path(places: dict[str, Path]) -> None:
    with pytest.raises(CheckpointError, match="nope.pt \\(--weights\\) not found"):
        locate_weights("nope.pt")
    with pytest.raises(CheckpointError, match="is a directory"):
        locate_weights(places["work"])


def test_the_synthetic_model_gets_one_note_and_others_none(places: dict[str, Path], tiny_weights: Path) -> None:
    demo = locate_weights(put(places["shipped"], "dpe-synthetic-64.safetensors", tiny_weights))
    note = model_note(demo)
    assert note is not None and "\n" not in note and note.count(". ") == 0
    assert "synthetic faces only" in note and "dpe weights install dpe.pt" in note
    assert model_note(locate_weights(put(places["user"], "dpe.safetensors", tiny_weights))) is None


def test_the_shipped_model_is_the_package_copy_and_weights_links_to_it() -> None:
    assert lookup.SHIPPED_DIR / SHIPPED.name == SHIPPED and SHIPPED.is_file() and not SHIPPED.is_symlink()
    link = ROOT / "weights" / SHIPPED.name
    assert link.is_symlink() and link.resolve() == SHIPPED.resolve()


def test_install_checks_converts_and_refuses_to_overwrite(places: dict[str, Path], official_checkpoint: Path, tiny_weights: Path) -> None:
    from dpe_cli.checkpoint import install

    info = install(official_checkpoint)
    assert info.path == places["user"] / "dpe.safetensors" and info.format == "safetensors"
    assert info.metadata["converted_from"] == "dpe.pt"
    with pytest.raises(OutputExistsError, match="--overwrite"):
        install(official_checkpoint)
    copied = install(tiny_weights)
    assert copied.path.read_bytes() == tiny_weights.read_bytes()
    assert install(tiny_weights, overwrite=True).sha256 == copied.sha256
    broken = places["work"] / "broken.safetensors"
    broken.write_bytes(tiny_weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError):
        install(broken)
    assert not (places["user"] / "broken.safetensors").exists()
    assert sorted(p.name for p in places["user"].iterdir()) == ["dpe.safetensors", "tiny.safetensors"]  # no partials
    assert locate_weights().path == info.path


def test_cli_weights_path_and_install(tmp_path: Path, tiny_weights: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("DPE_WEIGHTS", None)
    shown = run_dpe("weights", "path", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line.split()[1] for line in lines[1:6]] == ["--weights", "$DPE_WEIGHTS", "./weights", "user", "shipped"]
    assert "a run would use:" in shown.stdout and "(8.7 MB, shipped)" in shown.stdout and "synthetic faces only" in shown.stdout
    installed = run_dpe("weights", "install", str(tiny_weights), cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stderr
    again = run_dpe("weights", "install", str(tiny_weights), cwd=tmp_path, env=env)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    data = json.loads(run_dpe("weights", "path", "--json", cwd=tmp_path, env=env).stdout)
    assert data["selected"]["origin"] == "user folder" and data["selected"]["name"] == "tiny.safetensors"
    assert data["note"] is None and [p["origin"] for p in data["searched"]][3] == "user folder"
    info = json.loads(run_dpe("info", "--json", cwd=tmp_path, env=env).stdout)
    assert info["weights"]["selected"] == data["selected"]


def _wheel_venv(tmp_path: Path) -> Path:
    """Build the wheel and install it with torch into a fresh venv; skip where that cannot be."""
    pytest.importorskip("build", reason="the dev extra's `build` is needed to make the wheel")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build the package here (offline without setuptools>=77?): {built.stderr.strip().splitlines()[-1:]}")
    assert not [line for line in built.stdout.splitlines() + built.stderr.splitlines() if "Deprecat" in line]
    (wheel,) = dist.glob("*.whl")
    assert len(list(dist.glob("*.tar.gz"))) == 1
    with zipfile.ZipFile(wheel) as zf:
        assert "dpe_cli/data/weights/dpe-synthetic-64.safetensors" in zf.namelist()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for spec in (["torch==2.13.0"], [str(wheel)]):
        done = subprocess.run([*pip, *spec], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot install {spec[0]} here: {done.stderr.strip().splitlines()[-1:]}")
    return env_dir / "bin" / "dpe"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_built_wheel_works_from_an_empty_folder(tmp_path: Path) -> None:
    dpe = _wheel_venv(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("DPE_WEIGHTS", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(dpe), *args], capture_output=True, text=True, cwd=empty, env=env)
        assert done.returncode == 0, done.stderr
        return done

    assert run("--version").stdout.strip() == "dpe 0.1.0"
    info = json.loads(run("info", "--json").stdout)
    assert info["weights"]["selected"]["origin"] == "shipped" and "site-packages" in info["weights"]["selected"]["path"]
    run("synth", "src.mp4", "--kind", "full", "--frames", "12", "--seed", "3", "-q")
    run("synth", "drv.mp4", "--frames", "12", "--seed", "8", "-q")
    report = json.loads(run("edit-expression", "src.mp4", "--driver", "drv.mp4", "-o", "out.mp4", "--json", "-q").stdout)
    assert report["frames"] == 12 and (empty / "out.mp4").stat().st_size > 0
