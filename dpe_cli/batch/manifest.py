"""Batch manifests: one editing job per line, as JSON lines or CSV, read and checked whole.

A job names ``source``, ``driver`` and ``output`` (relative paths are relative to the
manifest's folder, or to the working directory for a manifest on stdin), optionally the
``command`` (``edit-expression`` by default, ``edit-pose``, ``reenact``) and any option of the
single commands under its long name with underscores (``strength``, ``box_scale``, ``audio``,
...). Options given to ``dpe batch`` are defaults that a job's own values override. Every line
is checked, and its request built, before any job runs: a bad manifest costs no work.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dpe_cli.batch.results import written_outputs
from dpe_cli.choices import VIDEO_SUFFIXES
from dpe_cli.edit.commands import ALIASES, COMMANDS, build_request, option_names, public_names, takes
from dpe_cli.edit.request import EditRequest
from dpe_cli.errors import InputError, as_fields
from dpe_cli.inputs import InputFiles

REQUIRED = ("source", "driver", "output")


class ManifestError(InputError):
    """A manifest that cannot be run as written (exit code 2, before any job runs). Options
    are named as the manifest's fields (``strength``), not as flags."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(as_fields(message), None if hint is None else as_fields(hint))


@dataclass
class Job:
    """One line of the manifest, ready to run."""

    index: int  # position in the manifest (0-based): what sharding divides
    line: int  # line number in the manifest file, for messages
    command: str
    request: EditRequest
    options: dict[str, Any] = field(default_factory=dict)  # as given (after defaults), for the fingerprint
    manifest: str = "the manifest"  # its name in messages

    @cached_property
    def key(self) -> str:
        """What identifies the job across runs: its output."""
        return str(Path(self.request.output).expanduser().resolve())

    def where(self) -> str:
        """``jobs.jsonl line 3``: how messages name the job."""
        return f"{self.manifest} line {self.line}"


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique (json keeps the last of two silently)."""
    counts = Counter(key for key, _ in pairs)
    repeated = [key for key, n in counts.items() if n > 1]
    if repeated:
        raise _DuplicateKey(repeated[0])
    return dict(pairs)


def _rows(text: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, fields) of each job line; JSON lines when the first line is an object."""
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    rows: list[tuple[int, dict[str, Any]]] = []
    if first.startswith("{"):
        for number, raw in enumerate(lines, 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            try:
                value = json.loads(raw, object_pairs_hook=_unique_keys)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{name} line {number}: not valid JSON ({exc.msg})", "write one JSON object per line") from None
            except _DuplicateKey as exc:
                raise ManifestError(f"{name} line {number}: field {exc.args[0]!r} is given twice", "give each field once") from None
            if not isinstance(value, dict):
                raise ManifestError(f"{name} line {number}: not a JSON object", 'write {"source": ..., "driver": ..., "output": ...}')
            rows.append((number, value))
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ManifestError(f"{name} is empty", "give one job per line, as JSON lines or CSV with a header row")
    header = [h.strip() for h in reader.fieldnames]
    repeated = [h for h, n in Counter(header).items() if n > 1]
    if repeated:
        raise ManifestError(f"{name} line 1: column {repeated[0]!r} is given twice", "give each column once")
    reader.fieldnames = header
    for row in reader:
        number = reader.line_num
        if None in row:
            raise ManifestError(f"{name} line {number}: more fields than the header has", "quote fields that hold commas")
        if not any((v or "").strip() for v in row.values()):
            continue
        rows.append((number, {k: v for k, v in row.items() if v is not None and v.strip() != ""}))
    return rows


def _resolve(value: Any, base: Path, what: str, name: str, number: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{name} line {number}: {what} must be a path", f"give the {what} file")
    text = value.strip()
    path = Path(text).expanduser()
    resolved = path if path.is_absolute() else base / path
    return str(resolved) + ("/" if text.endswith("/") else "")


def _is_number(value: Any) -> bool:
    """Whether a manifest value reads as a number (``relative_to`` takes seconds or a path)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def make_jobs(rows: list[tuple[int, dict[str, Any]]], base: Path, defaults: dict[str, Any], name: str) -> list[Job]:
    """Check every row and build its request; duplicate outputs are refused."""
    known = set(option_names()) | set(ALIASES) | {"command", *REQUIRED}
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    strange = sorted(set(defaults) - known)
    if strange:
        raise ManifestError(f"unknown option {strange[0]!r} given to dpe batch", f"use one of: {', '.join(public_names())} (mode: reenact only)")
    for number, row in rows:
        unknown = sorted(set(row) - known)
        if unknown:
            raise ManifestError(f"{name} line {number}: unknown field {unknown[0]!r}", "use source, driver, output, command or an option's long name with underscores")
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise ManifestError(f"{name} line {number}: no {missing[0]}", "every job needs source, driver and output")
        command = str(row.get("command", defaults.get("command", "edit-expression")))
        if command not in COMMANDS:
            raise ManifestError(f"{name} line {number}: unknown command {command!r}", f"use one of: {', '.join(COMMANDS)}")
        # The batch's defaults reach the jobs whose command takes them (a default mode is
        # reenact's); a job's own fields must all be valid for its command.
        given = {k: v for k, v in defaults.items() if takes(command, k)}
        options = {k: v for k, v in {**given, **row}.items() if k not in ("command", *REQUIRED)}
        paths = {k: _resolve(row[k], base, k, name, number) for k in REQUIRED}
        if options.get("weights"):
            options["weights"] = _resolve(str(options["weights"]), base, "weights", name, number)
        if options.get("person"):
            options["person"] = _resolve(str(options["person"]), base, "person", name, number)
        if options.get("relative_to") and not _is_number(options["relative_to"]):
            options["relative_to"] = _resolve(str(options["relative_to"]), base, "relative_to", name, number)
        try:
            request = build_request(command, paths["source"], paths["driver"], paths["output"], **options)
        except InputError as exc:
            raise ManifestError(f"{name} line {number}: {exc.message}", exc.hint) from None
        job = Job(len(jobs), number, command, request, options, name)
        if job.key in seen:
            raise ManifestError(f"{name} line {number}: output {paths['output']} is also line {seen[job.key]}'s", "give every job its own output")
        seen[job.key] = number
        jobs.append(job)
    if not jobs:
        raise ManifestError(f"{name} holds no jobs", "give one job per line")
    return jobs


def read_manifest(path: str, defaults: dict[str, Any]) -> list[Job]:
    """Jobs of a manifest file, or of standard input for ``-``."""
    if path == "-":
        text, base, name = sys.stdin.read(), Path.cwd(), "the manifest on stdin"
    else:
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ManifestError(f"{file}: manifest not found", "check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{file}: cannot read the manifest ({exc})", "give a UTF-8 text file") from None
        base, name = file.resolve().parent, file.name
    return make_jobs(_rows(text, name), base, defaults, name)


def folder_jobs(folder: Path, driver: Path, out_dir: Path, defaults: dict[str, Any], results: Path | None = None) -> list[Job]:
    """The shorthand: every video of ``folder`` driven by one driver into ``out_dir``.

    Not taken as sources (compared by identity): what a batch wrote (the done records in
    ``results``), the driver, and a video that one of the jobs would write; so a rerun into the
    same folder finds the same jobs instead of editing its own outputs."""
    folder, out_dir = folder.expanduser(), out_dir.expanduser()
    if not folder.is_dir():
        raise ManifestError(f"{folder}: not a folder", "give the folder of videos to edit")
    videos = sorted(p.resolve() for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not videos:
        raise ManifestError(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)})", "check the folder")
    if not out_dir.is_dir():
        raise ManifestError(f"{out_dir}: output folder does not exist", "create it first")
    command = str(defaults.get("command", "edit-expression"))
    tag = {"edit-expression": "expression", "edit-pose": "pose", "reenact": "reenact"}.get(command, "edit")
    driver = driver.expanduser().resolve()
    not_sources = InputFiles([driver, *(written_outputs(results) if results is not None else ())])
    videos = [v for v in videos if not_sources.find(v) is None]
    would_write = InputFiles(out_dir.resolve() / f"{v.stem}-{tag}.mp4" for v in videos)
    videos = [v for v in videos if would_write.find(v) is None]
    if not videos:
        raise ManifestError(f"{folder}: no videos to edit besides the driver and this batch's outputs", "check the folder")
    rows = [(i + 1, {"source": str(v), "driver": str(driver), "output": str(out_dir.resolve() / f"{v.stem}-{tag}.mp4")})
            for i, v in enumerate(videos)]
    return make_jobs(rows, Path.cwd(), defaults, f"folder {folder}")
