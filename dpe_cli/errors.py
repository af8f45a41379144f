"""Errors a user can act on.

Every failure caused by the user's input (files, options, checkpoints) is raised as a
:class:`DPEError` subclass carrying a one-line message that names the problem and the fix.
The CLI turns these into that line on stderr and the exit code below, with no traceback
unless ``--debug`` is given.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


# An option named in a message or hint is written as the library's field, in backticks
# (`edit_start`): Python callers see the name they passed, and the CLI shows its flag
# (--edit-start) through one mapping (dpe_cli.cli.common.as_flags).
OPTION = re.compile(r"`([a-z][a-z0-9_]*)`")


def as_fields(text: str) -> str:
    """``text`` with its option names bare (a batch manifest's fields are these names)."""
    return OPTION.sub(r"\1", text)


class DPEError(Exception):
    """Base class: a problem the user can fix. ``exit_code`` is what the CLI returns."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return single_line(f"{self.message} ({self.hint})" if self.hint else self.message)


def single_line(text: str) -> str:
    """``text`` on one line: whitespace runs collapsed, a leading ``error:`` dropped (the CLI
    adds its own; OpenCV's messages and ffmpeg's reasons bring theirs)."""
    text = " ".join(text.split())
    return re.sub(r"^(?:error:\s*)+", "", text, flags=re.IGNORECASE)


class InputError(DPEError):
    """Bad input file or option value (exit code 2)."""

    exit_code = EXIT_BAD_INPUT


class CheckpointError(InputError):
    """A weights file that is missing, corrupt, or of another architecture."""


class NoFaceError(InputError):
    """No face was found where one is required."""


class OutputExistsError(InputError):
    """The output exists and ``--overwrite`` was not given."""
