"""``dpe batch``: many edits in one process (placeholder while the command is being built)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds ``dpe batch`` (nothing yet)."""
