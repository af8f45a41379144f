"""``dpe batch MANIFEST --results DIR`` and ``dpe batch status DIR``: thin wrappers over
:mod:`dpe_cli.batch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.text import Text
from typer.core import TyperGroup

from dpe_cli.choices import AUDIO_CHOICES, EDIT_COMMANDS, RUN_PRECISIONS
from dpe_cli.cli.common import DEVICE_METAVAR, DebugOption, JsonOption, QuietOption, complete_devices, parse_device, print_json, print_result, stderr
from dpe_cli.errors import single_line


class _DefaultRun(TyperGroup):
    """``dpe batch MANIFEST ...`` runs; ``dpe batch status DIR`` reports."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


batch_app = typer.Typer(
    cls=_DefaultRun,
    help="Edit many videos in one process per worker: resumable, sharded with torchrun or SLURM.\n\n"
    "dpe batch MANIFEST --results DIR  (or --folder/--driver/--out-dir), dpe batch status DIR",
    no_args_is_help=True,
)


def _defaults(command: str | None, options: dict[str, Any], extra: list[str]) -> dict[str, Any]:
    """Options given to ``dpe batch``: defaults for every job (only those actually given)."""
    from dpe_cli.errors import InputError

    defaults = {k: v for k, v in options.items() if v not in (None, False)}
    if command:
        defaults["command"] = command
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option {item!r} is not KEY=VALUE", "e.g. --option box_scale=2.0")
        defaults[key.strip().replace("-", "_")] = value
    if "weights" in defaults:
        defaults["weights"] = str(Path(defaults["weights"]).expanduser().resolve())
    return defaults


@batch_app.command("run")
def run(
    manifest: Annotated[str | None, typer.Argument(help="Jobs, one per line: JSON lines or CSV with a header (source, driver, output, \\[command], \\[options]); - reads stdin.", show_default=False)] = None,
    results: Annotated[Path, typer.Option("--results", "-r", help="Folder for the results (one JSON line per job and worker); reruns skip what is done there.", show_default=False)] = ...,  # type: ignore[assignment]
    folder: Annotated[Path | None, typer.Option("--folder", help="Shorthand without a manifest: every video of this folder...", show_default=False)] = None,
    driver: Annotated[Path | None, typer.Option("--driver", "-d", help="...driven by this driver...", show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", help="...written to this folder as NAME-expression.mp4.", show_default=False)] = None,
    command: Annotated[Literal[EDIT_COMMANDS] | None, typer.Option("--command", help="Default command of the jobs.", show_default=False)] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Redo the jobs that failed before.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Redo every job, done or not.")] = False,
    shard: Annotated[str | None, typer.Option("--shard", help="This worker's share K/N (default: from torchrun or SLURM, else the whole batch).", show_default=False)] = None,
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help="Default checkpoint of the jobs.", show_default=False)] = None,
    device: Annotated[str | None, typer.Option("--device", parser=parse_device, metavar=DEVICE_METAVAR, autocompletion=complete_devices, help="Default device (auto: cuda:LOCAL_RANK under torchrun).", show_default=False)] = None,
    precision: Annotated[Literal[RUN_PRECISIONS] | None, typer.Option("--precision", help="Default precision (auto: bf16 where the hardware computes it and the model draws a check face within 45 dB of fp32, else fp32).", show_default=False)] = None,
    strength: Annotated[float | None, typer.Option("--strength", help="Default strength of the transferred motion.", show_default=False)] = None,
    relative: Annotated[bool, typer.Option("--relative", help="Drive every job relatively by default.")] = False,
    mask: Annotated[str | None, typer.Option("--mask", help="Default paste-back regions (face, mouth, eyes, box).", show_default=False)] = None,
    audio: Annotated[Literal[AUDIO_CHOICES] | None, typer.Option("--audio", help="Default audio track.", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Let jobs replace outputs that exist (outputs this batch wrote are replaced anyway when redone).")] = False,
    option: Annotated[list[str] | None, typer.Option("--option", "-O", metavar="KEY=VALUE", help="Any other default option as KEY=VALUE (e.g. box_scale=2, crf=20); repeatable.", show_default=False)] = None,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Run the jobs of MANIFEST (this worker's share); exit 0 when all are done, 1 when some
    failed (each failure is recorded and the batch goes on), 2 when the manifest is bad."""
    from dpe_cli.batch import folder_jobs, read_manifest, run_batch, shard_from
    from dpe_cli.errors import InputError
    from dpe_cli.progress import BatchReporter

    defaults = _defaults(command, {"weights": weights, "device": device, "precision": precision, "strength": strength,
                                   "relative": relative, "mask": mask, "audio": audio, "overwrite": overwrite}, option or [])
    shorthand = (folder, driver, out_dir)
    if manifest is not None and any(v is not None for v in shorthand):
        raise InputError("give a manifest or --folder/--driver/--out-dir, not both", "see dpe batch run --help")
    if manifest is None:
        if any(v is None for v in shorthand):
            raise InputError("no manifest given", "give MANIFEST (or -), or all of --folder, --driver and --out-dir")
        jobs = folder_jobs(folder, driver, out_dir, defaults, results)  # type: ignore[arg-type]
    else:
        jobs = read_manifest(manifest, defaults)
    worker = shard_from(shard)
    with BatchReporter(stderr, quiet=quiet) as reporter:
        summary = run_batch(jobs, results, worker, retry_failed=retry_failed, force=force, reporter=reporter)
    if json_out:
        print_json(summary.as_dict())
    if (not json_out and not quiet) or summary.exit_code:  # a failing batch says so even with -q
        line = f"{summary.done} done, {summary.skipped} already done, {summary.failed} failed of {summary.taken} jobs (worker {summary.worker})"
        hint = f"; {summary.not_retried} failed before and were not redone: pass --retry-failed to redo them" if summary.not_retried else ""
        if json_out:  # stdout holds the JSON alone
            stderr.print(Text(f"{line}{hint}; records in {summary.results}"))
        else:
            print_result(f"{line}{hint}; records in {summary.results}")
    raise typer.Exit(summary.exit_code)


@batch_app.command("status")
def status(
    results: Annotated[Path, typer.Argument(help="The results folder of a batch (all workers merged).", show_default=False)],
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Done, failed (reasons counted), pending, frames and time, over every worker."""
    from dpe_cli.batch import batch_status

    state = batch_status(results)
    if json_out:
        print_json(state.as_dict())
        return
    print_result(f"{state.done} done, {state.failed} failed, {state.pending} pending of {state.planned} jobs "
                 f"({state.frames} frames, {state.seconds:.1f} s of editing; workers: {_some(state.workers) or 'none'})")
    for reason, count in sorted(state.reasons.items(), key=lambda kv: -kv[1]):
        print_result(f"  {count} x {single_line(reason)}")
    if state.missing_workers:
        print_result(f"  never started: {len(state.missing_workers)} worker(s), {_some(state.missing_workers)} (their jobs are pending)")
    if state.unreadable:
        print_result(f"  could not read: {_some(state.unreadable)}")


def _some(names: list[str], shown: int = 5) -> str:
    """The first few names, and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
