"""What a batch's jobs would refuse at run time, checked for all of them before any job runs.

Each line's request was checked when the manifest was read (:func:`~dpe_cli.batch.manifest.make_jobs`);
here come what only the whole batch or this machine can say, through the same checks a single
edit makes: every output against every job's source and driver (a batch's inputs are all of
them, compared by identity), the output's type, folder and existence, the encoder's settings,
the weights file, the device and the precision. Missing output folders are made here (inside
folders that exist), before the model loads. The sources and drivers themselves (a missing,
corrupt or faceless video) are each job's own: such a job fails alone and the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from pathlib import Path
from dpe_cli.batch.manifest import Job, ManifestError
from dpe_cli.engine import run_device
from dpe_cli.errors import InputError
from dpe_cli.inputs import InputFiles
from dpe_cli.video.writer import check_output_target, check_output_type, check_writable, make_output_folder
from dpe_cli.weights import locate_weights


def batch_inputs(jobs: list[Job]) -> InputFiles:
    """Every job's source, driver and driver's neutral image: the files no job's output may be."""
    inputs = InputFiles()
    for job in jobs:
        inputs.add(job.request.source, f"{job.request.source} (source of {job.where()})")
        inputs.add(job.request.driver, f"{job.request.driver} (driver of {job.where()})")
        if isinstance(job.request.relative_to, Path):
            inputs.add(job.request.relative_to, f"{job.request.relative_to} (driver's neutral of {job.where()})")
    return inputs


def _once(jobs: list[Job], value: Callable[[Job], tuple[Hashable, ...]], check: Callable[..., object]) -> None:
    """Run ``check(*value(job))`` once per distinct value, naming the first job that gives it."""
    seen: set[tuple[Hashable, ...]] = set()
    for job in jobs:
        key = value(job)
        if key in seen:
            continue
        seen.add(key)
        try:
            check(*key)
        except InputError as exc:
            raise ManifestError(f"{job.where()}: {exc.message}", exc.hint) from None


def check_batch(jobs: list[Job], written: Collection[str] = ()) -> InputFiles:
    """Create the output folders the jobs name (see :func:`make_output_folder`), then refuse the
    batch (:class:`ManifestError`, naming the line) if any job would be refused at run time; ``written`` are the outputs this batch wrote before (they may be replaced).
    Returns the batch's inputs, for the check repeated when each output is moved into place."""
    inputs = batch_inputs(jobs)
    ours = set(written)
    later: list[Job] = []  # outputs whose folders are made once every other check has passed
    for job in jobs:
        r = job.request
        try:
            if make_output_folder(_folder(job), dry_run=True):
                check_output_type(r.output)
                later.append(job)
            else:
                check_output_target(r.output, r.overwrite or job.key in ours, inputs=inputs)
        except InputError as exc:
            raise ManifestError(f"{job.where()}: {exc.message}", exc.hint) from None
    existing = [job for job in jobs if job not in later]
    _once(existing, lambda job: (Path(job.key).parent,), check_writable)
    _once(jobs, lambda job: (job.request.weights,), locate_weights)
    _once(jobs, lambda job: (job.request.device, job.request.precision), run_device)
    for job in later:
        try:
            make_output_folder(_folder(job))
            check_output_target(job.request.output, job.request.overwrite or job.key in ours, inputs=inputs)
        except InputError as exc:
            raise ManifestError(f"{job.where()}: {exc.message}", exc.hint) from None
    return inputs


def _folder(job: Job) -> Path:
    """The folder the job's output goes in (a PNG sequence's own folder is the writer's)."""
    return Path(job.request.output).expanduser().absolute().parent
