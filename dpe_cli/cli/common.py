"""Options and helpers shared by the Typer commands (which stay thin).

Nothing here may import torch, OpenCV or mediapipe: every command module imports this, and
``dpe --help`` and shell completion must answer without loading them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from dpe_cli.choices import DEVICES, REGIONS
from dpe_cli.errors import OPTION

# Off a terminal (a pipe, a log file) a line is never wrapped: rich would break it at 80 columns.
_UNWRAPPED = 1_000_000


def console(*, to_stderr: bool) -> Console:
    """A console for results (stdout) or for everything else (stderr). Lines are never
    wrapped by us (a terminal wraps what is longer than its width); off a terminal the width
    is unlimited and there is no colour. ``NO_COLOR``, ``FORCE_COLOR`` and ``COLUMNS`` (on a
    terminal) work as rich reads them."""
    out = Console(stderr=to_stderr, soft_wrap=True, highlight=False)
    if not out.is_terminal:
        out.width = _UNWRAPPED
    return out


# A command's result (what it wrote, its report) goes to stdout; progress, notes, warnings and
# errors to stderr, so `dpe ... > log` keeps the result and `| grep` finds it.
stderr = console(to_stderr=True)
stdout = console(to_stderr=False)


def print_result(text: str, *, label: str = "", style: str = "green") -> None:
    """A command's result line on stdout: ``label`` (coloured on a terminal) then ``text``,
    printed as it is (no markup: paths may hold brackets)."""
    line = Text.assemble((label, style), " ", text) if label else Text(text)
    stdout.print(line)

DebugOption = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        "-w",
        help="Checkpoint (.safetensors or official dpe.pt). Default: $DPE_WEIGHTS, ./weights/, the user folder, then the shipped demo model (see `dpe weights path`).",
        show_default=False,
    ),
]


# The library's fields whose flag is not the field's name with dashes (``edit_start`` is
# ``--edit-start``): the one mapping from the library's words to the command line's.
_FLAGS = {"paste_method": "--paste", "reconstruction_weight": "--rec-weight", "sources": "--source", "drivers": "--driver",
          "clips": "--clip", "modes": "--mode"}


def flag(field: str) -> str:
    """The command-line flag that sets a request's field."""
    return _FLAGS.get(field, "--" + field.replace("_", "-"))


def as_flags(text: str) -> str:
    """A library message with each option (a field in backticks, see dpe_cli.errors) named by
    its flag, for the command line."""
    return OPTION.sub(lambda m: flag(m.group(1)), text)


def parse_device(value: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or a numbered GPU ``cuda:N`` (so not a plain choice)."""
    if value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise typer.BadParameter(f"{value!r} is not one of {', '.join(DEVICES)} or cuda:N")


def complete_regions(incomplete: str) -> list[str]:
    """Shell completion for ``--mask``: a region, or another one after those already joined
    by commas (``mouth,`` offers ``mouth,face``, ``mouth,eyes`` and ``mouth,box``)."""
    *chosen, last = incomplete.split(",")
    prefix = "".join(f"{name}," for name in chosen)
    return [prefix + name for name in REGIONS if name.startswith(last) and name not in chosen]


def complete_devices() -> list[str]:
    return list(DEVICES)


DEVICE_METAVAR = f"<{'|'.join(DEVICES)}|cuda:N>"
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        parser=parse_device,
        metavar=DEVICE_METAVAR,
        autocompletion=complete_devices,
        help="auto (CUDA when present), cpu, cuda or cuda:N.",
    ),
]


def print_json(obj: Any) -> None:
    """One JSON object, one line, on stdout (for pipelines)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()
