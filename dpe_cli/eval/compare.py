"""``dpe eval compare``: score an already generated video against reference videos or images.

:func:`score_video` is the whole command from Python (a :class:`Comparison` with the means,
the rows, the table, CSV and plot); :func:`compare_videos` gives the per-frame rows alone.

Frames are paired by timestamp: every reference video is resampled to the generated video's
frame rate (as the editing pipeline resamples a driver), so a 15 fps output is scored against
the 30 fps reference frames shown at the same moments, not against the first half of the
reference. Videos of different lengths are refused unless ``max_frames`` asks for a prefix
that both have, and a still image is the reference for every frame. When the generated video
and the pixel reference differ in size, the generated frames are scaled to the reference's size (area filter) before PSNR/SSIM/LPIPS; a different
aspect ratio is refused, since scaling would distort every face it measures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpe_cli.errors import InputError
from dpe_cli.eval.scoring import Frame, References, Scorer, summarise
from dpe_cli.progress import Reporter

if TYPE_CHECKING:
    from rich.table import Table

    from dpe_cli.video.probe import MediaInfo

ASPECT_TOLERANCE = 0.01  # relative; odd sizes rounded by a scaler (255x256 vs 256x256) pass


def _stream(
    path: Path, stack: ExitStack, *, fps: Fraction | None = None, size: tuple[int, int] | None = None
) -> tuple[Iterator[Frame], int | None]:
    """Frames of a video at ``fps`` (and their count), or one Frame repeated forever for an
    image; the decoder is stopped when ``stack`` closes."""
    from dpe_cli.video.reader import FrameReader

    reader = stack.enter_context(FrameReader(path, fps=fps, size=size))
    if reader.info.kind == "image":
        return repeat(Frame(next(iter(reader)))), None
    return (Frame(rgb) for rgb in reader), reader.frame_count_estimate


def compare_videos(
    generated: Path,
    reference: Path,
    scorer: Scorer,
    *,
    pose_reference: Path | None = None,
    identity_reference: Path | None = None,
    max_frames: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """Per-frame rows: pixels and expression (and identity and pose, unless given apart)
    against ``reference``, pose against ``pose_reference``, identity against
    ``identity_reference``."""
    from dpe_cli.video.probe import probe

    ref_info, gen_info = probe(reference), probe(generated)
    _check_aspect(gen_info, ref_info)
    for other in {pose_reference, identity_reference, reference} - {None}:
        _check_length(gen_info, ref_info if other == reference else probe(other), max_frames)
    ref_size = (ref_info.width, ref_info.height)
    rate = gen_info.fps if gen_info.kind == "video" else None
    with ExitStack() as stack:
        gen_frames, gen_count = _stream(
            generated, stack, size=None if (gen_info.width, gen_info.height) == ref_size else ref_size
        )
        roles = {"pixel": reference, "pose": pose_reference or reference, "identity": identity_reference or reference}
        # One stream per distinct file: a file given twice is decoded and analysed once.
        opened: dict[Path, tuple[Iterator[Frame], int | None]] = {}
        for path in roles.values():
            if path.resolve() not in opened:
                opened[path.resolve()] = _stream(path, stack, fps=rate)
        limits = [n for _, n in opened.values() if n is not None]
        limits += [n for n in (gen_count, max_frames) if n is not None]
        total = min(limits) if limits else 1
        if on_total is not None:
            on_total(total)
        rows = []
        for index in range(total):
            gen = next(gen_frames, None)
            drawn = {key: next(frames, None) for key, (frames, _) in opened.items()}
            if gen is None or any(frame is None for frame in drawn.values()):
                break  # frame counts are estimates; stop at the first stream that ends
            ref = {role: drawn[path.resolve()] for role, path in roles.items()}
            refs = References(pixel=ref["pixel"], identity=ref["identity"], expression=ref["pixel"], pose=ref["pose"])
            rows.append({"frame": index, **scorer.score(gen, refs)})
            if on_frame is not None:
                on_frame()
        return rows


def _check_length(generated: MediaInfo, reference: MediaInfo, max_frames: int | None) -> None:
    """Refuse videos of different lengths: pairing would silently score a prefix of the longer
    one. ``max_frames`` within both lengths asks for that prefix on purpose."""
    if generated.kind != "video" or reference.kind != "video":
        return
    counts = (generated.frame_count, round(reference.duration * float(generated.fps)))
    if abs(counts[0] - counts[1]) <= 1 or (max_frames is not None and max_frames <= min(counts)):
        return
    raise InputError(
        f"{generated.path.name} is {generated.duration:.2f} s ({counts[0]} frames) but {reference.path.name} is "
        f"{reference.duration:.2f} s: only the first {min(counts)} frames would be scored",
        f"compare videos of the same length, or pass --max-frames {min(counts)} to score that prefix",
    )


def _check_aspect(generated: MediaInfo, reference: MediaInfo) -> None:
    ratio = (generated.width / generated.height) / (reference.width / reference.height)
    if abs(ratio - 1) > ASPECT_TOLERANCE:
        raise InputError(
            f"{generated.path} is {generated.width}x{generated.height} but the reference {reference.path} is "
            f"{reference.width}x{reference.height}: different aspect ratios",
            "crop or pad one to the other's shape first; scaling would distort the faces being scored",
        )


@dataclass(frozen=True)
class Comparison:
    """One generated video scored against its references: per-frame rows and what is made of
    them (what ``dpe eval compare`` prints and writes)."""

    generated: Path
    reference: Path
    pose_reference: Path | None
    identity_reference: Path | None
    rows: tuple[dict[str, Any], ...]
    unavailable: dict[str, str]  # metric -> why it was not computed

    @cached_property
    def summary(self) -> dict[str, Any]:
        """The mean of each metric (None when unavailable), ``psnr_capped``, ``frames`` and
        ``frames_without_face``."""
        return summarise(self.rows, self.unavailable)

    def against(self) -> dict[str, str]:
        """The file each metric was measured against, by name."""
        pixels = {metric: self.reference.name for metric in ("psnr", "ssim", "lpips", "aed")}
        return {**pixels, "apd": (self.pose_reference or self.reference).name, "csim": (self.identity_reference or self.reference).name}

    def to_dict(self, per_frame: bool = False) -> dict[str, Any]:
        """What ``--json`` prints: the summary, with ``per_frame`` every frame's row too."""
        return {**self.summary, "per_frame": list(self.rows)} if per_frame else {**self.summary}

    def write_csv(self, path: Path, per_frame: bool = False) -> None:
        """The summary as one CSV row, or one row per frame."""
        from dpe_cli.eval.report import write_csv

        write_csv(path, list(self.rows) if per_frame else [self.summary])

    def plot(self, path: Path) -> None:
        from dpe_cli.eval.report import plot

        plot(path, [(self.generated.name, list(self.rows))])

    def table(self) -> Table:
        """A row per metric: its mean, unit and what it was measured against."""
        from dpe_cli.eval.report import compare_table

        return compare_table(self.summary, self.against())

    def notes(self) -> list[str]:
        """The table's footnotes."""
        from dpe_cli.eval.report import notes

        return notes([self.summary])


def score_video(
    generated: Path | str,
    reference: Path | str,
    *,
    pose_reference: Path | str | None = None,
    identity_reference: Path | str | None = None,
    max_frames: int | None = None,
    lpips_weights: Sequence[Path | str] = (),
    csim: bool = True,
    reporter: Reporter | None = None,
) -> Comparison:
    """Score ``generated`` frame by frame as :func:`compare_videos` pairs it (LPIPS only with
    ``lpips_weights``, CSIM unless ``csim`` is False); ``reporter`` sees one pass over the frames."""
    generated, reference = Path(generated), Path(reference)
    pose = Path(pose_reference) if pose_reference is not None else None
    identity = Path(identity_reference) if identity_reference is not None else None
    with Scorer(lpips_weights=[Path(p) for p in lpips_weights], use_identity=csim) as scorer:
        stage = (reporter or Reporter()).stage(f"scoring {generated.name}", None)
        rows = compare_videos(
            generated, reference, scorer, pose_reference=pose, identity_reference=identity, max_frames=max_frames,
            on_total=lambda n: stage.update(total=n), on_frame=stage.advance,
        )  # fmt: skip
        stage.close()
        unavailable = scorer.unavailable
    return Comparison(generated, reference, pose, identity, tuple(rows), unavailable)
