"""``dpe info``: versions, devices and which weights would be used."""

from __future__ import annotations

import os
import platform

import typer

from dpe_cli import __version__
from dpe_cli.cli.common import DebugOption, JsonOption, print_json
from dpe_cli.errors import DPEError


def gather() -> dict:
    import torch

    from dpe_cli.checkpoint import resolve_weights

    try:
        import mediapipe

        mediapipe_version = mediapipe.__version__
    except Exception as exc:  # noqa: BLE001 - report, don't fail
        mediapipe_version = f"unavailable ({type(exc).__name__})"
    try:
        import imageio_ffmpeg

        ffmpeg = f"{imageio_ffmpeg.get_ffmpeg_version()} ({imageio_ffmpeg.get_ffmpeg_exe()})"
    except Exception as exc:  # noqa: BLE001
        ffmpeg = f"unavailable ({type(exc).__name__})"
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    try:
        weights = str(resolve_weights(None))
    except DPEError as exc:
        weights = f"none ({exc.hint})"
    return {
        "dpe": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mediapipe": mediapipe_version,
        "ffmpeg": ffmpeg,
        "devices": devices,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "weights": weights,
    }


def info(json_out: JsonOption = False, debug: DebugOption = False) -> None:
    """Versions of torch, mediapipe and ffmpeg, devices, threads and the weights found."""
    data = gather()
    if json_out:
        print_json(data)
        return
    for key, value in data.items():
        typer.echo(f"{key:>10}: {', '.join(value) if isinstance(value, list) else value}")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
