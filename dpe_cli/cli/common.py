"""Options and helpers shared by the Typer commands (which stay thin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# Progress bars, warnings and errors go to stderr; stdout is kept for machine-readable output.
stderr = Console(stderr=True)

DebugOption = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        "-w",
        help="Checkpoint (.safetensors or official dpe.pt). Default: $DPE_WEIGHTS, then weights/.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda or cuda:N.")
]


def print_json(obj: Any) -> None:
    """One JSON object, one line, on stdout (for pipelines)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()
