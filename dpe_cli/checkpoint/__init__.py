"""Reading and writing DPE weights.

Two formats are read: the project's own ``.safetensors`` file (tensors under our names, the
model config in its metadata; loading runs no pickled code) and the authors' release
(``torch.load(path)["gen"]``, read with ``weights_only=True``). Both are checked key by key
against the architecture, so a wrong file fails with a message instead of bad output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import torch
from torch import Tensor, nn

from dpe_cli import __version__
from dpe_cli.atomic import replacing
from dpe_cli.checkpoint.official import (
    DROP,
    Constant,
    Target,
    constant_matches,
    discriminator_target,
    generator_target,
    infer_config,
    lia_target,
)
from dpe_cli.errors import CheckpointError, InputError, OutputExistsError, single_line
from dpe_cli.model import DPE, DPEConfig, Discriminator
# The lookup lives in the torch-free dpe_cli.weights; these names stay importable from here.
from dpe_cli.weights import (  # noqa: F401
    WEIGHTS_DIR,
    WEIGHTS_ENV,
    Located,
    find_in_directory,
    locate_weights,
    model_note,
    resolve_weights,
    user_weights_dir,
)

FORMAT_NAME = "dpe-cli"
FORMAT_VERSION = "1"
T = TypeVar("T")


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    format: str  # "safetensors" or "official"
    config: DPEConfig
    parameters: int
    sha256: str
    metadata: dict[str, str]


def detect_format(path: Path) -> str:
    """``safetensors``, ``torch`` (zip or legacy pickle) from the first bytes, never the suffix."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}", "check the path given with --weights or $DPE_WEIGHTS")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a weights file", "give the .safetensors or .pt file inside it")
    with path.open("rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        raise CheckpointError(f"{path} is empty or truncated", "download or convert the checkpoint again")
    header_len = struct.unpack("<Q", head[:8])[0]
    if head[8:9] == b"{" and 0 < header_len < path.stat().st_size:
        return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":  # zip, or legacy pickle protocol 2
        return "torch"
    raise CheckpointError(f"{path} is not a DPE checkpoint", "expected a .safetensors file from `dpe weights convert` or the official dpe.pt")


_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = "WeightsUnpickler error:"


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    """Why ``torch.load`` failed, in one line: a refused object (what a safe load is for,
    not damage), or the first sentence of the damage, never an empty reason."""
    text = str(exc)
    refused = _REFUSED_GLOBAL.search(text)
    if refused:
        return CheckpointError(
            f"{path} holds code or objects that a safe load refuses ({refused.group(1)}); nothing in it was run",
            "convert it to a plain state dict with the official code, or use a .safetensors file",
        )
    detail = text.split(_UNPICKLER_DETAIL)[-1]
    line = next((line.strip() for line in detail.splitlines() if line.strip()), "")
    reason = line.split(". ")[0].strip(" .:")
    if not any(c.isalnum() for c in reason):
        reason = f"{type(exc).__name__} while reading the data"
    return CheckpointError(f"cannot read {path}: {reason[:120]}", "the file is truncated, corrupt or not a PyTorch checkpoint; download it again")


def _load_torch(path: Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers, plus the training
    checkpoints' ``argparse.Namespace`` (their ``args``), which is all they hold."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip errors, unpickling refusals, truncation
        raise _unreadable(path, exc) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} does not hold a state dict", "expected the official dpe.pt ({'gen': ...})")
    return obj


def _strip_module(state: dict[str, Tensor]) -> dict[str, Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def official_generator_state(obj: dict) -> dict[str, Tensor]:
    """The generator state dict of an official file: ``obj["gen"]``, or ``obj`` itself."""
    state = obj.get("gen", obj)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError("the checkpoint has no generator state dict", "expected the official dpe.pt ({'gen': ...})")
    return _strip_module(state)


def translate(
    source: dict[str, Tensor],
    target: nn.Module,
    rule: Callable[[str], Target | None],
    what: str,
    strict: bool = True,
) -> dict[str, Tensor]:
    """Map ``source`` onto ``target``'s names with ``rule`` and check names and shapes.

    Raises a one-line error naming the first unexpected, mis-shaped and missing keys.
    With ``strict=False`` (partial initialisation) keys the target lacks are allowed.
    """
    expected = target.state_dict()
    mapped: dict[str, Tensor] = {}
    unexpected, wrong_shape, bad_constant = [], [], []
    for key, value in source.items():
        name = rule(key)
        if name is None:
            unexpected.append(key)
        elif name == DROP:
            continue
        elif isinstance(name, Constant):
            if not constant_matches(value, name):
                bad_constant.append(key)
        elif name not in expected:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(expected[name].shape):
            wrong_shape.append(f"{key} {tuple(value.shape)} vs {tuple(expected[name].shape)}")
        else:
            mapped[name] = value
    missing = [k for k in expected if k not in mapped] if strict else []
    problems = []
    for label, keys in (("unexpected", unexpected), ("mis-shaped", wrong_shape), ("missing", missing), ("unusual FIR kernel", bad_constant)):
        if keys:
            more = f" and {len(keys) - 3} more" if len(keys) > 3 else ""
            problems.append(f"{len(keys)} {label} ({', '.join(keys[:3])}{more})")
    if problems:
        raise CheckpointError(f"{what} does not match the DPE architecture: " + "; ".join(problems), "use the official dpe.pt or a file written by dpe")
    return mapped


def _safetensors_call(path: Path, read: Callable[[], T]) -> T:
    """``read()``, with safetensors' complaints about a damaged file as one CheckpointError."""
    from safetensors import SafetensorError

    try:
        return read()
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {single_line(str(exc))[:160]}", "the file is truncated or corrupt; convert or download it again") from exc


def _read_safetensors_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The metadata and every tensor's shape, from the header alone (no tensor is loaded)."""
    from safetensors.torch import safe_open

    def read() -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {}), {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}

    metadata, shapes = _safetensors_call(path, read)
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path} is a safetensors file without dpe metadata", "write it with `dpe weights convert` or dpe train")
    return metadata, shapes


