"""``dpe synth``: render synthetic talking-face clips with exact pose and expression labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dpe_cli.choices import SYNTH_KINDS, SYNTH_MOTIONS, VIDEO_SUFFIXES
from dpe_cli.cli.common import DebugOption, JsonOption, QuietOption, print_json, print_result, stderr
from dpe_cli.errors import InputError, OutputExistsError


def parse_size(text: str | None) -> int | tuple[int, int] | None:
    """``"256"`` -> 256, ``"640x360"`` -> (640, 360), None stays None (the kind's default)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() for p in parts):
        values = [int(p) for p in parts]
        return values[0] if len(values) == 1 else (values[0], values[1])
    raise InputError(f"--size {text!r} is not a size", "use N for square crops, e.g. 256, or WxH for full frames, e.g. 640x360")


def synth(
    out: Annotated[Path, typer.Argument(help="Dataset folder (OUT/<identity>/<clip>.mp4), or a .mp4 file for one clip.", show_default=False)],
    identities: Annotated[int | None, typer.Option("--identities", "-n", help="Identities in the dataset (default 4).", show_default=False)] = None,
    clips: Annotated[int | None, typer.Option("--clips", help="Clips per identity (default 2).", show_default=False)] = None,
    frames: Annotated[int, typer.Option("--frames", help="Frames per clip.")] = 100,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips.")] = 25.0,
    size: Annotated[str | None, typer.Option("--size", help="N (square) or WxH. Crops: 64-512, default 256; full frames: default 640x360.", show_default=False)] = None,
    kind: Annotated[Literal[SYNTH_KINDS], typer.Option("--kind", help="crop: face crops; full: the head somewhere in a larger frame.")] = "crop",
    motion: Annotated[Literal[SYNTH_MOTIONS], typer.Option("--motion", help="smooth: head motion, speech-like mouth and blinks over time; keyframes: every frame an independent random pose and expression (crops only; training pairs that span each factor's range).")] = "smooth",
    seed: Annotated[int, typer.Option("--seed", help="First identity seed (identities are seed, seed+1, ...); also seeds motion and scenes.")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Clips rendered in parallel processes (datasets only).")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Write into an existing non-empty folder / replace the clip.")] = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Render procedural talking faces with per-frame pose and expression labels.

    Random identities, smooth head motion, speech-like mouth and blinks, as H.264 clips
    with labels in <clip>.labels.json.
    """
    from dpe_cli.progress import RichReporter
    from dpe_cli.synth.dataset import check_counts, check_motion, frame_size, write_clip, write_dataset

    dims = frame_size(kind, parse_size(size))
    check_motion(motion, kind)
    if out.suffix.lower() in VIDEO_SUFFIXES and out.suffix.lower() != ".mp4":
        raise InputError(f"{out.name}: synthetic clips are written as .mp4", "name the clip OUT.mp4, or give a folder for a dataset")
    single = out.suffix.lower() == ".mp4"
    if single and (identities is not None or clips is not None):
        raise InputError("--identities and --clips apply to datasets, not to one .mp4", "give a folder as OUT, or drop them")
    n_ids = 1 if single else (4 if identities is None else identities)
    n_clips = 1 if single else (2 if clips is None else clips)
    if single and out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists", "pass -y/--overwrite to replace it")
    if not single and out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file", "give a folder for a dataset, or a .mp4 path for one clip")
    if not single and out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} is not empty", "pass -y/--overwrite to write into it, or pick a new folder")
    check_counts(identities=n_ids, clips=n_clips, frames=frames, fps=fps, workers=workers)
    total = n_ids * n_clips * frames
    with RichReporter(stderr, quiet=quiet) as reporter:
        stage = reporter.stage("synth", total)
        if single:
            write_clip(out, seed, frames, fps, dims, kind, seed, motion, progress=stage.advance)
            paths = [out]
        else:
            paths = write_dataset(out, n_ids, n_clips, frames, fps, dims, kind, seed, workers, progress=stage.advance, motion=motion)
        stage.close()
    summary = {"output": str(out), "clips": len(paths), "frames": len(paths) * frames, "size": list(dims), "kind": kind, "motion": motion}
    if json_out:
        print_json(summary)
    elif not quiet:
        print_result(f"{len(paths)} clip(s), {summary['frames']} frames ({dims[0]}x{dims[1]} {kind}) to {out}", label="wrote")


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
