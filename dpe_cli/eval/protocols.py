"""The paper's evaluation protocols (Sec. 4.1, Tables 1 to 3) on the user's own clips.

A :class:`Job` is one source/driver pairing:

- same identity (``Job(driver=clip)``): the clip's first frame is the source and the
  frames after it drive it; as in the paper, the *last* ``max_frames`` of them are used
  (400 in the paper);
- cross identity (``Job(driver=clip, source=portrait)``): a portrait (or a video's first
  frame) driven by the *first* ``max_frames`` frames of another person's clip.

The model edits the source with each driver frame in one of three modes, and each mode has
its own references (:func:`references`):

============  ======================  ===============  ===============  ===============
mode          PSNR / SSIM / LPIPS     CSIM             AED              APD
============  ======================  ===============  ===============  ===============
both          driver (same id. only)  source           driver           driver
expression    --                      source           driver           source
pose          --                      source           source           driver
============  ======================  ===============  ===============  ===============

``both`` is Table 3 (one-shot talking-face generation: reconstruction for same identity,
reenactment for cross identity); ``expression`` and ``pose`` are Tables 1 and 2. Instead of
a model, a job may name an already generated video (``generated``): one output frame per
clip frame, as the model writes it when driven by the whole clip (so for same identity the
output of frame 0, the source itself, is skipped).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, repeat, takewhile, zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dpe_cli.errors import InputError
from dpe_cli.eval.scoring import Frame, References, Scorer, summarise

if TYPE_CHECKING:
    from dpe_cli.engine import Engine


@dataclass(frozen=True)
class Job:
    """One source/driver pairing; ``source=None`` means same identity (see the module)."""

    driver: Path
    source: Path | None = None
    generated: Path | None = None

    @property
    def setting(self) -> str:
        return "same" if self.source is None else "cross"

    @property
    def label(self) -> str:
        return self.driver.name if self.source is None else f"{self.source.name} <- {self.driver.name}"


@dataclass(frozen=True)
class JobResult:
    """The per-frame rows of one job, run in one mode by one model (or generated video)."""

    model: str
    mode: str
    job: Job
    rows: list[dict[str, Any]]

    def record(self) -> dict[str, Any]:
        """What was evaluated, as flat fields for JSON and CSV."""
        job = self.job
        return {
            "model": self.model,
            "mode": self.mode,
            "setting": job.setting,
            "source": str(job.source) if job.source else None,
            "driver": str(job.driver),
            "generated": str(job.generated) if job.generated else None,
        }


def pool(results: list[JobResult], unavailable: dict[str, str]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Summaries over all frames of each (model, mode, setting), as the paper pools its
    images; keys in first-seen order."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r.model, r.mode, r.job.setting), []).extend(r.rows)
    return {key: summarise(rows, unavailable) for key, rows in groups.items()}


def references(setting: str, mode: str, source: Frame, driver: Frame) -> References:
    """What each metric compares the output with (the table in the module docstring)."""
    if mode == "both":
        return References(pixel=driver if setting == "same" else None, identity=source, expression=driver, pose=driver)
    if mode == "expression":
        return References(identity=source, expression=driver, pose=source)
    if mode == "pose":
        return References(identity=source, expression=source, pose=driver)
    raise InputError(f"unknown edit mode {mode!r}", "use expression, pose or both")


def _frames(path: Path, size: tuple[int, int] | None) -> Iterator[np.ndarray]:
    from dpe_cli.video.reader import FrameReader

    with FrameReader(path, size=size) as reader:
        yield from reader


def _video_size(path: Path) -> tuple[int, int]:
    from dpe_cli.video.probe import probe

    info = probe(path)
    return info.width, info.height


def select(
    job: Job, size: tuple[int, int] | None, max_frames: int | None
) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray | None]]]:
    """The source frame and the (clip frame number, driver, generated-or-None) triples the
    protocol uses."""
    generated = _frames(job.generated, size) if job.generated is not None else repeat(None)
    # Extra generated frames are ignored; missing ones show up as None (an error in run_job).
    pairs = takewhile(lambda p: p[0] is not None, zip_longest(_frames(job.driver, size), generated))
    numbered = ((i, d, g) for i, (d, g) in enumerate(pairs))
    if job.source is None:
        first = next(numbered, None)
        if first is None:
            raise InputError(f"{job.driver}: no frames", "give a video clip")
        source = first[1]
        chosen = list(deque(numbered, maxlen=max_frames))  # the last max_frames after the source
    else:
        source = next(_frames(job.source, size))
        chosen = list(islice(numbered, max_frames))
    if not chosen:
        raise InputError(f"{job.driver}: no driver frames", "a same-identity clip needs at least two frames")
    return source, chosen


def run_job(
    job: Job,
    mode: str,
    scorer: Scorer,
    *,
    max_frames: int | None,
    engine: Engine | None = None,
    batch: int = 8,
    on_frames: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Per-frame rows of one job in one mode, from ``engine``'s model or from
    ``job.generated``; ``frame`` is the driver's frame number in its clip."""
    if job.generated is not None:
        size = _video_size(job.generated)
    elif engine is not None:
        size = (engine.size, engine.size)
    else:
        raise InputError(f"nothing to evaluate for {job.label}", "give a model to run, or the video it generated")
    source, chosen = select(job, size, max_frames)
    if job.generated is not None and any(g is None for _, _, g in chosen):
        raise InputError(
            f"{job.generated} has fewer frames than {job.driver}",
            "give the output of driving with the whole clip, one frame per clip frame",
        )
    src = Frame(source)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(chosen), batch):
        chunk = chosen[start : start + batch]
        drivers = [d for _, d, _ in chunk]
        outputs = engine.edit(source, drivers, mode) if job.generated is None else [g for _, _, g in chunk]  # type: ignore[union-attr]
        for (index, drv, _), out in zip(chunk, outputs):
            row = scorer.score(Frame(out), references(job.setting, mode, src, Frame(drv)))  # type: ignore[arg-type]
            rows.append({"frame": index, **row})
        if on_frames is not None:
            on_frames(len(chunk))
    return rows
