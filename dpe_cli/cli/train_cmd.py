"""``dpe train`` and ``dpe prepare-data``: thin wrappers over :mod:`dpe_cli.train`.

``python -m dpe_cli train`` is the same command, which is what ``torchrun`` needs:
``torchrun --nproc_per_node 4 -m dpe_cli train --data ... --out ...``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.text import Text

from dpe_cli.choices import CACHE_FORMATS, DEFAULT_BOX_SCALE, OBJECTIVES, PRECISIONS
from dpe_cli.cli.common import (
    DEVICE_METAVAR,
    DebugOption,
    JsonOption,
    QuietOption,
    complete_devices,
    parse_device,
    print_json,
    print_result,
    stderr,
)
from dpe_cli.errors import InputError, single_line
from dpe_cli.interrupt import interruption

_RUN = "Run"
_MODEL = "Model (new runs; --init and --resume bring their own)"
_LOSS = "Losses"
_DATA = "Data"
_OUTPUT = "Checkpoints and feedback"
_SPEED = "Speed and scale"


def _opt(*names: str, panel: str, help: str, **kwargs) -> typer.models.OptionInfo:  # noqa: A002, ANN003
    return typer.Option(*names, help=help, rich_help_panel=panel, **kwargs)


def train(
    data: Annotated[Path | None, _opt("--data", panel=_DATA, help="Folder of face clips: videos (mp4, mov, avi, mkv) or frame folders, flat or DIR/<identity>/<clip>. Not needed with --resume.")] = None,
    out: Annotated[Path, _opt("--out", "-o", panel=_RUN, help="Run folder: checkpoints, model.safetensors, metrics.jsonl, samples/.")] = Path("runs/dpe"),
    size: Annotated[int | None, _opt("--size", panel=_MODEL, help="Image size: 64, 128, 256 (official) or 512. \\[default: 256]", show_default=False)] = None,
    width: Annotated[float | None, _opt("--width", panel=_MODEL, help="Fraction of the official channel counts (0.25 trains 16x cheaper). \\[default: 1]", show_default=False)] = None,
    style_dim: Annotated[int | None, _opt("--style-dim", panel=_MODEL, help="Latent size. \\[default: 512]", show_default=False)] = None,
    motion_dim: Annotated[int | None, _opt("--motion-dim", panel=_MODEL, help="Motion directions. \\[default: 20]", show_default=False)] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", "-b", panel=_RUN, help="Global batch, split over all processes. \\[default: 32, the paper's]", show_default=False)] = None,
    steps: Annotated[int | None, _opt("--steps", panel=_RUN, help="Train until this step. \\[default: 100000 in stage 1, 50000 in stage 2]", show_default=False)] = None,
    stage: Annotated[int | None, _opt("--stage", panel=_RUN, help="1: train everything; 2: refine the expression generator and motion MLPs of --init. \\[default: 1]", show_default=False)] = None,
    init: Annotated[Path | None, _opt("--init", panel=_RUN, help="Start from: a dpe .safetensors, the official dpe.pt, or LIA's vox.pt (encoder and motion only).")] = None,
    resume: Annotated[bool, _opt("--resume", panel=_RUN, help="Continue the run in --out exactly where it stopped.")] = False,
    lr: Annotated[float | None, _opt("--lr", panel=_RUN, help="Learning rate. \\[default: 0.002 in stage 1, 0.0008 in stage 2]", show_default=False)] = None,
    seed: Annotated[int | None, _opt("--seed", panel=_RUN, help="Seed of initialisation and data sampling. \\[default: 0]", show_default=False)] = None,
    objective: Annotated[Literal[OBJECTIVES] | None, _opt("--objective", panel=_RUN, help="cycle: the paper's bidirectional cyclic training; reenactment: LIA's (S driven by all of D's motion should be D), the start the paper's training assumes; expression / pose: refine one edit of an --init model alone (expression, head-pose and self-reconstruction terms; see docs/training.md). \\[default: cycle]", show_default=False)] = None,
    vgg_weights: Annotated[Path | None, _opt("--vgg-weights", panel=_LOSS, help="torchvision's vgg19-dcbb9e9d.pth, for the perceptual losses (off without it).")] = None,
    expression_weights: Annotated[Path | None, _opt("--expression-weights", panel=_LOSS, help="Expression encoder: dpe's regressor .safetensors, DECA's deca_model.tar or an EMOCA export (off without it).")] = None,
    pose_weights: Annotated[Path | None, _opt("--pose-weights", panel=_LOSS, help="Head-pose reader for --pose-weight: dpe's pose regressor .safetensors or DECA's deca_model.tar.")] = None,
    reconstruction_weight: Annotated[float | None, _opt("--rec-weight", panel=_LOSS, help="L1 on <S'',D>, <D'',S>, <S',D'>. \\[default: 1]", show_default=False)] = None,
    perceptual_weight: Annotated[float | None, _opt("--perceptual-weight", panel=_LOSS, help="lambda_p: VGG pyramid on the same pairs. \\[default: 20]", show_default=False)] = None,
    self_weight: Annotated[float | None, _opt("--self-weight", panel=_LOSS, help="VGG pyramid on <e(S,S),S>, <p(S,S),S>; 0 is the ablation. \\[default: 20]", show_default=False)] = None,
    expression_weight: Annotated[float | None, _opt("--expression-weight", panel=_LOSS, help="lambda_e: expression loss on <S',D>, <D',D>. \\[default: 20]", show_default=False)] = None,
    pose_weight: Annotated[float | None, _opt("--pose-weight", panel=_LOSS, help="Not in the paper: head pose of S' and D' against S's (rules out the expression generator doing all the motion). \\[default: 0]", show_default=False)] = None,
    motion_weight: Annotated[float | None, _opt("--motion-weight", panel=_LOSS, help="Not in the paper: the motion vector must carry what the --expression-weights network reads (a fixed projection of d(D) - d(S) against its change). \\[default: 0]", show_default=False)] = None,
    gan_weight: Annotated[float | None, _opt("--gan-weight", panel=_LOSS, help="Non-saturating GAN loss; 0 also skips the discriminator. \\[default: 1]", show_default=False)] = None,
    pixel_pyramid: Annotated[bool | None, _opt("--pixel-pyramid/--no-pixel-pyramid", panel=_LOSS, help="Without --vgg-weights: the perceptual and self-reconstruction terms compare image pyramids (scales 1 to 1/8) by L1. \\[default: off]", show_default=False)] = None,
    max_frames: Annotated[int | None, _opt("--max-frames", panel=_DATA, help="Frames used per clip (the first N). \\[default: 500]", show_default=False)] = None,
    cache: Annotated[Path | None, _opt("--cache", panel=_DATA, help="Frame cache folder; share it between runs on the same data. \\[default: OUT/cache]", show_default=False)] = None,
    cache_format: Annotated[Literal[CACHE_FORMATS] | None, _opt("--cache-format", panel=_DATA, help="jpg (quality 95, compact) or png (lossless, ~5x larger). \\[default: jpg]", show_default=False)] = None,
    workers: Annotated[int | None, _opt("--workers", panel=_DATA, min=0, help="Data-loading and caching processes per training process; 0 loads in the main process. \\[default: CPUs per process - 1, at most 8]", show_default=False)] = None,
    save_every: Annotated[int | None, _opt("--save-every", panel=_OUTPUT, help="Checkpoint every N steps (and at the end, and on Ctrl-C/SIGTERM). \\[default: 1000]", show_default=False)] = None,
    keep: Annotated[int | None, _opt("--keep", panel=_OUTPUT, min=0, help="Checkpoints kept (newest); 0 keeps all. \\[default: 3]", show_default=False)] = None,
    log_every: Annotated[int | None, _opt("--log-every", panel=_OUTPUT, help="Append the losses to metrics.jsonl every N steps. \\[default: 10]", show_default=False)] = None,
    sample_every: Annotated[int | None, _opt("--sample-every", panel=_OUTPUT, help="Write samples/step-N.png (S, D, S', S'', D', D'') every N steps. \\[default: 500]", show_default=False)] = None,
    precision: Annotated[Literal[PRECISIONS] | None, _opt("--precision", panel=_SPEED, help="fp32, bf16 or fp16 (autocast; fp16 with loss scaling). \\[default: fp32]", show_default=False)] = None,
    channels_last: Annotated[bool | None, _opt("--channels-last/--no-channels-last", panel=_SPEED, help="NHWC memory format (faster convolutions on recent GPUs). \\[default: off]", show_default=False)] = None,
    device: Annotated[str | None, _opt("--device", panel=_SPEED, parser=parse_device, metavar=DEVICE_METAVAR, autocompletion=complete_devices, help="auto (CUDA when present), cpu, cuda; under torchrun each process takes cuda:LOCAL_RANK. \\[default: auto]", show_default=False)] = None,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Train DPE with the paper's bidirectional cyclic training (one CPU to many GPUs).

    Small model on a folder of face clips:  dpe train --data clips/ --out runs/small --size 128 --width 0.25 --batch-size 8 --vgg-weights weights/vgg19-dcbb9e9d.pth.
    Continue it:  dpe train --out runs/small --resume.  Scale out:  torchrun --nproc_per_node 8 -m dpe_cli train ... (see docs/training.md).
    """
    from dpe_cli.progress import RichReporter
    from dpe_cli.train.loop import train as run_training
    from dpe_cli.train.options import TrainOptions
    from dpe_cli.train.stopping import TrainingInterrupted

    options = TrainOptions(
        out=out, data=data, size=size, width=width, style_dim=style_dim, motion_dim=motion_dim,
        batch_size=batch_size, steps=steps, stage=stage, lr=lr, seed=seed, init=init, resume=resume,
        save_every=save_every, keep=keep, log_every=log_every, sample_every=sample_every,
        precision=precision, channels_last=channels_last, device=device, workers=workers,
        vgg_weights=vgg_weights, expression_weights=expression_weights,
        reconstruction_weight=reconstruction_weight, perceptual_weight=perceptual_weight,
        self_weight=self_weight, expression_weight=expression_weight, gan_weight=gan_weight, pixel_pyramid=pixel_pyramid,
        objective=objective, pose_weights=pose_weights, pose_weight=pose_weight, motion_weight=motion_weight,
        max_frames=max_frames, cache=cache, cache_format=cache_format,
    )  # fmt: skip
    try:
        with RichReporter(stderr, quiet=quiet) as reporter:
            result = run_training(options, reporter)
    except TrainingInterrupted as stop:
        stderr.print(Text.assemble(("stopped:", "yellow"), f" {stop.one_line()}"))
        raise typer.Exit(stop.exit_code) from None
    except KeyboardInterrupt as exc:  # a second Ctrl-C, SIGHUP, or a signal before training started
        stop = interruption(exc)
        stderr.print(Text.assemble(("interrupted", "yellow"), f" ({stop.name}; nothing new was saved)"))
        raise typer.Exit(stop.exit_code) from None
    if os.environ.get("RANK", "0") != "0":
        return
    if json_out:
        print_json({"step": result.step, "model": str(result.model), "checkpoint": str(result.checkpoint)})
    elif not quiet:
        print_result(f"step {result.step}, model {result.model}", label="done:")
        print_result(f"edit with it:  dpe edit-expression VIDEO --driver DRIVER --weights {result.model}")