def _config_from_metadata(path: Path, metadata: dict[str, str]) -> DPEConfig:
    """The declared config, within the bounds of :class:`DPEConfig` (checked before use)."""
    try:
        return DPEConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"{path} has no valid model config in its metadata", "re-create it with `dpe weights convert`") from exc
    except InputError as exc:
        raise CheckpointError(f"{path} declares a model config no DPE has ({exc.message})", "the file is damaged or not from dpe; convert or download it again") from exc


def _check_declared_shapes(path: Path, config: DPEConfig, shapes: dict[str, tuple[int, ...]]) -> None:
    """The header's tensors must be exactly the declared model's, compared on the meta
    device: a header that lies about either costs no memory."""
    with torch.device("meta"):
        skeleton = DPE(config)
        declared = {key: torch.empty(shape) for key, shape in shapes.items()}
    summary = f"{path.name} (declared size {config.size}, width {config.width:g}, style_dim {config.style_dim}, motion_dim {config.motion_dim})"
    translate(declared, skeleton, lambda k: k, summary)


def read_checkpoint(path: str | Path) -> tuple[DPE, CheckpointInfo]:
    """Build the model a checkpoint describes and load it (float32, CPU, eval mode)."""
    path = Path(path).expanduser()
    fmt = detect_format(path)
    if fmt == "safetensors":
        from safetensors.torch import load_file

        metadata, shapes = _read_safetensors_header(path)
        config = _config_from_metadata(path, metadata)
        _check_declared_shapes(path, config, shapes)
        state = _safetensors_call(path, lambda: load_file(str(path)))
        model = DPE(config)
        kind = "safetensors"
    else:
        state_official = official_generator_state(_load_torch(path))
        try:
            config = infer_config(state_official)
        except (KeyError, IndexError) as exc:
            raise CheckpointError(f"{path} is not a DPE generator checkpoint (no key {exc})", "expected the official dpe.pt") from exc
        model = DPE(config)
        blocks = len(model.encoder.blocks)
        state = translate(state_official, model, lambda k: generator_target(k, blocks), f"{path.name}")
        metadata = {}
        kind = "official"
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.eval().requires_grad_(False)
    info = CheckpointInfo(path, kind, config, sum(p.numel() for p in model.parameters()), file_sha256(path), metadata)
    return model, info


def load_model(path: str | Path | None = None, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> DPE:
    """Load DPE weights for inference.

    ``path`` may be None to use the default lookup (:mod:`dpe_cli.weights`).
    The model is in eval mode with gradients off; float64 works too (parity is judged in it).
    """
    model, _ = read_checkpoint(resolve_weights(path))
    return model.to(device=resolve_device(device), dtype=dtype)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        write(tmp)


def save_model(model: DPE, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the generator as one ``.safetensors`` file with its config in the metadata.

    The write is atomic: a crash never leaves a half-written file at ``path``.
    """
    from safetensors.torch import save_file

    path = Path(path)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "dpe_cli_version": __version__,
        **(extra_metadata or {}),
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def _save_converted(model: DPE, info: CheckpointInfo, target: Path) -> None:
    save_model(model, target, {"converted_from": info.path.name, "source_sha256": info.sha256})


def convert(source: str | Path, target: str | Path) -> CheckpointInfo:
    """Official ``dpe.pt`` (or any readable checkpoint) -> our safetensors file."""
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
        raise OutputExistsError(f"{target} is already installed", "pass --overwrite to replace it")
    model, info = read_checkpoint(source)
    if info.format == "safetensors":
        _atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    else:
        _save_converted(model, info, target)
    return read_checkpoint(target)[1]


def load_discriminator(obj: dict, config: DPEConfig) -> Discriminator:
    """The discriminator of an official training checkpoint (``obj["dis"]``)."""
    dis = Discriminator(config)
    state = _strip_module(obj["dis"])
    dis.load_state_dict(translate(state, dis, discriminator_target, "discriminator"))
    return dis


def lia_initial_state(path: Path, model: DPE) -> dict[str, Tensor]:
    """Encoder, motion MLP and directions from LIA's ``vox.pt`` (how DPE training starts)."""
    obj = _load_torch(path)
    state = _strip_module(obj.get("gen", obj))
    blocks = len(model.encoder.blocks)
    keep = {k: v for k, v in state.items() if lia_target(k, blocks) is not None}
    if not keep:
        raise CheckpointError(f"{path} holds no LIA encoder or motion weights", "expected LIA's vox.pt")
    return translate(keep, model, lambda k: lia_target(k, blocks), path.name, strict=False)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"unknown device {device!r}", "use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device} requested but CUDA is not available", "use --device cpu or auto")
    if resolved.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {device!r}", "use auto, cpu, cuda or cuda:N")
    return resolved
