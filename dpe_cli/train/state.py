"""Checkpoints of a training run: what to keep so that ``--resume`` continues exactly.

A checkpoint at step N is three files in ``OUT/checkpoints/``, each written atomically:

- ``step-000N.safetensors``: the generator, in the project's format (``dpe edit-* --weights``
  loads it directly); ``OUT/model.safetensors`` always points at the newest one;
- ``step-000N.discriminator.safetensors``: the discriminator;
- ``step-000N.state.pt``: optimizers, loss scalers, step and RNG states. Plain dicts, lists and
  tensors only, read back with ``torch.load(weights_only=True)``: no pickled code.

A checkpoint counts only when all three exist, so a crash while saving falls back to the
previous one. The newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dpe_cli.atomic import replacing
from dpe_cli.checkpoint import (
    detect_format,
    lia_initial_state,
    load_discriminator,
    official_generator_state,
    read_checkpoint,
    save_model,
)
from dpe_cli.checkpoint.official import load_torch
from dpe_cli.errors import CheckpointError
from dpe_cli.model import DPE, Discriminator, DPEConfig

CHECKPOINT_DIR = "checkpoints"
LATEST_MODEL = "model.safetensors"
DISCRIMINATOR_FORMAT = "dpe-cli-discriminator"


@dataclass(frozen=True)
class CheckpointFiles:
    step: int
    generator: Path
    discriminator: Path
    state: Path

    def complete(self) -> bool:
        return self.generator.is_file() and self.discriminator.is_file() and self.state.is_file()

    def all_paths(self) -> tuple[Path, Path, Path]:
        return self.generator, self.discriminator, self.state


def checkpoint_files(run_dir: Path, step: int) -> CheckpointFiles:
    base = Path(run_dir) / CHECKPOINT_DIR / f"step-{step:06d}"
    return CheckpointFiles(
        step,
        base.with_name(base.name + ".safetensors"),
        base.with_name(base.name + ".discriminator.safetensors"),
        base.with_name(base.name + ".state.pt"),
    )


def _steps_on_disk(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    steps = {int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"step-(\d+)\.", p.name))}
    return sorted(steps)


def list_checkpoints(run_dir: Path) -> list[CheckpointFiles]:
    """Complete checkpoints, oldest first."""
    files = (checkpoint_files(run_dir, step) for step in _steps_on_disk(run_dir))
    return [f for f in files if f.complete()]


def latest_checkpoint(run_dir: Path) -> CheckpointFiles | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_discriminator(discriminator: Discriminator, config: DPEConfig, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in discriminator.state_dict().items()}
    metadata = {"format": DISCRIMINATOR_FORMAT, "config": json.dumps(config.to_dict())}
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_discriminator_file(path: Path, config: DPEConfig) -> dict[str, Tensor]:
    """A discriminator state dict written by :func:`save_discriminator` for ``config``."""
    from safetensors.torch import load_file, safe_open

    with safe_open(str(path), framework="pt") as fh:
        metadata = dict(fh.metadata() or {})
    if metadata.get("format") != DISCRIMINATOR_FORMAT:
        raise CheckpointError(f"{path} is not a dpe discriminator file", "use the one saved beside the generator")
    if DPEConfig.from_dict(json.loads(metadata.get("config", "{}"))) != config:
        raise CheckpointError(f"{path} belongs to a model of another size", "start the discriminator fresh or use the matching run")
    return load_file(str(path))


def discriminator_beside(generator: Path) -> Path | None:
    """The discriminator saved with a generator file of a dpe run (a step file or model.safetensors)."""
    from safetensors import safe_open

    try:
        with safe_open(str(generator), framework="pt") as fh:
            name = (fh.metadata() or {}).get("discriminator")
    except Exception:  # noqa: BLE001 - not one of our files: no discriminator
        return None
    if not name:
        return None
    for candidate in (generator.parent / name, generator.parent / CHECKPOINT_DIR / name):
        if candidate.is_file():
            return candidate
    return None


def _publish_latest(generator: Path, target: Path) -> None:
    """Point ``target`` at ``generator`` atomically: a hard link where possible, else a copy,
    through :func:`~dpe_cli.atomic.replacing`'s unpredictable temporary."""
    with replacing(target) as tmp:
        # A link needs a free name: the temporary's is freed and taken again exclusively (link
        # and "xb" both fail on anything planted there meanwhile, a symbolic link included).
        tmp.unlink()
        try:
            os.link(generator, tmp)
        except OSError:  # no hard links here (another file system, FAT)
            with generator.open("rb") as source, tmp.open("xb") as copy:
                shutil.copyfileobj(source, copy)


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: DPE,
    discriminator: Discriminator,
    training_state: dict,
    keep: int,
    metadata: dict[str, str],
) -> CheckpointFiles:
    """Write the checkpoint of ``step``, update ``OUT/model.safetensors`` and drop old ones."""
    files = checkpoint_files(run_dir, step)
    save_discriminator(discriminator, model.config, files.discriminator)
    with replacing(files.state) as tmp:
        torch.save(training_state, tmp)
    info = {**metadata, "step": str(step), "discriminator": files.discriminator.name}
    save_model(model, files.generator, info)  # last: the generator's arrival completes the set
    _publish_latest(files.generator, Path(run_dir) / LATEST_MODEL)
    prune(run_dir, keep)
    return files


