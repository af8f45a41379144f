"""dpe: video portrait editing with DPE (Disentanglement of Pose and Expression, CVPR 2023).

Library first: ``from dpe_cli import load_model`` gives the network; the ``dpe`` command is
a thin layer over the modules in this package. The model and checkpoint names are imported
on first use, so that importing the package (and ``dpe --help``) does not load torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _distribution_version
from typing import TYPE_CHECKING, Any

from dpe_cli.errors import CheckpointError, DPEError, InputError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dpe_cli.checkpoint import load_model, save_model
    from dpe_cli.model import DPE, DPEConfig

_LAZY = {"DPE": "dpe_cli.model", "DPEConfig": "dpe_cli.model", "load_model": "dpe_cli.checkpoint", "save_model": "dpe_cli.checkpoint"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def version() -> str:
    """The installed distribution's version (what pip reports), else this source tree's."""
    try:
        return _distribution_version("dpe-cli")
    except PackageNotFoundError:
        return __version__


__all__ = [
    "DPE",
    "DPEConfig",
    "DPEError",
    "InputError",
    "CheckpointError",
    "load_model",
    "save_model",
    "version",
    "__version__",
]
