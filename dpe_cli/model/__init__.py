"""The DPE network: exact, small building blocks (see ``shared/docs/dpe-architecture.md``)."""

from dpe_cli.model.config import DPEConfig
from dpe_cli.model.discriminator import Discriminator
from dpe_cli.model.dpe import DPE, MODES, Encoding, Mode, check_mode

__all__ = ["DPE", "DPEConfig", "Discriminator", "Encoding", "Mode", "MODES", "check_mode"]
