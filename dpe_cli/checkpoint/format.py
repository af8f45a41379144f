"""dpe's own checkpoint format: one ``.safetensors`` file, tensors under our names, the model
config in its metadata.

Loading runs no pickled code, and the declared config is checked against :class:`DPEConfig`
and against the header's tensor shapes before any tensor is read, so a damaged or foreign
file fails with a message instead of allocating or producing bad output.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import BinaryIO, TypeVar

import torch
from torch import Tensor

from dpe_cli import __version__
from dpe_cli.atomic import replacing
from dpe_cli.checkpoint.official import translate
from dpe_cli.errors import CheckpointError, InputError, single_line
from dpe_cli.model import DPE, DPEConfig

FORMAT_NAME = "dpe-cli"
FORMAT_VERSION = "1"
T = TypeVar("T")


def detect_format(path: Path) -> str:
    """``safetensors``, ``torch`` (zip or legacy pickle) from the first bytes, never the suffix."""
    if not path.exists():
        raise CheckpointError(f"weights file not found: {path}", "check the path (a .safetensors file or the official dpe.pt)")
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


def _safetensors_call(path: Path, read: Callable[[], T]) -> T:
    """``read()``, with safetensors' complaints about a damaged file as one CheckpointError."""
    from safetensors import SafetensorError

    try:
        return read()
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {single_line(str(exc))[:160]}", "the file is truncated or corrupt; convert or download it again") from exc


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
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
    """The declared config, within the bounds of :class:`DPEConfig` (checked before use); a
    field this version does not know is refused rather than silently dropped."""
    try:
        data = json.loads(metadata["config"])
        if not isinstance(data, dict):
            raise TypeError("the config is not an object")
        unknown = sorted(set(data) - {f.name for f in fields(DPEConfig)})
        if unknown:
            raise CheckpointError(
                f"{path} declares model config fields this dpe does not know ({', '.join(unknown)})",
                "it was written by a newer dpe_cli; upgrade dpe_cli to read it",
            )
        return DPEConfig.from_dict(data)
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


def read_safetensors(path: Path) -> tuple[DPE, dict[str, Tensor], dict[str, str]]:
    """The (unloaded) model a dpe file declares, its tensors and its metadata, all checked."""
    from safetensors.torch import load_file

    metadata, shapes = _read_header(path)
    config = _config_from_metadata(path, metadata)
    _check_declared_shapes(path, config, shapes)
    state = _safetensors_call(path, lambda: load_file(str(path)))
    return DPE(config), state, metadata


def save_model(model: DPE, path: str | Path, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the generator as one ``.safetensors`` file with its config in the metadata.

    The write is atomic: a crash never leaves a half-written file at ``path``.
    """
    path = Path(path)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "dpe_cli_version": __version__,
        **(extra_metadata or {}),
    }
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, tmp.open("wb") as fh:
        write_safetensors(fh, tensors, metadata)
    return path


def write_safetensors(fh: BinaryIO, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """The safetensors layout, written byte for byte the same for the same model: metadata keys
    and tensors in sorted order (the library's writer orders its metadata differently on each
    run, and makes its file 0600 whatever the umask). float32 tensors only."""
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    names = sorted(tensors)
    for name in names:
        tensor = tensors[name]
        if tensor.dtype != torch.float32:
            raise ValueError(f"{name}: only float32 tensors are written, not {tensor.dtype}")
        size = tensor.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    fh.write(struct.pack("<Q", len(text)))
    fh.write(text)
    for name in names:
        fh.write(tensors[name].contiguous().numpy().astype("<f4", copy=False).tobytes())
