"""The ``dpe`` command: a Typer app whose commands call into the library.

``main`` is the console-script entry point. It turns :class:`~dpe_cli.errors.DPEError` into
one line on stderr and its exit code (2 for bad input), and any other exception into exit
code 1; tracebacks only with ``--debug`` (or ``DPE_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys

import typer

from dpe_cli.cli import edit_cmd, eval_cmd, info_cmd, synth_cmd, train_cmd, weights_cmd
from dpe_cli.cli.common import stderr
from dpe_cli.cli.native_log import filtered_native_stderr
from dpe_cli.errors import EXIT_FAILURE, DPEError

app = typer.Typer(
    name="dpe",
    help="Video portrait editing with DPE: change expression or pose, reenact portraits.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _module in (edit_cmd, eval_cmd, info_cmd, synth_cmd, train_cmd, weights_cmd):
    _module.register(app)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("DPE_DEBUG", "") not in ("", "0")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = _debug_requested(argv)
    try:
        # Standalone mode: Typer reports usage errors itself (exit code 2) and exits.
        if debug:
            app(args=argv, prog_name="dpe")
        else:
            with filtered_native_stderr():
                app(args=argv, prog_name="dpe")
    except DPEError as exc:
        if debug:
            raise
        stderr.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True, markup=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for users
        if debug:
            raise
        stderr.print(
            f"[bold red]error:[/] {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(EXIT_FAILURE)
