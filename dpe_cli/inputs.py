"""The files an output may never be: a run's inputs, compared by identity.

Two paths name one file when they resolve to the same path (symbolic links followed) or when
what they name shares a device and inode (hard links too). The set stats each input once, so
a batch checks every output against all of its jobs' inputs at the cost of one ``stat`` per
output. Torch- and OpenCV-free: ``dpe weights convert`` uses it as well as the video writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dpe_cli.errors import InputError


class InputFiles:
    """Inputs by resolved path and by (device, inode), each with the words that name it."""

    def __init__(self, paths: Iterable[str | Path] = ()) -> None:
        self._by_path: dict[Path, str] = {}
        self._by_id: dict[tuple[int, int], str] = {}
        self._holders: dict[Path, str] | None = None  # folders that hold an input, made when asked
        for path in paths:
            self.add(path)

    def add(self, path: str | Path, label: str | None = None) -> None:
        """One more input; ``label`` names it in messages (default: the path as given)."""
        resolved = Path(path).expanduser().resolve()
        if resolved in self._by_path:
            return
        name = label or str(path)
        self._by_path[resolved] = name
        self._holders = None
        try:
            info = os.stat(resolved)
        except OSError:  # missing: only its path can match
            return
        self._by_id.setdefault((info.st_dev, info.st_ino), name)

    def find(self, output: Path, folder: bool = False) -> tuple[str, bool] | None:
        """The input that ``output`` (resolved) is, or, for a frames ``folder``, holds; the bool
        says whether it holds it. None when it is none of them."""
        if output in self._by_path:
            return self._by_path[output], False
        try:
            info = os.stat(output)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) in self._by_id:
            return self._by_id[(info.st_dev, info.st_ino)], False
        if folder:
            if self._holders is None:
                self._holders = {}
                for path, name in self._by_path.items():
                    for parent in path.parents:
                        self._holders.setdefault(parent, name)
            if output in self._holders:
                return self._holders[output], True
        return None

    def refuse(self, output: Path, folder: bool = False) -> None:
        """An output that is an input (or a frames folder holding one) would destroy what the
        user gave us; no flag allows that."""
        found = self.find(output, folder)
        if found is not None:
            name, holds = found
            raise InputError(f"output {output} {'holds' if holds else 'is'} the input {name}", "choose another output path; an input is never overwritten")
