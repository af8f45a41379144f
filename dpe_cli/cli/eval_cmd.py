"""``dpe eval``: the paper's metrics on any model and any videos.

``compare`` scores an already generated video; ``reconstruction``, ``reenactment``,
``editing`` and ``tables`` run the paper's protocols with one or more models (or on
generated videos) and print the paper's tables. The work is in :mod:`dpe_cli.eval`
(the protocols end to end in :mod:`dpe_cli.eval.run`); this module only maps options to
requests and prints.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console
from rich.text import Text

from dpe_cli.cli.common import DebugOption, DeviceOption, JsonOption, QuietOption, print_json, stderr, stdout
from dpe_cli.errors import single_line
from dpe_cli.eval.run import MODES, PAPER_FRAMES, EvalOptions, Evaluation, ProtocolRequest, evaluate
from dpe_cli.progress import RichReporter

if TYPE_CHECKING:
    from rich.table import Table

    from dpe_cli.eval.compare import Comparison

eval_app = typer.Typer(
    help="Evaluate with the paper's metrics: PSNR, SSIM, LPIPS, CSIM, AED, APD.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

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


def _reporter(quiet: bool) -> RichReporter:
    """The bar on stderr that every eval command shows while it works; it vanishes before the
    tables are printed."""
    return RichReporter(stderr, quiet=quiet, transient=True)


def _print_notes(console: Console, lines: Sequence[str]) -> None:
    for line in lines:
        console.print(Text(single_line(line), style="dim"))


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
    from dpe_cli.eval.compare import score_video

    with _reporter(quiet) as reporter:
        comparison = score_video(
            generated, reference, pose_reference=pose_reference, identity_reference=identity_reference,
            max_frames=max_frames, lpips_weights=lpips_weights or (), csim=not no_csim, reporter=reporter,
        )  # fmt: skip
    _show(comparison, [comparison.table()], json_out, csv_path, per_frame, plot_path, quiet)


# The options every protocol command takes, in --help order, declared once (see _protocol).
_SHARED = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
    for name, annotation, default in (
        ("weights", ModelsOption, None),
        ("generated", GeneratedOption, None),
        ("device", DeviceOption, "auto"),
        ("max_frames", ProtocolFramesOption, PAPER_FRAMES),
        ("batch", BatchOption, 8),
        ("lpips_weights", LpipsOption, None),
        ("no_csim", NoCsimOption, False),
        ("json_out", JsonOption, False),
        ("csv_path", CsvOption, None),
        ("per_frame", PerFrameOption, False),
        ("plot_path", PlotOption, None),
        ("quiet", QuietOption, False),
        ("debug", DebugOption, False),
    )
]


def _show(
    result: Evaluation | Comparison, tables: list[Table], json_out: bool, csv_path: Path | None, per_frame: bool, plot_path: Path | None, quiet: bool
) -> None:
    """The files asked for, then the JSON or the tables with their notes."""
    if csv_path is not None:
        result.write_csv(csv_path, per_frame)
    if plot_path is not None:
        result.plot(plot_path)
    if json_out:
        print_json(result.to_dict(per_frame))
        return
    console = stdout  # unwrapped off a terminal: Table 3 is wider than 80 columns
    for table in tables:
        console.print(table)
    if not quiet:
        _print_notes(console, result.notes())


def _protocol(name: str, *, generated: bool = True) -> Callable[[Callable[..., ProtocolRequest]], Callable[..., None]]:
    """Register a protocol command. The decorated function declares the command's own inputs
    and its help, and turns them into a request with the ``options`` given; the options all
    protocols share (``_SHARED``, without --generated where ``generated`` is False) are
    added to its signature here, once, so Typer lists them for every command."""
    shared = [p for p in _SHARED if generated or p.name != "generated"]

    def register(build: Callable[..., ProtocolRequest]) -> Callable[..., None]:
        own = [p for p in inspect.signature(build, eval_str=True).parameters.values() if p.name != "options"]

        def command(**values: Any) -> None:
            s = {p.name: values.pop(p.name) for p in shared}
            options = EvalOptions(
                weights=s["weights"] or (), generated=s.get("generated") or (), device=s["device"],
                max_frames=s["max_frames"], batch=s["batch"], lpips_weights=s["lpips_weights"] or (), csim=not s["no_csim"],
            )  # fmt: skip
            request = build(**values, options=options)
            with _reporter(s["quiet"]) as reporter:
                evaluation = evaluate(request, reporter)
            _show(evaluation, evaluation.paper_tables(), s["json_out"], s["csv_path"], s["per_frame"], s["plot_path"], s["quiet"])

        command.__name__, command.__doc__ = build.__name__, build.__doc__
        command.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
        return eval_app.command(name)(command)

    return register


@_protocol("reconstruction")
def reconstruction_cmd(
    clips: Annotated[
        list[Path], typer.Argument(help="Face clips; each one's first frame is driven by the frames after it.")
    ],
    options: EvalOptions,
) -> ProtocolRequest:
    """Same-identity reconstruction (Table 3, left): PSNR, SSIM, LPIPS, AED, APD against the
    driver frame, CSIM against the source."""
    return ProtocolRequest("reconstruction", ("both",), clips=clips, options=options)


@_protocol("reenactment")
def reenactment_cmd(source: SourceOption = None, driver: DriverOption = None, *, options: EvalOptions) -> ProtocolRequest:
    """Cross-identity reenactment (Table 3, right): a portrait driven by another person's clip;
    CSIM against the portrait, AED and APD against the driver."""
    return ProtocolRequest("reenactment", ("both",), sources=source or (), drivers=driver or (), options=options)


@_protocol("editing")
def editing_cmd(
    clip: ClipOption = None,
    source: SourceOption = None,
    driver: DriverOption = None,
    mode: Annotated[
        Literal["expression", "pose"] | None,
        typer.Option("--mode", help="expression (Table 1) or pose (Table 2); default both tables.", show_default=False),
    ] = None,
    *,
    options: EvalOptions,
) -> ProtocolRequest:
    """Expression and pose editing (Tables 1 and 2). An expression edit should take the
    driver's expression (AED to the driver) and keep the source's pose (APD to the source); a
    pose edit the reverse. CSIM is against the source."""
    modes = (mode,) if mode else ("expression", "pose")
    return ProtocolRequest("editing", modes, clip or (), source or (), driver or (), options)


@_protocol("tables", generated=False)
def tables_cmd(
    clip: ClipOption = None, source: SourceOption = None, driver: DriverOption = None, *, options: EvalOptions
) -> ProtocolRequest:
    """All three of the paper's tables for the given models on your clips (--clip for same
    identity, --source/--driver pairs for cross identity)."""
    return ProtocolRequest("tables", MODES, clip or (), source or (), driver or (), options)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
