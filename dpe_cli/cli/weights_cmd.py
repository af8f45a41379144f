"""``dpe weights path``, ``install``, ``info`` and ``convert``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dpe_cli.cli.common import DebugOption, JsonOption, WeightsOption, print_json, print_result
from dpe_cli.errors import InputError
from dpe_cli.weights import describe_lookup

if TYPE_CHECKING:
    from dpe_cli.checkpoint import CheckpointInfo

weights_app = typer.Typer(help="Find, install, inspect and convert DPE checkpoints.", no_args_is_help=True)


def lookup_lines(lookup: dict) -> list[str]:
    """``describe_lookup`` as text: each place in order with what it offers, then the choice."""
    lines = ["searched, in order:"]
    for i, place in enumerate(lookup["searched"], 1):
        if place["path"] is None:
            found = "(not given)"
        elif place["offers"]:
            found = f"{place['path']} -> {Path(place['offers']).name}"
        elif place["exists"] is False:
            found = f"{place['path']} (no such folder)"
        elif place["passed_over"]:
            found = f"{place['path']} (only {', '.join(place['passed_over'])}: demo models come last)"
        else:
            found = f"{place['path']} (no model)" if place["exists"] else place["path"]
        lines.append(f"  {i}. {place['origin']:<13} {found}")
    selected = lookup["selected"]
    if selected is None:
        lines.append(f"a run would use: nothing ({lookup['error']})")
    else:
        lines.append(f"a run would use: {selected['path']} ({selected['size'] / 1e6:.1f} MB, {selected['origin']})")
    if lookup["note"]:
        lines.append(f"note: {lookup['note']}")
    return lines


@weights_app.command("path")
def path_command(weights: WeightsOption = None, json_out: JsonOption = False, debug: DebugOption = False) -> None:
    """Show where checkpoints are looked for, in order, and which file a run would use."""
    lookup = describe_lookup(weights)
    if json_out:
        print_json(lookup)
        return
    for line in lookup_lines(lookup):
        typer.echo(line)


@weights_app.command("install")
def install_command(
    source: Annotated[Path, typer.Argument(help="Checkpoint to install: the official dpe.pt or a dpe .safetensors file.", show_default=False)],
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an installed file of the same name.")] = False,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Check that a checkpoint loads and copy it into your user weights folder, where every
    run finds it from any directory (dpe.pt is converted to dpe.safetensors on the way)."""
    from dpe_cli.checkpoint import install

    info = install(source, overwrite=overwrite)
    if json_out:
        print_json(_describe(info))
    else:
        print_result(f"{info.path} ({info.parameters:,} parameters, sha256 {info.sha256[:12]}…)", label="installed")


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
    from dpe_cli.checkpoint import read_checkpoint

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
    """Convert a checkpoint to dpe's safetensors format (config inside, no pickle to load).
    The output may never be the input (nor a link to it), even with -y."""
    from dpe_cli.checkpoint import convert

    if output.suffix != ".safetensors":
        raise InputError(f"output {output} must end in .safetensors", "e.g. -o weights/dpe.safetensors")
    info = convert(source, output, overwrite=overwrite)
    if json_out:
        print_json(_describe(info))
    else:
        print_result(f"{output} ({info.parameters:,} parameters, sha256 {info.sha256[:12]}…)", label="wrote")


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
