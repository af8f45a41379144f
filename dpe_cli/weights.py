"""Where a run's weights come from, wherever ``dpe`` is installed and run.

Lookup order: ``--weights PATH``, ``$DPE_WEIGHTS``, ``./weights/``, the user's weights folder
(``dpe weights install`` puts checkpoints there), then the small demo model that ships inside
the package, so that an installed ``dpe`` always has a model. The demo models (trained on
synthetic faces, named ``dpe-synthetic-*``) are passed over in the folders and used only as
the last resort: a clone's ``weights/`` holds one, and it must not hide a real model that
the user installed. Torch-free, so that ``dpe weights path`` answers at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir

from dpe_cli.errors import CheckpointError

WEIGHTS_ENV = "DPE_WEIGHTS"
WEIGHTS_DIR = Path("weights")
# Preferred names in a folder: the official model first, then anything else.
PREFERRED_NAMES = ("dpe.safetensors", "dpe.pt")
SHIPPED_DIR = Path(__file__).resolve().parent / "data" / "weights"
DEMO_PREFIX = "dpe-synthetic-"
OFFICIAL_HINT = (
    "download the authors' dpe.pt (github.com/OpenTalker/DPE, 'Pretrained Models') "
    "and run `dpe weights install dpe.pt`"
)

Origin = Literal["--weights", "$DPE_WEIGHTS", "./weights", "user folder", "shipped"]


@dataclass(frozen=True)
class Located:
    """The checkpoint a run would load, and why that one."""

    path: Path
    origin: Origin
    name: str
    size: int  # bytes

    def describe(self) -> str:
        """``dpe-synthetic-64.safetensors (8.7 MB, shipped)``: for progress output."""
        return f"{self.name} ({self.size / 1e6:.1f} MB, {self.origin})"

    def to_dict(self) -> dict[str, str | int]:
        return {"path": str(self.path), "origin": self.origin, "name": self.name, "size": self.size}


@dataclass(frozen=True)
class Folder:
    """One folder the lookup searches, and the checkpoint it offers (None: nothing usable)."""

    origin: Origin
    path: Path
    offers: Path | None


def user_weights_dir() -> Path:
    """The per-user folder: ``$XDG_DATA_HOME/dpe/weights`` (``~/.local/share/dpe/weights``)
    on Linux, ``~/Library/Application Support/dpe/weights`` on macOS, ``%LOCALAPPDATA%\\dpe\\weights``
    on Windows."""
    return Path(user_data_dir("dpe", appauthor=False)) / "weights"


def is_demo_model(path: Path) -> bool:
    return path.name.startswith(DEMO_PREFIX)


def checkpoints(directory: Path) -> list[Path]:
    """The checkpoints a folder holds, best first: the official names, then any other
    ``*.safetensors``, then any other ``*.pt`` (alphabetically)."""
    if not directory.is_dir():
        return []
    preferred = [directory / name for name in PREFERRED_NAMES if (directory / name).is_file()]
    others = sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.pt"))
    return preferred + [p for p in others if p not in preferred and p.is_file()]


def find_in_directory(directory: Path) -> Path | None:
    """The checkpoint a folder offers (see :func:`checkpoints`)."""
    found = checkpoints(directory)
    return found[0] if found else None


def search_folders() -> list[Folder]:
    """The folders searched when neither ``--weights`` nor ``$DPE_WEIGHTS`` is given, in order."""
    folders: list[Folder] = []
    for origin, path in (("./weights", WEIGHTS_DIR), ("user folder", user_weights_dir())):
        real = [p for p in checkpoints(path) if not is_demo_model(p)]
        folders.append(Folder(origin, path, real[0] if real else None))
    folders.append(Folder("shipped", SHIPPED_DIR, find_in_directory(SHIPPED_DIR)))
    return folders


def _find(path: str | Path | None) -> tuple[Path, Origin]:
    if path is not None:
        return Path(path).expanduser(), "--weights"
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env).expanduser(), "$DPE_WEIGHTS"
    for folder in search_folders():
        if folder.offers is not None:
            return folder.offers, folder.origin
    raise CheckpointError(
        "no DPE weights found",
        f"pass --weights PATH, set ${WEIGHTS_ENV}, put dpe.pt or a .safetensors file in ./{WEIGHTS_DIR}/, "
        f"or install one with `dpe weights install FILE` (see `dpe weights path`)",
    )


def resolve_weights(path: str | Path | None = None) -> Path:
    """The checkpoint to load (see the module's lookup order); a given path is returned as
    it is, for the loader to check."""
    return _find(path)[0]


def locate_weights(path: str | Path | None = None) -> Located:
    """Like :func:`resolve_weights`, with where the file came from, its name and its size;
    a given path that is not a file is an error here already."""
    found, origin = _find(path)
    if not found.is_file():
        what = "is a directory, not a weights file" if found.is_dir() else "not found"
        raise CheckpointError(f"weights file {found} ({origin}) {what}", "check the path given with --weights or $DPE_WEIGHTS")
    return Located(found, origin, found.name, found.stat().st_size)


def model_note(located: Located) -> str | None:
    """One sentence for a run with a demo model, which looks plausible on synthetic faces
    but blurs and misplaces real ones; None for any other model."""
    if not is_demo_model(located.path):
        return None
    return (
        f"{located.name} is a small demo model trained on synthetic faces only, so edits of real "
        f"faces will be soft and approximate; for real faces, {OFFICIAL_HINT}."
    )


def describe_lookup(path: str | Path | None = None) -> dict:
    """What ``dpe weights path --json`` prints: the places searched in order, and the file a
    run would use (or why there is none)."""
    env = os.environ.get(WEIGHTS_ENV) or None
    places: list[dict] = [
        {"origin": "--weights", "path": None if path is None else str(path), "exists": None, "offers": None, "passed_over": []},
        {"origin": "$DPE_WEIGHTS", "path": env, "exists": None, "offers": None, "passed_over": []},
    ]
    places += [
        {
            "origin": f.origin,
            "path": str(f.path.absolute()),
            "exists": f.path.is_dir(),
            "offers": None if f.offers is None else str(f.offers),
            "passed_over": [p.name for p in checkpoints(f.path) if is_demo_model(p) and f.origin != "shipped"],
        }
        for f in search_folders()
    ]
    try:
        located = locate_weights(path)
    except CheckpointError as exc:
        return {"searched": places, "selected": None, "note": None, "error": exc.one_line()}
    return {"searched": places, "selected": located.to_dict(), "note": model_note(located), "error": None}
