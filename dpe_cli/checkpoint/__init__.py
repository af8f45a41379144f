"""Reading and writing DPE weights: loading is part of the model's API.

Two formats are read, told apart by their first bytes: dpe's own ``.safetensors`` file
(:mod:`~dpe_cli.checkpoint.format`: config in the metadata, no pickle) and the authors'
release (:mod:`~dpe_cli.checkpoint.official`: ``torch.load(path)["gen"]`` read with
``weights_only=True``, names translated). Both are checked key by key against the
architecture, so a wrong file fails with a message instead of bad output. Where a run's
weights are found is :mod:`dpe_cli.weights`; which device it uses, :mod:`dpe_cli.device`.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from dpe_cli.atomic import replacing
from dpe_cli.checkpoint.format import FORMAT_NAME, FORMAT_VERSION, detect_format, read_safetensors, save_model
from dpe_cli.checkpoint.official import (
    lia_initial_state,
    load_discriminator,
    load_torch,
    official_generator_state,
    read_official,
    translate,
)
from dpe_cli.device import resolve_device
from dpe_cli.errors import OutputExistsError
from dpe_cli.inputs import InputFiles
from dpe_cli.model import DPE, DPEConfig
from dpe_cli.weights import (
    WEIGHTS_DIR,
    WEIGHTS_ENV,
    Located,
    find_in_directory,
    locate_weights,
    model_note,
    resolve_weights,
    user_weights_dir,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WEIGHTS_DIR",
    "WEIGHTS_ENV",
    "CheckpointInfo",
    "Located",
    "convert",
    "detect_format",
    "file_sha256",
    "find_in_directory",
    "install",
    "lia_initial_state",
    "load_discriminator",
    "load_model",
    "load_torch",
    "locate_weights",
    "model_note",
    "official_generator_state",
    "read_checkpoint",
    "resolve_device",
    "resolve_weights",
    "save_model",
    "translate",
    "user_weights_dir",
]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint holds. ``sha256`` reads the whole file, so it is computed on first
    use (where a hash is shown or recorded), never by a plain load."""

    path: Path
    format: str  # "safetensors" or "official"
    config: DPEConfig
    parameters: int
    metadata: dict[str, str] = field(default_factory=dict)

    @cached_property
    def sha256(self) -> str:
        return file_sha256(self.path)


def read_checkpoint(path: str | Path) -> tuple[DPE, CheckpointInfo]:
    """Build the model a checkpoint describes and load it (float32, CPU, eval mode)."""
    path = Path(path).expanduser()
    if detect_format(path) == "safetensors":
        model, state, metadata = read_safetensors(path)
        kind = "safetensors"
    else:
        model, state = read_official(path)
        metadata, kind = {}, "official"
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval().requires_grad_(False)
    return model, CheckpointInfo(path, kind, model.config, sum(p.numel() for p in model.parameters()), metadata)


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> DPE:
    """Load DPE weights for inference.

    ``path`` may be None to use the default lookup (:mod:`dpe_cli.weights`).
    The model is in eval mode with gradients off; float64 works too (parity is judged in it).
    """
    model, _ = read_checkpoint(resolve_weights(path))
    return model.to(device=resolve_device(device), dtype=dtype)


def _save_converted(model: DPE, info: CheckpointInfo, target: Path) -> None:
    save_model(model, target, {"converted_from": info.path.name, "source_sha256": info.sha256})


def convert(source: str | Path, target: str | Path, *, overwrite: bool = True) -> CheckpointInfo:
    """Official ``dpe.pt`` (or any readable checkpoint) -> our safetensors file. The target may
    never be the source (compared by identity: a link to it counts as it), whatever
    ``overwrite`` says; that is refused before anything is read."""
    target = Path(target).expanduser()
    InputFiles([source]).refuse(target.resolve())
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} already exists", "pass `overwrite` to replace it")
    model, info = read_checkpoint(source)
    _save_converted(model, info, Path(target))
    return read_checkpoint(target)[1]


def install(source: str | Path, folder: Path | None = None, overwrite: bool = False) -> CheckpointInfo:
    """Put a checkpoint where every run finds it: the user's weights folder (or ``folder``),
    as ``<stem>.safetensors``. It is loaded first, so a damaged or foreign file is refused
    before anything is written; the official ``.pt`` is converted (faster to load, no pickle),
    our own files are copied. The file appears complete or not at all."""
    source = Path(source).expanduser()
    target = (user_weights_dir() if folder is None else folder) / f"{source.stem}.safetensors"
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} is already installed", "pass `overwrite` to replace it")
    model, info = read_checkpoint(source)
    if info.format == "safetensors":
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as tmp:
            shutil.copyfile(source, tmp)
    else:
        _save_converted(model, info, target)
    return read_checkpoint(target)[1]
