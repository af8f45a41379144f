"""``dpe eval``: the paper's metrics on any model and any videos.

``compare`` scores an already generated video; ``reconstruction``, ``reenactment``,
``editing`` and ``tables`` run the paper's protocols with one or more models (or on
generated videos) and print the paper's tables. The work is in :mod:`dpe_cli.eval`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dpe_cli.cli.common import DebugOption, DeviceOption, JsonOption, QuietOption, print_json, stderr
from dpe_cli.errors import InputError

eval_app = typer.Typer(
    help="Evaluate with the paper's metrics: PSNR, SSIM, LPIPS, CSIM, AED, APD.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

PAPER_FRAMES = 400  # driver frames per clip in the paper (Sec. 4.1)

LpipsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--lpips-weights",
        help="AlexNet + LPIPS v0.1 weights (one merged file, or give the option twice). Without it LPIPS is not computed.",
        show_default=False,
    ),
]
NoCsimOption = Annotated[bool, typer.Option("--no-csim", help="Skip CSIM (dlib) even when installed.")]
CsvOption = Annotated[
    Path | None, typer.Option("--csv", help="Write the means (per frame with --per-frame) as CSV.", show_default=False)
]
PerFrameOption = Annotated[bool, typer.Option("--per-frame", help="CSV and JSON hold one record per frame.")]
PlotOption = Annotated[
    Path | None, typer.Option("--plot", help="Write a PNG of the metrics over the frames.", show_default=False)
]
ModelsOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--weights",
        "-w",
        help="Checkpoint to evaluate; repeat to compare models (one table row each). Default: the weights `dpe weights path` shows.",
        show_default=False,
    ),
]
GeneratedOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--generated",
        help="Already generated videos instead of a model, one per clip/pair in order (one output frame per clip frame).",
        show_default=False,
    ),
]
ClipOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--clip",
        help="Same-identity clip: its first frame is the source, the frames after it drive. Repeatable.",
        show_default=False,
    ),
]
SourceOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--source",
        help="Cross-identity source portrait (image or video), paired in order with --driver. Repeatable.",
        show_default=False,
    ),
]
DriverOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--driver",
        help="Cross-identity driver clip of another person, paired in order with --source.",
        show_default=False,
    ),
]
ProtocolFramesOption = Annotated[
    int | None,
    typer.Option(
        "--max-frames",
        min=1,
        help="Driver frames per clip: the last N after the source (same identity), the first N (cross).",
    ),
]
BatchOption = Annotated[int, typer.Option("--batch", min=1, help="Frames per model call.")]


@contextmanager
def _progress(quiet: bool) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=quiet,
        transient=True,
    )
    with progress:
        yield progress


def _scorer(lpips_weights: list[Path] | None, no_csim: bool) -> Any:
    from dpe_cli.eval.scoring import Scorer

    return Scorer(lpips_weights=lpips_weights or (), use_identity=not no_csim)


def _table_console() -> Console:
    """stdout; wide enough for Table 3 when it is a file or pipe (rich assumes 80 columns)."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _print_notes(console: Console, lines: Sequence[str]) -> None:
    for line in lines:
        console.print(f"[dim]{line}[/]", highlight=False, soft_wrap=True)