def prune(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` complete checkpoints; remove older ones and stray partial sets."""
    complete = list_checkpoints(run_dir)
    kept = {f.step for f in complete[-keep:]} if keep > 0 else {f.step for f in complete}
    newest = max(kept, default=-1)
    for step in _steps_on_disk(run_dir):
        if step in kept or step > newest:
            continue
        for path in checkpoint_files(run_dir, step).all_paths():
            path.unlink(missing_ok=True)


@dataclass
class InitialWeights:
    """What ``--init`` provides: a generator (whole, or LIA's parts), maybe a discriminator."""

    model: DPE
    discriminator: dict[str, Tensor] | None
    kind: str  # "dpe" (a dpe run), "official" (dpe.pt or a reference training checkpoint), "lia"

    @property
    def full_generator(self) -> bool:
        return self.kind != "lia"


def load_initial_weights(path: Path, config: DPEConfig) -> InitialWeights:
    """Weights to start from: a dpe ``.safetensors`` (with its run's discriminator when found),
    the official ``dpe.pt`` or a reference training checkpoint (``gen`` and ``dis``), or LIA's
    ``vox.pt``, of which the encoder, motion MLP and direction basis are used, as the
    reference does; ``config`` is used only for LIA, which does not define the whole model."""
    path = Path(path).expanduser()
    if detect_format(path) == "safetensors":
        model, _ = read_checkpoint(path)
        beside = discriminator_beside(path)
        dis = load_discriminator_file(beside, model.config) if beside is not None else None
        return InitialWeights(model, dis, "dpe")
    obj = load_torch(path)
    keys = official_generator_state(obj).keys()
    if any(k.startswith("dec_pose.") for k in keys):
        model, _ = read_checkpoint(path)
        dis = load_discriminator(obj, model.config).state_dict() if isinstance(obj.get("dis"), dict) else None
        return InitialWeights(model, dis, "official")
    if any(k.startswith("enc.fc.") or k == "dec.direction.weight" for k in keys):
        model = DPE(config)
        model.load_state_dict(lia_initial_state(path, model), strict=False)
        return InitialWeights(model, None, "lia")
    raise CheckpointError(f"{path} is neither a DPE nor a LIA checkpoint", "use a dpe .safetensors, the official dpe.pt or LIA's vox.pt")


def load_training_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated or foreign file
        raise CheckpointError(f"cannot read training state {path}: {str(exc)[:120]}", "resume from an earlier checkpoint (delete this one)") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} is not a dpe training state", "resume from a run folder written by dpe train")
    return state


def capture_rng() -> dict:
    """Every random generator a step may touch, as plain values and tensors."""
    algorithm, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "algorithm": algorithm,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["algorithm"], n["keys"].numpy().astype(np.uint32), n["position"], n["has_gauss"], n["gauss"]))
