"""The training loop: one generator step then one discriminator step per iteration.

Runs the same on one CPU and on many GPUs: under ``torchrun`` each process takes an equal slice
of the global batch (:mod:`~dpe_cli.train.distributed`), and only rank 0 writes logs, sample
grids and checkpoints (:mod:`~dpe_cli.train.report`). SIGINT and SIGTERM finish the current
step, save, and stop, all ranks on the same step (:mod:`~dpe_cli.train.stopping`). Options are
resolved before anything loads (:mod:`~dpe_cli.train.options`); the models, optimizers and the
step itself are the :class:`~dpe_cli.train.trainer.Trainer`'s.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import torch

from dpe_cli.progress import Reporter
from dpe_cli.train.data import PairDataset, StepBatchSampler, make_loader, prepare_dataset
from dpe_cli.train.distributed import distributed
from dpe_cli.train.memory import check_batch_fits
from dpe_cli.train.options import TrainOptions, resolve_options, save_options
from dpe_cli.train.report import MetricsLog, format_losses, summary, write_sample
from dpe_cli.train.state import LATEST_MODEL, latest_checkpoint
from dpe_cli.train.stopping import StepAbandoned, StopRequests, TrainingInterrupted
from dpe_cli.train.trainer import Trainer

PREVIEW_PAIRS = 4


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run left its model (``OUT/model.safetensors``) and last checkpoint."""

    step: int
    model: Path
    checkpoint: Path


def train(request: TrainOptions, reporter: Reporter | None = None) -> TrainResult:
    """Run (or resume) training as ``request`` says; returns where the result is. ``reporter``
    (rank 0's) gets the run's description, warnings, and the caching and training passes."""
    options = resolve_options(request)
    with distributed(options.device) as env, _undone_on_failure(options, env.main):
        if env.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        trainer = Trainer(options, env, reporter or Reporter())
        trainer.build_models()
        options = trainer.options
        sharing = env.local_world if env.device.type == "cpu" else 1  # CPU ranks of one machine share its memory
        check_batch_fits(options.batch_size, options.size, options.width, env.device, env.world, sharing)
        trainer.build_objective()  # before the data: a bad weights file fails fast
        dataset = prepare_dataset(options, env, trainer.reporter)
        if options.resume:
            trainer.resume()
        elif env.main:
            save_options(options)
        trainer.place()
        summary(trainer, dataset)
        return _run(trainer, dataset)


@contextmanager
def _undone_on_failure(options: TrainOptions, main: bool) -> Iterator[None]:
    """A new run that ends before its first checkpoint (an error, a signal) removes what it
    created in OUT, the default frame cache included, so no half-made run is left to resume.
    Files that were there before, and a ``--cache`` outside OUT, stay."""
    out = options.out
    existed = out.is_dir()
    before = set(out.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if main and not options.resume and out.is_dir() and latest_checkpoint(out) is None:
            for entry in set(out.iterdir()) - before:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            if not existed:
                with suppress(OSError):
                    out.rmdir()
        raise


def _run(trainer: Trainer, dataset: PairDataset) -> TrainResult:
    o, env = trainer.options, trainer.env
    start = trainer.start_step
    sampler = StepBatchSampler(o.batch_size, start, o.steps, env.rank, env.world)
    loader = make_loader(dataset, sampler, env.loader_workers(o.workers), pin_memory=env.device.type == "cuda")
    metrics = MetricsLog(o.out, start, trainer.reporter.note) if env.main else None
    preview = tuple(trainer.images(images) for images in dataset.preview(PREVIEW_PAIRS)) if env.main else None
    step, saved_at, checkpoint = start, -1, o.out / LATEST_MODEL
    clock, clock_step = time.perf_counter(), start
    bar = trainer.reporter.stage("training", o.steps, completed=start, unit="step")
    try:
        with StopRequests() as stops:
            for source, driving in loader:
                losses = trainer.step(trainer.images(source), trainer.images(driving))
                stops.step_done()
                step += 1
                last = step == o.steps
                if step % o.log_every == 0 or last:
                    values = env.mean({k: float(v) for k, v in losses.items()})
                    now = time.perf_counter()
                    rate = (step - clock_step) * o.batch_size / max(now - clock, 1e-9)
                    clock, clock_step = now, step
                    if metrics is not None:
                        metrics.write({"step": step, **values, "lr": o.lr, "images_per_second": round(rate, 3)})
                    bar.detail(format_losses(values))
                bar.advance()
                if preview is not None and (step % o.sample_every == 0 or last):
                    grid = trainer.preview(*preview)
                    write_sample(o.out, step, grid)
                    metrics.image("samples", grid, step)
                if step % o.save_every == 0 or last:
                    if env.main:
                        checkpoint = trainer.save(step)
                    saved_at = step
                stop = env.any(stops.received is not None)
                if stop and not last:
                    if saved_at != step and env.main:
                        checkpoint = trainer.save(step)
                    env.wait_for_all()
                    raise TrainingInterrupted(step, stops.received or signal.SIGTERM)
        env.wait_for_all()
    except StepAbandoned as cut:
        last_saved = saved_at if saved_at >= 0 else (start or None)
        raise TrainingInterrupted(last_saved, cut.signum, abandoned=True) from None
    finally:
        bar.close()
        if metrics is not None:
            metrics.close()
    return TrainResult(step, o.out / LATEST_MODEL, checkpoint)