@eval_app.command("compare")
def compare_cmd(
    generated: Annotated[Path, typer.Argument(help="The generated video (or image).")],
    reference: Annotated[
        Path, typer.Argument(help="What it should match: pixels, expression, and by default pose and identity.")
    ],
    pose_reference: Annotated[
        Path | None,
        typer.Option("--pose-reference", help="Measure APD against this video instead.", show_default=False),
    ] = None,
    identity_reference: Annotated[
        Path | None,
        typer.Option(
            "--identity-reference", help="Measure CSIM against this video or portrait instead.", show_default=False
        ),
    ] = None,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Score at most N frames.", show_default=False)
    ] = None,
    lpips_weights: LpipsOption = None,
    no_csim: NoCsimOption = False,
    json_out: JsonOption = False,
    csv_path: CsvOption = None,
    per_frame: PerFrameOption = False,
    plot_path: PlotOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Score GENERATED against REFERENCE frame by frame; print the mean of each metric.

    With --json: one object with psnr, ssim, lpips, csim, aed, apd (null when unavailable),
    psnr_capped, frames and frames_without_face.
    """
    from dpe_cli.eval.compare import compare_videos
    from dpe_cli.eval.report import compare_table, notes, plot, write_csv
    from dpe_cli.eval.scoring import summarise

    with _scorer(lpips_weights, no_csim) as scorer, _progress(quiet) as progress:
        task = progress.add_task(f"scoring {generated.name}", total=None)
        rows = compare_videos(
            generated,
            reference,
            scorer,
            pose_reference=pose_reference,
            identity_reference=identity_reference,
            max_frames=max_frames,
            on_total=lambda n: progress.update(task, total=n),
            on_frame=lambda: progress.advance(task),
        )
        unavailable = scorer.unavailable
    summary = summarise(rows, unavailable)
    if csv_path is not None:
        write_csv(csv_path, rows if per_frame else [summary])
    if plot_path is not None:
        plot(plot_path, [(generated.name, rows)])
    if json_out:
        print_json({**summary, "per_frame": rows} if per_frame else summary)
        return
    against = {m: reference.name for m in ("psnr", "ssim", "lpips", "aed")}
    against["apd"] = (pose_reference or reference).name
    against["csim"] = (identity_reference or reference).name
    console = _table_console()
    console.print(compare_table(summary, against))
    if not quiet:
        _print_notes(console, notes([summary]))


def _jobs(clips: Sequence[Path], sources: Sequence[Path], drivers: Sequence[Path]) -> list[Any]:
    from dpe_cli.eval.protocols import Job

    if len(sources) != len(drivers):
        raise InputError(
            f"{len(sources)} --source but {len(drivers)} --driver", "give one --driver per --source, in the same order"
        )
    jobs = [Job(driver=c) for c in clips] + [Job(driver=d, source=s) for s, d in zip(sources, drivers)]
    if not jobs:
        raise InputError(
            "no clips to evaluate",
            "give --clip CLIP (same identity) and/or --source PORTRAIT --driver CLIP (cross identity)",
        )
    return jobs


def _models(
    weights: Sequence[Path], generated: Sequence[Path], jobs: list[Any], modes: Sequence[str]
) -> tuple[list[tuple[str, Path | None]], list[Any]]:
    """(label, checkpoint) per table row, and the jobs with their generated videos attached."""
    from dpe_cli.checkpoint import resolve_weights

    if generated:
        if weights:
            raise InputError("--generated and --weights both given", "evaluate either a model or generated videos")
        if len(modes) != 1:
            raise InputError("--generated needs a single edit mode", "pass --mode expression or --mode pose")
        if len(generated) != len(jobs):
            raise InputError(
                f"{len(generated)} --generated for {len(jobs)} clips/pairs",
                "give one generated video per clip and per pair, in order",
            )
        return [("generated", None)], [replace(job, generated=g) for job, g in zip(jobs, generated)]
    paths = [resolve_weights(w) for w in weights] if weights else [resolve_weights(None)]
    stems = [p.stem for p in paths]
    # Table rows are named by file stem, or by the whole path where two stems collide.
    return [(stem if stems.count(stem) == 1 else str(p), p) for stem, p in zip(stems, paths)], jobs


def _expected_frames(job: Any, max_frames: int | None) -> int:
    from dpe_cli.video.probe import probe

    count = probe(job.driver).frame_count - (1 if job.source is None else 0)
    return max(0, min(count, max_frames) if max_frames else count)


def run_protocol(
    *,
    modes: Sequence[str],
    jobs: list[Any],
    weights: Sequence[Path],
    generated: Sequence[Path],
    device: str,
    max_frames: int | None,
    batch: int,
    lpips_weights: list[Path] | None,
    no_csim: bool,
    json_out: bool,
    csv_path: Path | None,
    per_frame: bool,
    plot_path: Path | None,
    quiet: bool,
    protocol: str,
) -> None:
    """Every model x mode x job; then the paper's table for each mode, and the files asked for."""
    from dpe_cli.checkpoint import load_model, resolve_device
    from dpe_cli.eval.protocols import JobResult, pool, run_job
    from dpe_cli.eval.report import notes, paper_table, plot, table_metrics, write_csv
    from dpe_cli.eval.scoring import summarise

    models, jobs = _models(weights, generated, jobs, modes)
    results: list[JobResult] = []
    with _scorer(lpips_weights, no_csim) as scorer, _progress(quiet) as progress:
        total = len(models) * len(modes) * sum(_expected_frames(job, max_frames) for job in jobs)
        task = progress.add_task("evaluating", total=total)
        advance: Callable[[int], None] = lambda n: progress.advance(task, n)
        for label, path in models:
            model = load_model(path, device=resolve_device(device)) if path is not None else None
            for mode in modes:
                for job in jobs:
                    progress.update(task, description=f"{label} {mode} {job.label}")
                    rows = run_job(
                        job, mode, scorer, model=model, max_frames=max_frames, batch=batch, on_frames=advance
                    )
                    results.append(JobResult(label, mode, job, rows))
        unavailable = scorer.unavailable

    pooled = pool(results, unavailable)
    tables = [{"model": m, "mode": mode, "setting": s, **summary} for (m, mode, s), summary in pooled.items()]
    per_job = [{**r.record(), **summarise(r.rows, unavailable)} for r in results]
    frames = [{**r.record(), **row} for r in results for row in r.rows]
    if csv_path is not None:
        everything = [{**t, "source": "(all)", "driver": "(all)"} for t in tables]
        write_csv(csv_path, frames if per_frame else per_job + everything)
    if plot_path is not None:
        plot(plot_path, [(f"{r.model} {r.mode} {r.job.label}", r.rows) for r in results])
    if json_out:
        out: dict[str, Any] = {"protocol": protocol, "max_frames": max_frames, "tables": tables, "jobs": per_job}
        if per_frame:
            out["per_frame"] = frames
        print_json(out)
        return
    console = _table_console()
    labels = [label for label, _ in models]
    for mode in modes:
        console.print(paper_table(mode, {(m, s): v for (m, md, s), v in pooled.items() if md == mode}, labels))
    if not quiet:
        shown = table_metrics((mode, setting) for _, mode, setting in pooled)
        _print_notes(console, notes(list(pooled.values()), shown))


