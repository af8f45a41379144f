"""``dpe prepare-data``: raw videos -> fixed-box face crops, the clips ``dpe train`` reads.

Each video is cropped exactly as the editing pipeline crops its input: faces are detected
(every ``detect_every``-th frame), one box is fixed for the whole video from those detections
(:class:`~dpe_cli.face.crop.BoxAccumulator`), and every frame is cut out with it
(:func:`~dpe_cli.face.crop.crop`). A model trained on these crops therefore sees faces framed
the way it will see them at editing time. The folder layout is kept (``RAW/<id>/<clip>.mp4``
-> ``OUT/<id>/<clip>.mp4``), so VoxCeleb-style identities survive. A video that cannot be
read, or shows no face, is skipped with a warning; finished outputs are skipped on a rerun.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from dpe_cli.bounds import check
from dpe_cli.errors import InputError
from dpe_cli.face.crop import DEFAULT_BOX_SCALE
from dpe_cli.choices import VIDEO_SUFFIXES


@dataclass(frozen=True)
class PrepareSettings:
    size: int = 256
    face_index: int = 0
    box_scale: float = DEFAULT_BOX_SCALE
    detect_every: int = 5
    crf: int = 15


@dataclass
class PrepareSummary:
    written: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_videos(raw_dir: Path) -> list[Path]:
    if not raw_dir.is_dir():
        raise InputError(f"{raw_dir} is not a folder", "give the folder that holds the raw videos")
    videos = sorted(
        p for p in raw_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(raw_dir).parts)
    )
    if not videos:
        raise InputError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {raw_dir}", "check the folder")
    return videos


def crop_video(source: Path, target: Path, settings: PrepareSettings) -> None:
    """Detect, fix the box, crop every frame to ``settings.size`` and encode ``target``."""
    from dpe_cli.face.crop import BoxAccumulator, crop
    from dpe_cli.face.detect import FaceDetector
    from dpe_cli.video.reader import FrameReader
    from dpe_cli.video.writer import VideoWriter

    boxes = BoxAccumulator(settings.face_index)
    with FrameReader(source) as reader, FaceDetector() as detector:
        for i, frame in enumerate(reader):
            if i % settings.detect_every == 0:
                boxes.add(detector.detect(frame))
        box = boxes.box(reader.width, reader.height, settings.box_scale)
        target.parent.mkdir(parents=True, exist_ok=True)
        with VideoWriter(target, width=settings.size, height=settings.size, fps=reader.fps, crf=settings.crf, overwrite=True) as writer:
            for frame in reader:
                writer.write(crop(frame, box, settings.size))


def _crop_one(source: Path, target: Path, settings: PrepareSettings) -> str | None:
    """None on success, else the reason (workers report instead of raising)."""
    try:
        crop_video(source, target, settings)
    except Exception as exc:  # noqa: BLE001 - one bad video never stops the batch
        return exc.one_line() if hasattr(exc, "one_line") else f"{type(exc).__name__}: {exc}"
    return None


def prepare_data(
    raw_dir: Path,
    out_dir: Path,
    settings: PrepareSettings,
    overwrite: bool = False,
    workers: int = 1,
    report: Callable[[Path, str | None], None] | None = None,
) -> PrepareSummary:
    """Crop every video under ``raw_dir`` into ``out_dir``; ``report(source, error)`` per video."""
    check("detect_every", settings.detect_every)
    raw_dir, out_dir = raw_dir.expanduser(), out_dir.expanduser()
    if out_dir.resolve() == raw_dir.resolve():
        raise InputError("OUT_DIR must differ from RAW_DIR", "give a new folder for the crops")
    summary = PrepareSummary()
    jobs: list[tuple[Path, Path]] = []
    for source in find_videos(raw_dir):
        target = (out_dir / source.relative_to(raw_dir)).with_suffix(".mp4")
        if target.exists() and not overwrite:
            summary.existing.append(target)
        else:
            jobs.append((source, target))

    def finish(source: Path, target: Path, error: str | None) -> None:
        if error is None:
            summary.written.append(target)
        else:
            summary.failed.append((source, error))
        if report:
            report(source, error)

    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_crop_one, s, t, settings): (s, t) for s, t in jobs}
            for future in as_completed(futures):
                finish(*futures[future], future.result())
    else:
        for source, target in jobs:
            finish(source, target, _crop_one(source, target, settings))
    return summary
