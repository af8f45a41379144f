"""dpe: video portrait editing with DPE (Disentanglement of Pose and Expression, CVPR 2023).

Library first: ``from dpe_cli import load_model`` gives the network; the ``dpe`` command is
a thin layer over the modules in this package.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dpe_cli.errors import CheckpointError, DPEError, InputError  # noqa: E402
from dpe_cli.model import DPE, DPEConfig  # noqa: E402
from dpe_cli.checkpoint import load_model, save_model  # noqa: E402

__all__ = [
    "DPE",
    "DPEConfig",
    "DPEError",
    "InputError",
    "CheckpointError",
    "load_model",
    "save_model",
    "__version__",
]
