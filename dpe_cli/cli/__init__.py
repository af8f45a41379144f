"""The ``dpe`` command: a Typer app whose commands call into the library.

``main`` is the console-script entry point and the one place a run ends. Every ending is one
line on stderr and an exit code: :class:`~dpe_cli.errors.DPEError` its own (2 for bad input),
a usage error (bad option value, unknown command) 2 with the hint to ``--help``, Ctrl-C 130,
SIGTERM 143 and SIGHUP 129 (after the same cleanup as an error), anything else 1; tracebacks
only with ``--debug`` (or ``DPE_DEBUG=1``).

The command modules import torch, OpenCV and mediapipe only inside their commands, so
``dpe --help``, ``dpe --version`` and shell completion answer at once.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer
from rich.text import Text

from dpe_cli import version
from dpe_cli.cli import batch_cmd, edit_cmd, eval_cmd, info_cmd, preview_cmd, synth_cmd, train_cmd, weights_cmd
from dpe_cli.cli.common import as_flags, stderr
from dpe_cli.cli.native_log import filtered_native_stderr
from dpe_cli.errors import EXIT_FAILURE, EXIT_OK, DPEError, single_line
from dpe_cli.interrupt import interruption, stop_signals_raise

app = typer.Typer(
    name="dpe",
    help="Video portrait editing with DPE: change expression or pose, reenact portraits.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=True,
)

for _module in (batch_cmd, edit_cmd, eval_cmd, info_cmd, preview_cmd, synth_cmd, train_cmd, weights_cmd):
    _module.register(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"dpe {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print dpe's version and exit.")
    ] = False,
) -> None:
    """Video portrait editing with DPE: change expression or pose, reenact portraits."""


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("DPE_DEBUG", "") not in ("", "0")


_ERROR = "[bold red]error:[/]"


def _say(label: str, text: str, exc: BaseException | None = None) -> None:
    """One line (``label`` is rich markup), then one per note the cleanup left on ``exc``."""
    stderr.print(Text.from_markup(label) + Text(f" {single_line(text)}"))  # the text as it is: paths may hold brackets
    for note in getattr(exc, "__notes__", ()):
        stderr.print(Text.assemble(("note:", "yellow"), f" {single_line(note)}"))


def _invoke(argv: list[str]) -> int:
    """Run the command without Typer's standalone handling, so that every exception (usage
    errors and interrupts included) reaches :func:`_run` as itself. A shell's completion
    request (``$_DPE_COMPLETE``, from ``dpe --install-completion``) is answered first."""
    command = typer.main.get_command(app)
    command._main_shell_completion({}, "dpe")
    with command.make_context("dpe", list(argv)) as ctx:
        command.invoke(ctx)
    return EXIT_OK


def _run(argv: list[str], debug: bool) -> int:
    try:
        if debug:
            return _invoke(argv)
        with filtered_native_stderr():
            return _invoke(argv)
    except KeyboardInterrupt as exc:
        stop = interruption(exc)
        if debug:
            traceback.print_exc()
        _say("[bold yellow]interrupted[/]", f"({stop.name}); stopped before finishing, no unfinished output is left", exc)
        return stop.exit_code
    except typer.Exit as exc:  # --help, and commands that choose their own exit code
        return exc.exit_code
    except typer.Abort:
        _say(_ERROR, "aborted")
        return EXIT_FAILURE
    except typer.TyperException as exc:  # usage errors: bad option value, unknown command
        message = exc.format_message()
        if message:  # empty when the help was shown instead (a command group with no args)
            ctx = getattr(exc, "ctx", None)
            _say(_ERROR, f"{message} (see {ctx.command_path if ctx else 'dpe'} --help)")
        return exc.exit_code
    except DPEError as exc:
        if debug:
            raise
        _say(_ERROR, as_flags(exc.one_line()), exc)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if debug:
            raise
        _say(_ERROR, f"{_label(exc)}{exc} (rerun with --debug for the traceback)", exc)
        return EXIT_FAILURE


def _label(exc: Exception) -> str:
    """``ValueError: `` and the like; none for OpenCV's ``error``, whose text says it."""
    name = type(exc).__name__
    return "" if name == "error" else f"{name}: "


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    with stop_signals_raise():
        code = _run(argv, _debug_requested(argv))
    sys.exit(code)
