"""``dpe info``: versions, devices and which weights would be used."""

from __future__ import annotations

import os
import platform

import typer

from dpe_cli import version
from dpe_cli.cli.common import DebugOption, JsonOption, print_json
from dpe_cli.cli.weights_cmd import lookup_lines
from dpe_cli.weights import describe_lookup


def gather() -> dict:
    import torch

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
    return {
        "dpe": version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mediapipe": mediapipe_version,
        "ffmpeg": ffmpeg,
        "devices": devices,
        **_threads(torch),
        **_precision(),
        "cpu_count": os.cpu_count(),
        "weights": describe_lookup(),
    }


def _threads(torch) -> dict:
    """The thread count a run would use, and why ($DPE_THREADS, capped or refused, or torch's default)."""
    from dpe_cli.engine import THREADS_ENV, thread_setting
    from dpe_cli.errors import InputError

    try:
        threads, note = thread_setting()
    except InputError as exc:
        return {"threads": torch.get_num_threads(), "threads_from": f"{exc.message}: runs refuse it"}
    if threads is None:
        return {"threads": torch.get_num_threads(), "threads_from": "torch's default: one per physical core"}
    return {"threads": threads, "threads_from": note or f"${THREADS_ENV}"}


def _precision() -> dict:
    """The precision a run with the defaults (``--precision auto``, ``--device auto``) would use, and why."""
    from dpe_cli.device import choose_precision, resolve_device
    from dpe_cli.precision_check import AGREEMENT_DB

    chosen, why = choose_precision("auto", resolve_device("auto"))
    if chosen != "fp32":
        why += f"; fp32 for a model whose check face it draws under {AGREEMENT_DB:g} dB from fp32"
    return {"precision": chosen, "precision_from": why}


def info(json_out: JsonOption = False, debug: DebugOption = False) -> None:
    """Versions of torch, mediapipe and ffmpeg, devices, threads, and where the weights are looked for."""
    data = gather()
    if json_out:
        print_json(data)
        return
    lookup = data.pop("weights")
    why = {"threads": data.pop("threads_from"), "precision": data.pop("precision_from")}
    for key, value in data.items():
        text = ", ".join(value) if isinstance(value, list) else value
        typer.echo(f"{key:>10}: {text} ({why[key]})" if key in why else f"{key:>10}: {text}")
    typer.echo(f"{'weights':>10}: " + "\n            ".join(lookup_lines(lookup)))


def register(app: typer.Typer) -> None:
    app.command("info")(info)
