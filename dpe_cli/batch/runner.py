"""One batch worker: its share of the jobs, one after another, in one process.

The model is loaded once per worker (per weights file, device and precision named by the
jobs), a driver shared by several jobs is framed and encoded once (:class:`DriverCache`), and
each job streams through the same pipeline as a single ``dpe`` command. A job that fails is
recorded with its error and exit-code class, and the batch goes on; an interruption (Ctrl-C,
SIGTERM) stops the batch, the current job's output is discarded as in a single run, and a
rerun redoes that job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from dpe_cli.batch.check import check_batch
from dpe_cli.batch.manifest import Job
from dpe_cli.batch.results import ResultLog, fingerprint, latest_records
from dpe_cli.batch.shard import Shard
from dpe_cli.checkpoint import resolve_weights
from dpe_cli.edit.drivers import DriverCache
from dpe_cli.edit.pipeline import EditJob
from dpe_cli.engine import Engine
from dpe_cli.errors import EXIT_FAILURE, DPEError, as_fields, single_line
from dpe_cli.progress import Reporter


@dataclass
class BatchSummary:
    jobs: int  # in the manifest
    worker: str
    taken: int  # this worker's share
    done: int = 0  # finished in this run
    skipped: int = 0  # already done with the same fingerprint
    failed: int = 0  # failed in this run, or earlier and not retried
    not_retried: int = 0  # of those, the ones that failed earlier (--retry-failed redoes them)
    frames: int = 0
    seconds: float = 0.0
    results: str = ""
    drivers_encoded: int = 0  # distinct drivers framed and encoded by this worker
    driver_reuses: int = 0  # jobs that reused one of them
    failures: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILURE if self.failed else 0

    def as_dict(self) -> dict:
        return {**self.__dict__, "exit_code": self.exit_code}


def _device(job: Job, shard: Shard) -> str:
    """torchrun's LOCAL_RANK picks the GPU when the job leaves the device to us."""
    if job.request.device == "auto" and shard.local_rank is not None:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    return job.request.device


def run_batch(
    jobs: list[Job],
    results: Path,
    shard: Shard,
    *,
    retry_failed: bool = False,
    force: bool = False,
    reporter: Reporter | None = None,
) -> BatchSummary:
    """Run this worker's share of ``jobs``, recording each outcome in ``results``. Every job
    of the batch is checked first (:func:`~dpe_cli.batch.check.check_batch`): a job that would
    be refused at run time refuses the batch before anything is written."""
    reporter = reporter or Reporter()
    folder = results.expanduser()
    previous = latest_records(folder) if folder.is_dir() else {}
    inputs = check_batch(jobs, [k for k, r in previous.items() if r["status"] == "done"])
    log = ResultLog(results, shard.name)
    mine = [job for job in jobs if shard.takes(job.index)]
    weights = {job.key: resolve_weights(job.request.weights) for job in mine}
    planned = [(job, fingerprint(job, weights[job.key])) for job in mine]
    log.write_plan(planned, shard, len(jobs))
    summary = BatchSummary(jobs=len(jobs), worker=shard.name, taken=len(mine), results=str(log.path))
    engines: dict[tuple, Engine] = {}
    drivers = DriverCache()
    title = f"batch ({shard.origin} {shard.rank + 1} of {shard.world})"
    overall = reporter.stage(f"{title}: jobs", len(mine), unit="job")
    try:
        for job, fp in planned:
            before = previous.get(job.key)
            same = before is not None and before.get("fingerprint") == fp and not force
            if same and before["status"] == "done" and Path(job.key).exists():
                summary.skipped += 1
                overall.advance()
                continue
            if same and before["status"] == "failed" and not retry_failed:
                summary.failed += 1
                summary.not_retried += 1
                summary.failures.append({"line": job.line, "output": job.key, "error": before.get("error"), "earlier": True})
                overall.advance()
                continue
            # An output this batch wrote before may be replaced; anything else needs overwrite.
            ours = before is not None and before["status"] == "done"
            request = replace(job.request, device=_device(job, shard), overwrite=job.request.overwrite or ours)
            try:
                key = (str(weights[job.key].resolve()), request.device, request.precision)
                if key not in engines:
                    engines[key] = Engine.load(job.request.weights, request.device, request.precision)  # says where it came from
                    engines[key].announce(reporter)
                report = EditJob(request, reporter, engines[key], drivers, inputs).run()
            except DPEError as exc:
                entry = log.record(job, fp, "failed", exit_code=exc.exit_code, error=as_fields(exc.one_line()), error_type=type(exc).__name__)
            except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the batch
                entry = log.record(job, fp, "failed", exit_code=EXIT_FAILURE, error=single_line(f"{type(exc).__name__}: {exc}"), error_type=type(exc).__name__)
            else:
                seconds = float(report["timings"].get("total", 0.0))
                log.record(job, fp, "done", frames=report["frames"], seconds=seconds, report=report)
                summary.done += 1
                summary.frames += int(report["frames"])
                summary.seconds += seconds
                overall.describe(f"{title}: jobs ({summary.frames} frames edited, {summary.failed} failed)")
                overall.advance()
                continue
            summary.failed += 1
            summary.failures.append({"line": job.line, "output": job.key, "error": entry["error"]})
            reporter.note(f"job on line {job.line} failed: {entry['error']}")
            overall.advance()
    finally:
        overall.close()
    summary.seconds = round(summary.seconds, 2)
    summary.drivers_encoded, summary.driver_reuses = len(drivers), drivers.hits
    return summary
