"""The results folder of a batch: what each worker planned and what became of each job.

Each worker appends one JSON line per finished or failed job to its own
``results-K-of-N.jsonl`` (flushed and synced, so a killed worker loses at most the job it was
on) and writes the jobs it takes, with the batch's size and worker count, to
``plan-K-of-N.json`` (its own share only: 100k jobs over 50k workers stay small files). A
rerun reads every results file: a job whose latest record is ``done`` with the same
fingerprint (inputs, options, weights) and whose output still exists is skipped. ``dpe batch
status`` merges the files of all workers; the jobs of workers that never planned are pending.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpe_cli.atomic import replacing
from dpe_cli.errors import InputError

if TYPE_CHECKING:
    from dpe_cli.batch.manifest import Job
    from dpe_cli.batch.shard import Shard


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


def _is_record(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("output"), str) and value.get("status") in ("done", "failed")
            and isinstance(value.get("finished", 0), (int, float)))


def _read_lines(path: Path, unreadable: list[str] | None) -> list[dict]:
    """The records of one results file; a line that is none (cut by a hard kill, damaged) is
    named in ``unreadable``."""
    records = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = None
        if _is_record(value):
            records.append(value)
        elif unreadable is not None:
            unreadable.append(f"{path.name} line {number}")
    return records


def latest_records(folder: Path, unreadable: list[str] | None = None) -> dict[str, dict]:
    """The newest record of each job (by output), over every worker's results file."""
    records = [r for path in sorted(folder.glob("results-*.jsonl")) for r in _read_lines(path, unreadable)]
    records.sort(key=lambda r: r.get("finished", 0))
    return {r["output"]: r for r in records}


def written_outputs(folder: Path) -> list[str]:
    """The outputs a batch wrote into its results folder's records (none for a new folder)."""
    folder = folder.expanduser()
    if not folder.is_dir():
        return []
    return [output for output, record in latest_records(folder).items() if record["status"] == "done"]


class ResultLog:
    """One worker's results file and plan in the results folder."""

    def __init__(self, folder: Path, worker: str) -> None:
        folder = folder.expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{folder}: cannot create the results folder ({exc.strerror})", "give a writable `results` folder") from None
        self.folder = folder
        self.path = folder / f"results-{worker}.jsonl"
        self.plan_path = folder / f"plan-{worker}.json"
        self.worker = worker

    def write_plan(self, jobs: list[tuple[Job, str]], shard: Shard, total: int) -> None:
        """This worker's jobs, and the batch's size and worker count: enough for ``status`` to
        count the jobs of workers that never started."""
        plan = [{"output": job.key, "index": job.index, "line": job.line, "fingerprint": fp} for job, fp in jobs]
        with replacing(self.plan_path) as tmp:
            tmp.write_text(json.dumps({"worker": self.worker, "rank": shard.rank, "world": shard.world, "total": total, "jobs": plan}) + "\n")
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

    planned: int  # jobs in the batch: every worker's share, started or not
    done: int
    failed: int
    pending: int
    reasons: dict[str, int]
    frames: int
    seconds: float
    workers: list[str]  # those that planned
    missing_workers: list[str]  # of the batch's workers, those that never planned (while jobs are pending)
    unreadable: list[str]  # results lines and plan files that could not be read

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _reason(record: dict) -> str:
    kind = record.get("error_type") or "error"
    return f"{kind} (exit {record.get('exit_code', 1)})"


def _is_plan(value: Any) -> bool:
    jobs = value.get("jobs") if isinstance(value, dict) else None
    counts = [value.get(k, 0) for k in ("rank", "world", "total")] if isinstance(value, dict) else []
    return (isinstance(jobs, list) and all(isinstance(j, dict) and isinstance(j.get("output"), str) and isinstance(j.get("fingerprint"), str) for j in jobs)
            and all(isinstance(c, int) and c >= 0 for c in counts))


def _read_plans(folder: Path, unreadable: list[str]) -> list[dict]:
    plans = []
    for path in sorted(folder.glob("plan-*.json")):
        try:
            plan = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            plan = None
        if _is_plan(plan):
            plans.append({"worker": path.stem.removeprefix("plan-"), **plan})
        else:
            unreadable.append(f"{path.name} (not a plan)")
    return plans


def _not_a_results_folder(path: Path) -> InputError:
    """What a file given as the results folder is: one of its files, a manifest, or neither."""
    if path.name.startswith(("results-", "plan-")):
        return InputError(f"{path} is one worker's file of a results folder", f"pass the folder: dpe batch status {path.parent}")
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = next((line for line in handle if line.strip()), "")
    except OSError:
        first = ""
    if '"source"' in first or "source" in (h.strip() for h in first.split(",")):
        return InputError(f"{path} is a manifest, not a results folder", f"pass the folder given to `dpe batch {path.name} --results DIR`")
    return InputError(f"{path} is a file, not a results folder", "pass the folder given to dpe batch --results")


def batch_status(folder: Path) -> Status:
    """Merge every worker's plan and results: done, failed (reasons counted), pending (the jobs
    of workers that never planned included), and what could not be read."""
    folder = folder.expanduser()
    if folder.is_file():
        raise _not_a_results_folder(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such results folder", "give the folder passed to dpe batch --results")
    unreadable: list[str] = []
    plans = _read_plans(folder, unreadable)
    latest = latest_records(folder, unreadable)
    if not plans and not latest and not unreadable:
        raise InputError(f"{folder}: holds no batch results", "give the folder passed to dpe batch --results")
    planned = {entry["output"]: entry["fingerprint"] for plan in plans for entry in plan["jobs"]}
    keys = set(planned) | set(latest)
    done = [latest[k] for k in keys if k in latest and latest[k]["status"] == "done" and latest[k].get("fingerprint") == planned.get(k, latest[k].get("fingerprint"))]
    failed = [latest[k] for k in keys if k in latest and latest[k]["status"] == "failed"]
    total = max([len(keys)] + [plan.get("total", 0) for plan in plans])
    pending = total - len(done) - len(failed)
    ranks: dict[int, set[int]] = {}
    for plan in plans:
        if plan.get("world"):
            ranks.setdefault(plan["world"], set()).add(plan.get("rank", 0))
    missing = [f"{k}-of-{world}" for world, seen in sorted(ranks.items()) for k in range(world) if k not in seen] if pending else []
    return Status(
        planned=total, done=len(done), failed=len(failed), pending=pending,
        reasons=dict(Counter(_reason(r) for r in failed)), frames=sum(int(r.get("frames") or 0) for r in done),
        seconds=round(sum(float(r.get("seconds") or 0) for r in done), 2), workers=[plan["worker"] for plan in plans],
        missing_workers=missing, unreadable=unreadable,
    )
