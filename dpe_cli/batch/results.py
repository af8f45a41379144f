"""The results folder of a batch: what each worker planned and what became of each job.

Each worker appends one JSON line per finished or failed job to its own
``results-K-of-N.jsonl`` (flushed and synced, so a killed worker loses at most the job it was
on) and writes the jobs it takes to ``plan-K-of-N.json``. A rerun reads every results file:
a job whose latest record is ``done`` with the same fingerprint (inputs, options, weights) and
whose output still exists is skipped. ``dpe batch status`` merges the files of all workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpe_cli.atomic import replacing
from dpe_cli.batch.manifest import Job
from dpe_cli.errors import InputError


def _identity(path: Path | str | None) -> list[Any]:
    """A file as the fingerprint sees it: where, how big, when changed (hashing videos of
    gigabytes on every rerun would cost more than the check saves)."""
    if path is None:
        return [None]
    p = Path(path).expanduser()
    try:
        stat = p.stat()
    except OSError:
        return [str(p), None]
    return [str(p.resolve()), stat.st_size, stat.st_mtime_ns]


def fingerprint(job: Job, weights: Path) -> str:
    """What the job's output depends on: command, inputs, options and the weights file."""
    r = job.request
    options = {k: str(v) for k, v in sorted(job.options.items()) if k not in ("overwrite",)}
    payload = [job.command, _identity(r.source), _identity(r.driver), str(Path(r.output).expanduser().resolve()), options, _identity(weights)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _read_lines(path: Path) -> list[dict]:
    records = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            continue  # a line cut by a hard kill
        if isinstance(value, dict) and "output" in value:
            records.append(value)
    return records


def latest_records(folder: Path) -> dict[str, dict]:
    """The newest record of each job (by output), over every worker's results file."""
    records = [r for path in sorted(folder.glob("results-*.jsonl")) for r in _read_lines(path)]
    records.sort(key=lambda r: r.get("finished", 0))
    return {r["output"]: r for r in records}


class ResultLog:
    """One worker's results file and plan in the results folder."""

    def __init__(self, folder: Path, worker: str) -> None:
        folder = folder.expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{folder}: cannot create the results folder ({exc.strerror})", "give a writable --results folder") from None
        self.folder = folder
        self.path = folder / f"results-{worker}.jsonl"
        self.plan_path = folder / f"plan-{worker}.json"
        self.worker = worker

    def write_plan(self, jobs: list[tuple[Job, str]]) -> None:
        plan = [{"output": job.key, "index": job.index, "line": job.line, "fingerprint": fp} for job, fp in jobs]
        with replacing(self.plan_path) as tmp:
            tmp.write_text(json.dumps({"worker": self.worker, "jobs": plan}) + "\n")

    def record(self, job: Job, fp: str, status: str, **fields: Any) -> dict:
        entry = {"output": job.key, "index": job.index, "line": job.line, "command": job.command,
                 "source": str(job.request.source), "driver": str(job.request.driver), "fingerprint": fp,
                 "status": status, "worker": self.worker, "finished": time.time(), **fields}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return entry


@dataclass
class Status:
    """What a results folder says about its batch."""

    planned: int
    done: int
    failed: int
    pending: int
    reasons: dict[str, int]
    frames: int
    seconds: float
    workers: list[str]

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _reason(record: dict) -> str:
    kind = record.get("error_type") or "error"
    return f"{kind} (exit {record.get('exit_code', 1)})"


def batch_status(folder: Path) -> Status:
    """Merge every worker's plan and results: done, failed (reasons counted), pending."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such results folder", "give the folder passed to dpe batch --results")
    planned: dict[str, str] = {}
    workers = []
    for path in sorted(folder.glob("plan-*.json")):
        try:
            plan = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        workers.append(plan.get("worker", path.stem))
        planned.update({entry["output"]: entry["fingerprint"] for entry in plan.get("jobs", [])})
    latest = latest_records(folder)
    if not planned and not latest:
        raise InputError(f"{folder}: holds no batch results", "give the folder passed to dpe batch --results")
    keys = set(planned) | set(latest)
    done = [latest[k] for k in keys if k in latest and latest[k]["status"] == "done" and latest[k]["fingerprint"] == planned.get(k, latest[k]["fingerprint"])]
    failed = [latest[k] for k in keys if k in latest and latest[k]["status"] == "failed"]
    return Status(
        planned=len(keys), done=len(done), failed=len(failed), pending=len(keys) - len(done) - len(failed),
        reasons=dict(Counter(_reason(r) for r in failed)), frames=sum(int(r.get("frames") or 0) for r in done),
        seconds=round(sum(float(r.get("seconds") or 0) for r in done), 2), workers=workers,
    )