def prepare_data(
    raw_dir: Annotated[Path, typer.Argument(help="Folder of raw videos (searched recursively).", show_default=False)],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the face crops (same layout, .mp4).", show_default=False)],
    size: Annotated[int, typer.Option("--size", help="Crop size in pixels.")] = 256,
    box_scale: Annotated[float, typer.Option("--box-scale", help="Crop box side relative to the face (as dpe edit-* uses).")] = DEFAULT_BOX_SCALE,
    face_index: Annotated[int, typer.Option("--face-index", min=0, help="Which face when several are visible: 0 is the largest.")] = 0,
    detect_every: Annotated[int, typer.Option("--detect-every", min=1, help="Run the face detector on every N-th frame.")] = 5,
    crf: Annotated[int, typer.Option("--crf", min=0, max=51, help="H.264 quality of the crops (lower is better).")] = 15,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Videos processed in parallel.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Redo crops that already exist.")] = False,
    quiet: QuietOption = False,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Crop raw videos to face clips for dpe train (the same detection and fixed box as dpe edit-*).

    Unreadable or faceless videos are skipped with a warning; finished crops are kept on a rerun.
    Exit code 2 when no video could be prepared.
    """
    from dpe_cli.train.prepare import PrepareSettings
    from dpe_cli.train.prepare import prepare_data as run_prepare

    def report(source: Path, error: str | None) -> None:
        if error is not None:
            stderr.print(Text.assemble(("warning:", "bold yellow"), f" skipping {source}: {single_line(error)}"))
        elif not quiet:
            stderr.print(Text(f"cropped {source}"))

    settings = PrepareSettings(size=size, face_index=face_index, box_scale=box_scale, detect_every=detect_every, crf=crf)
    summary = run_prepare(raw_dir, out_dir, settings, overwrite=overwrite, workers=workers, report=report)
    if json_out:
        print_json({
            "written": [str(p) for p in summary.written],
            "existing": [str(p) for p in summary.existing],
            "failed": [{"path": str(p), "error": e} for p, e in summary.failed],
        })  # fmt: skip
    elif not quiet and (summary.written or summary.existing):
        print_result(f"{len(summary.written)} cropped, {len(summary.existing)} already there, {len(summary.failed)} skipped -> {out_dir}", label="done:")
    if summary.failed and not (summary.written or summary.existing):
        raise InputError(
            f"nothing was prepared: all {len(summary.failed)} videos under {raw_dir} failed",
            "the warnings above name each video and why",
        )


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("prepare-data")(prepare_data)
