"""``dpe weights convert`` and ``dpe weights info``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpe_cli.checkpoint import CheckpointInfo, convert, read_checkpoint
from dpe_cli.cli.common import DebugOption, JsonOption, print_json, stderr
from dpe_cli.errors import InputError, OutputExistsError

weights_app = typer.Typer(help="Inspect and convert DPE checkpoints.", no_args_is_help=True)


def _describe(info: CheckpointInfo) -> dict:
    return {
        "path": str(info.path),
        "format": info.format,
        "config": info.config.to_dict(),
        "parameters": info.parameters,
        "sha256": info.sha256,
        "metadata": {k: v for k, v in info.metadata.items() if k != "config"},
    }


@weights_app.command("info")
def info_command(
    path: Annotated[Path, typer.Argument(help="A .safetensors file or the official dpe.pt.")],
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show a checkpoint's format, model config, parameter count and sha256."""
    _, info = read_checkpoint(path)
    desc = _describe(info)
    if json_out:
        print_json(desc)
        return
    for key in ("path", "format", "config", "parameters", "sha256"):
        value = f"{desc[key]:,}" if key == "parameters" else desc[key]
        typer.echo(f"{key:>10}: {value}")
    for key, value in desc["metadata"].items():
        typer.echo(f"{key:>10}: {value}")


@weights_app.command("convert")
def convert_command(
    source: Annotated[Path, typer.Argument(help="Checkpoint to convert (e.g. the official dpe.pt).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Target .safetensors file.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output.")] = False,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Convert a checkpoint to dpe's safetensors format (config inside, no pickle to load)."""
    if output.suffix != ".safetensors":
        raise InputError(f"output {output} must end in .safetensors", "e.g. -o weights/dpe.safetensors")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists", "pass -y/--overwrite to replace it")
    info = convert(source, output)
    if json_out:
        print_json(_describe(info))
    else:
        stderr.print(f"wrote {output} ({info.parameters:,} parameters, sha256 {info.sha256[:12]}…)")


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