@eval_app.command("reconstruction")
def reconstruction_cmd(
    clips: Annotated[
        list[Path], typer.Argument(help="Face clips; each one's first frame is driven by the frames after it.")
    ],
    weights: ModelsOption = None,
    generated: GeneratedOption = None,
    device: DeviceOption = "auto",
    max_frames: ProtocolFramesOption = PAPER_FRAMES,
    batch: BatchOption = 8,
    lpips_weights: LpipsOption = None,
    no_csim: NoCsimOption = False,
    json_out: JsonOption = False,
    csv_path: CsvOption = None,
    per_frame: PerFrameOption = False,
    plot_path: PlotOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Same-identity reconstruction (Table 3, left): PSNR, SSIM, LPIPS, AED, APD against the
    driver frame, CSIM against the source."""
    run_protocol(
        modes=["both"], jobs=_jobs(clips, [], []), weights=weights or [], generated=generated or [], device=device,
        max_frames=max_frames, batch=batch, lpips_weights=lpips_weights, no_csim=no_csim, json_out=json_out,
        csv_path=csv_path, per_frame=per_frame, plot_path=plot_path, quiet=quiet, protocol="reconstruction",
    )  # fmt: skip


@eval_app.command("reenactment")
def reenactment_cmd(
    source: SourceOption = None,
    driver: DriverOption = None,
    weights: ModelsOption = None,
    generated: GeneratedOption = None,
    device: DeviceOption = "auto",
    max_frames: ProtocolFramesOption = PAPER_FRAMES,
    batch: BatchOption = 8,
    lpips_weights: LpipsOption = None,
    no_csim: NoCsimOption = False,
    json_out: JsonOption = False,
    csv_path: CsvOption = None,
    per_frame: PerFrameOption = False,
    plot_path: PlotOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Cross-identity reenactment (Table 3, right): a portrait driven by another person's clip;
    CSIM against the portrait, AED and APD against the driver."""
    run_protocol(
        modes=["both"], jobs=_jobs([], source or [], driver or []), weights=weights or [], generated=generated or [],
        device=device, max_frames=max_frames, batch=batch, lpips_weights=lpips_weights, no_csim=no_csim,
        json_out=json_out, csv_path=csv_path, per_frame=per_frame, plot_path=plot_path, quiet=quiet, protocol="reenactment",
    )  # fmt: skip


@eval_app.command("editing")
def editing_cmd(
    clip: ClipOption = None,
    source: SourceOption = None,
    driver: DriverOption = None,
    mode: Annotated[
        Literal["expression", "pose"] | None,
        typer.Option("--mode", help="expression (Table 1) or pose (Table 2); default both tables.", show_default=False),
    ] = None,
    weights: ModelsOption = None,
    generated: GeneratedOption = None,
    device: DeviceOption = "auto",
    max_frames: ProtocolFramesOption = PAPER_FRAMES,
    batch: BatchOption = 8,
    lpips_weights: LpipsOption = None,
    no_csim: NoCsimOption = False,
    json_out: JsonOption = False,
    csv_path: CsvOption = None,
    per_frame: PerFrameOption = False,
    plot_path: PlotOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Expression and pose editing (Tables 1 and 2). An expression edit should take the
    driver's expression (AED to the driver) and keep the source's pose (APD to the source); a
    pose edit the reverse. CSIM is against the source."""
    run_protocol(
        modes=[mode] if mode else ["expression", "pose"], jobs=_jobs(clip or [], source or [], driver or []),
        weights=weights or [], generated=generated or [], device=device, max_frames=max_frames, batch=batch,
        lpips_weights=lpips_weights, no_csim=no_csim, json_out=json_out, csv_path=csv_path, per_frame=per_frame,
        plot_path=plot_path, quiet=quiet, protocol="editing",
    )  # fmt: skip


@eval_app.command("tables")
def tables_cmd(
    clip: ClipOption = None,
    source: SourceOption = None,
    driver: DriverOption = None,
    weights: ModelsOption = None,
    device: DeviceOption = "auto",
    max_frames: ProtocolFramesOption = PAPER_FRAMES,
    batch: BatchOption = 8,
    lpips_weights: LpipsOption = None,
    no_csim: NoCsimOption = False,
    json_out: JsonOption = False,
    csv_path: CsvOption = None,
    per_frame: PerFrameOption = False,
    plot_path: PlotOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """All three of the paper's tables for the given models on your clips (--clip for same
    identity, --source/--driver pairs for cross identity)."""
    run_protocol(
        modes=["expression", "pose", "both"], jobs=_jobs(clip or [], source or [], driver or []), weights=weights or [],
        generated=[], device=device, max_frames=max_frames, batch=batch, lpips_weights=lpips_weights, no_csim=no_csim,
        json_out=json_out, csv_path=csv_path, per_frame=per_frame, plot_path=plot_path, quiet=quiet, protocol="tables",
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
