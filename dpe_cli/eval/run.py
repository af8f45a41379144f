"""The paper's protocols end to end, callable from Python: which models, every model x mode x
job, the pooled tables, and the JSON, CSV and plot that ``dpe eval`` writes.

Example::

    from dpe_cli.eval import EvalOptions, reconstruction
    result = reconstruction([Path("clip.mp4")], EvalOptions(weights=[Path("dpe.safetensors")], max_frames=50))
    print(result.to_dict()["tables"])

A request is checked whole (pairs, counts, modes, limits) when it is created, and the
weights are looked up before the scorer or any model loads, so a mistake costs no waiting.
Scoring and video modules are imported on first use: the CLI imports this module at start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpe_cli.bounds import check_all
from dpe_cli.errors import InputError
from dpe_cli.progress import Reporter

if TYPE_CHECKING:
    from rich.table import Table

    from dpe_cli.eval.protocols import Job, JobResult

PAPER_FRAMES = 400  # driver frames per clip in the paper (Sec. 4.1)
MODES = ("expression", "pose", "both")


def _paths(paths: Iterable[Path | str]) -> tuple[Path, ...]:
    return tuple(Path(p) for p in paths)


@dataclass(frozen=True)
class EvalOptions:
    """What every protocol shares: the models (or already generated videos, one per clip and
    pair in order), how they run, and what is scored."""

    weights: Sequence[Path] = ()
    generated: Sequence[Path] = ()
    device: str = "auto"
    max_frames: int | None = PAPER_FRAMES
    batch: int = 8
    lpips_weights: Sequence[Path] = ()
    csim: bool = True

    def __post_init__(self) -> None:
        for name in ("weights", "generated", "lpips_weights"):
            object.__setattr__(self, name, _paths(getattr(self, name)))
        check_all({"batch": self.batch, "max_frames": self.max_frames})


@dataclass(frozen=True)
class ProtocolRequest:
    """One protocol run: same-identity ``clips`` and cross-identity ``sources``/``drivers``
    pairs, each evaluated in every one of ``modes``."""

    protocol: str
    modes: Sequence[str]
    clips: Sequence[Path] = ()
    sources: Sequence[Path] = ()
    drivers: Sequence[Path] = ()
    options: EvalOptions = field(default_factory=EvalOptions)

    def __post_init__(self) -> None:
        for name in ("clips", "sources", "drivers"):
            object.__setattr__(self, name, _paths(getattr(self, name)))
        object.__setattr__(self, "modes", tuple(self.modes))
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise InputError(f"unknown edit mode {unknown[0]!r}" if unknown else "no edit mode", "use expression, pose or both")
        if len(self.sources) != len(self.drivers):
            raise InputError(
                f"{len(self.sources)} `sources` but {len(self.drivers)} `drivers`",
                "give one of `drivers` per one of `sources`, in the same order",
            )
        if not self.clips and not self.sources:
            raise InputError(
                "no clips to evaluate",
                "give `clips` CLIP (same identity) and/or `sources` PORTRAIT `drivers` CLIP (cross identity)",
            )
        generated = self.options.generated
        if generated:
            if self.options.weights:
                raise InputError("`generated` and `weights` both given", "evaluate either a model or generated videos")
            if len(self.modes) != 1:
                raise InputError("`generated` needs a single edit mode", "pass `modes` expression or `modes` pose")
            jobs = len(self.clips) + len(self.sources)
            if len(generated) != jobs:
                raise InputError(
                    f"{len(generated)} `generated` for {jobs} clips/pairs",
                    "give one generated video per clip and per pair, in order",
                )

    @property
    def jobs(self) -> list[Job]:
        """Same-identity jobs first, then the pairs; with their generated videos attached."""
        from dpe_cli.eval.protocols import Job

        jobs = [Job(driver=c) for c in self.clips] + [Job(driver=d, source=s) for s, d in zip(self.sources, self.drivers)]
        if self.options.generated:
            return [replace(job, generated=g) for job, g in zip(jobs, self.options.generated)]
        return jobs

    def models(self) -> list[tuple[str, Path | None]]:
        """(table row label, checkpoint) per model: looked up, not loaded. Rows are named by
        file stem, or by the whole path where two stems collide."""
        from dpe_cli.weights import resolve_weights

        if self.options.generated:
            return [("generated", None)]
        weights = self.options.weights
        paths = [resolve_weights(w) for w in weights] if weights else [resolve_weights(None)]
        stems = [p.stem for p in paths]
        return [(stem if stems.count(stem) == 1 else str(p), p) for stem, p in zip(stems, paths)]


def _expected_frames(job: Job, max_frames: int | None) -> int:
    from dpe_cli.video.probe import probe

    count = probe(job.driver).frame_count - (1 if job.source is None else 0)
    return max(0, min(count, max_frames) if max_frames else count)


@dataclass(frozen=True)
class Evaluation:
    """A protocol's per-frame rows for every model x mode x job, and what is made of them."""

    request: ProtocolRequest
    models: tuple[str, ...]  # table row labels, in order
    results: tuple[JobResult, ...]
    unavailable: dict[str, str]  # metric -> why it was not computed

    @cached_property
    def pooled(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Summary per (model, mode, setting) over all its frames, as the paper pools."""
        from dpe_cli.eval.protocols import pool

        return pool(list(self.results), self.unavailable)

    def tables(self) -> list[dict[str, Any]]:
        return [{"model": m, "mode": mode, "setting": s, **summary} for (m, mode, s), summary in self.pooled.items()]

    def per_job(self) -> list[dict[str, Any]]:
        from dpe_cli.eval.scoring import summarise

        return [{**r.record(), **summarise(r.rows, self.unavailable)} for r in self.results]

    def frames(self) -> list[dict[str, Any]]:
        return [{**r.record(), **row} for r in self.results for row in r.rows]

    def to_dict(self, per_frame: bool = False) -> dict[str, Any]:
        """What ``--json`` prints: the pooled tables, a summary per job, and with ``per_frame``
        every frame's row."""
        out: dict[str, Any] = {
            "protocol": self.request.protocol,
            "max_frames": self.request.options.max_frames,
            "tables": self.tables(),
            "jobs": self.per_job(),
        }
        if per_frame:
            out["per_frame"] = self.frames()
        return out

    def write_csv(self, path: Path, per_frame: bool = False) -> None:
        """One row per job and per pooled table (source and driver "(all)"), or per frame."""
        from dpe_cli.eval.report import write_csv

        everything = [{**t, "source": "(all)", "driver": "(all)"} for t in self.tables()]
        write_csv(path, self.frames() if per_frame else self.per_job() + everything)

    def plot(self, path: Path) -> None:
        from dpe_cli.eval.report import plot

        plot(path, [(f"{r.model} {r.mode} {r.job.label}", r.rows) for r in self.results])

    def paper_tables(self) -> list[Table]:
        """The paper's table for each mode, a row per model."""
        from dpe_cli.eval.report import paper_table

        return [
            paper_table(mode, {(m, s): v for (m, md, s), v in self.pooled.items() if md == mode}, list(self.models))
            for mode in self.request.modes
        ]

    def notes(self) -> list[str]:
        """The tables' footnotes, naming only unavailable metrics the tables show."""
        from dpe_cli.eval.report import notes, table_metrics

        shown = table_metrics((mode, setting) for _, mode, setting in self.pooled)
        return notes(list(self.pooled.values()), shown)


def evaluate(request: ProtocolRequest, reporter: Reporter | None = None) -> Evaluation:
    """Run every model x mode x job of ``request``; ``reporter`` sees one pass over all frames."""
    from dpe_cli.device import resolve_device
    from dpe_cli.engine import Engine
    from dpe_cli.eval.protocols import JobResult, run_job
    from dpe_cli.eval.scoring import Scorer

    options, jobs = request.options, request.jobs
    models = request.models()
    device = resolve_device(options.device) if any(path is not None for _, path in models) else None  # before the scorer loads
    results: list[JobResult] = []
    with Scorer(lpips_weights=options.lpips_weights, use_identity=options.csim) as scorer:
        total = len(models) * len(request.modes) * sum(_expected_frames(job, options.max_frames) for job in jobs)
        stage = (reporter or Reporter()).stage("evaluating", total)
        for label, path in models:
            # The default memory layout: channels-last would move a few pixels, and the figures with them.
            engine = Engine.load(path, device, "fp32", channels_last=False) if path is not None else None  # published figures: float32
            for mode in request.modes:
                for job in jobs:
                    stage.describe(f"{label} {mode} {job.label}")
                    rows = run_job(
                        job, mode, scorer, engine=engine, max_frames=options.max_frames, batch=options.batch, on_frames=stage.advance
                    )
                    results.append(JobResult(label, mode, job, rows))
        stage.close()
        unavailable = scorer.unavailable
    return Evaluation(request, tuple(label for label, _ in models), tuple(results), unavailable)


def reconstruction(clips: Sequence[Path], options: EvalOptions | None = None, reporter: Reporter | None = None) -> Evaluation:
    """Same-identity reconstruction (Table 3, left): each clip's first frame driven by the rest."""
    return evaluate(ProtocolRequest("reconstruction", ("both",), clips=clips, options=options or EvalOptions()), reporter)


def reenactment(
    sources: Sequence[Path], drivers: Sequence[Path], options: EvalOptions | None = None, reporter: Reporter | None = None
) -> Evaluation:
    """Cross-identity reenactment (Table 3, right): each source driven by its paired driver."""
    request = ProtocolRequest("reenactment", ("both",), sources=sources, drivers=drivers, options=options or EvalOptions())
    return evaluate(request, reporter)


def editing(
    clips: Sequence[Path] = (),
    sources: Sequence[Path] = (),
    drivers: Sequence[Path] = (),
    mode: str | None = None,
    options: EvalOptions | None = None,
    reporter: Reporter | None = None,
) -> Evaluation:
    """Expression and pose editing (Tables 1 and 2), or only ``mode``'s table."""
    modes = (mode,) if mode else ("expression", "pose")
    request = ProtocolRequest("editing", modes, clips, sources, drivers, options or EvalOptions())
    return evaluate(request, reporter)


def tables(
    clips: Sequence[Path] = (),
    sources: Sequence[Path] = (),
    drivers: Sequence[Path] = (),
    options: EvalOptions | None = None,
    reporter: Reporter | None = None,
) -> Evaluation:
    """All three of the paper's tables for the given models."""
    return evaluate(ProtocolRequest("tables", MODES, clips, sources, drivers, options or EvalOptions()), reporter)
