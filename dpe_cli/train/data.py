"""Training data: face clips, a frame cache that keeps decoding off the training path, and
(source, driving) pairs that are a pure function of (seed, sample index).

A clip is a video (mp4, mov, avi, mkv) or a folder of frames (png, jpg) showing one face,
already cropped with a fixed box (``dpe prepare-data`` makes such crops). ``--data`` holds
clips directly (each its own identity) or in the VoxCeleb layout ``DIR/<identity>/<clip>``.

Decoding a video per sample would starve the model, so every clip is decoded once, resized to
the training size and stored as one shard of encoded frames (JPEG or PNG bytes plus an offset
index, both ``.npy`` so workers memory-map them). A sample then costs two image decodes. A clip
that cannot be read gets a ``.broken`` marker with the reason and is skipped with a warning.

Sample ``i`` draws an identity, one of its clips and two frames of it (with replacement, as the
reference does) from a random generator seeded with ``(seed, i)``; step ``s`` of a run with
global batch ``B`` uses samples ``s*B ... s*B+B-1``, split across ranks in order. Sampling
therefore has no state: resuming at step ``s`` (even with another number of ranks) sees
exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import re
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dpe_cli.atomic import replacing
from dpe_cli.bounds import check
from dpe_cli.choices import CACHE_FORMATS, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from dpe_cli.errors import InputError

if TYPE_CHECKING:
    from dpe_cli.progress import Reporter
    from dpe_cli.train.distributed import Distributed
    from dpe_cli.train.options import TrainOptions

# The reference samples among the first 500 frames of each clip; more adds little variety.
DEFAULT_MAX_FRAMES = 500
JPEG_QUALITY = 95
CACHE_VERSION = "1"
# Sample streams: training pairs and the fixed preview pairs of the sample grids never overlap.
TRAIN_STREAM, PREVIEW_STREAM = 0, 1


@dataclass(frozen=True)
class Clip:
    """One face clip on disk: a video file or a folder of frames."""

    path: Path
    identity: str


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _natural_key(path: Path) -> list:
    """frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if _visible(p) and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=_natural_key,
    )


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and bool(frame_files(path))


def find_clips(root: Path) -> list[Clip]:
    """Every clip under ``root``: flat (each clip its own identity) or ``<identity>/<clip>``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError(f"`data` {root} is not a folder", "give the folder that holds the face clips")
    clips: list[Clip] = []
    for entry in sorted(filter(_visible, root.iterdir())):
        if _is_video(entry) or _is_frame_folder(entry):
            clips.append(Clip(entry, entry.stem if entry.is_file() else entry.name))
        elif entry.is_dir():
            for child in sorted(filter(_visible, entry.iterdir())):
                if _is_video(child) or _is_frame_folder(child):
                    clips.append(Clip(child, entry.name))
    if not clips:
        raise InputError(
            f"no videos ({', '.join(VIDEO_SUFFIXES)}) or frame folders in {root}",
            "put face crops in DIR or DIR/<identity>/ (dpe prepare-data makes them from raw videos)",
        )
    return clips


def _square(frame: np.ndarray) -> np.ndarray:
    """The centred square of a frame (the crops are square; anything else is trimmed, not squashed)."""
    h, w = frame.shape[:2]
    side = min(h, w)
    y, x = (h - side) // 2, (w - side) // 2
    return frame[y : y + side, x : x + side]


@dataclass(frozen=True)
class CachedClip:
    """A clip's shard: ``frames`` (uint8 bytes of all encoded frames) and ``index`` (offsets)."""

    identity: str
    source: Path
    frames: Path
    index: Path
    frame_count: int


class FrameCache:
    """Decoded, resized, re-encoded frames of every clip, keyed by the clip's identity on disk
    (path, size and modification time) and the cache settings, so a changed file is re-read."""

    def __init__(self, directory: Path, size: int, max_frames: int = DEFAULT_MAX_FRAMES, image_format: str = "jpg") -> None:
        if image_format not in CACHE_FORMATS:
            raise InputError(f"unknown cache format {image_format!r}", f"use one of {', '.join(CACHE_FORMATS)}")
        check("max_frames", max_frames)
        self.directory = Path(directory)
        self.size = size
        self.max_frames = max_frames
        self.image_format = image_format

    def key(self, clip: Clip) -> str:
        stat = clip.path.stat()
        fields = [CACHE_VERSION, str(clip.path.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
        fields += [str(self.size), str(self.max_frames), self.image_format]
        digest = hashlib.sha1("\0".join(fields).encode()).hexdigest()[:16]
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{clip.identity}-{clip.path.stem}")[:60]
        return f"{stem}-{digest}"

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        base = self.directory / key
        return base.with_name(key + ".frames.npy"), base.with_name(key + ".index.npy"), base.with_name(key + ".broken")

    def lookup(self, clip: Clip) -> CachedClip | str | None:
        """The cached clip, the reason it is broken, or None when it is not cached yet."""
        frames, index, broken = self._paths(self.key(clip))
        if index.is_file() and frames.is_file():
            count = int(np.load(index, mmap_mode="r").shape[0]) - 1
            return CachedClip(clip.identity, clip.path, frames, index, count)
        if broken.is_file():
            return broken.read_text().strip() or "unreadable"
        return None

    def build(self, clip: Clip) -> None:
        """Decode and store one clip (or its ``.broken`` marker). Safe to run concurrently for
        the same clip in several processes: each file appears atomically, complete."""
        frames_path, index_path, broken_path = self._paths(self.key(clip))
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            data, offsets = self._encode_all(clip)
        except Exception as exc:  # noqa: BLE001 - any unreadable clip is skipped, never fatal
            reason = exc.one_line() if hasattr(exc, "one_line") else f"{type(exc).__name__}: {exc}"
            _atomic_bytes(broken_path, reason.encode())
            return
        _atomic_npy(frames_path, data)
        _atomic_npy(index_path, offsets)  # written last: its presence marks a complete shard

    def _frames(self, clip: Clip) -> Iterator[np.ndarray]:
        if clip.path.is_dir():
            for path in frame_files(clip.path):
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is not None:  # a broken image inside a frame folder is skipped
                    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return
        from dpe_cli.video.reader import FrameReader

        with FrameReader(clip.path) as reader:
            yield from reader

    def _encode_all(self, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
        from dpe_cli.face.crop import resize_square

        chunks: list[np.ndarray] = []
        offsets = [0]
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if self.image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
        for frame in self._frames(clip):
            image = resize_square(np.ascontiguousarray(_square(frame)), self.size)
            ok, encoded = cv2.imencode(f".{self.image_format}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
            if not ok:
                raise InputError(f"{clip.path}: could not encode a frame", "check the file")
            chunks.append(encoded.reshape(-1))
            offsets.append(offsets[-1] + encoded.size)
            if len(chunks) >= self.max_frames:
                break
        if not chunks:
            raise InputError(f"{clip.path}: no readable frames", "re-export the clip")
        return np.concatenate(chunks), np.asarray(offsets, dtype=np.int64)


def _atomic_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def _atomic_npy(path: Path, array: np.ndarray) -> None:
    with replacing(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _build_one(cache: FrameCache, clip: Clip) -> None:
    cache.build(clip)


def build_cache(
    clips: list[Clip],
    cache: FrameCache,
    workers: int = 0,
    share: tuple[int, int] = (0, 1),
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Decode the clips of this rank's share (``index % world == rank``) that are not cached yet.

    ``workers`` > 1 decodes in that many processes (each clip in one ffmpeg). ``progress`` is
    called with (done, total) after each clip.
    """
    rank, world = share
    todo = [clip for i, clip in enumerate(clips) if i % world == rank and cache.lookup(clip) is None]
    if progress:
        progress(0, len(todo))
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for done, _ in enumerate(pool.map(_build_one, [cache] * len(todo), todo), 1):
                if progress:
                    progress(done, len(todo))
    else:
        for done, clip in enumerate(todo, 1):
            cache.build(clip)
            if progress:
                progress(done, len(todo))


def collect_cache(clips: list[Clip], cache: FrameCache, warn: Callable[[str], None]) -> list[CachedClip]:
    """The cached clips, warning once for each broken one. Missing clips are built here."""
    cached: list[CachedClip] = []
    for clip in clips:
        found = cache.lookup(clip)
        if found is None:
            cache.build(clip)
            found = cache.lookup(clip)
        if isinstance(found, CachedClip):
            cached.append(found)
        else:
            warn(f"skipping {clip.path}: {found}")
    if not cached:
        raise InputError("none of the training clips could be read", "see the warnings; re-export the clips")
    return cached


class PairDataset(Dataset):
    """(source, driving) frame pairs of one clip, as uint8 tensors (3, H, W).

    Map-style, so it also works with ``DistributedSampler``; ``len`` is the number of cached
    frames (one epoch shows each frame once as a source on average). Shards are memory-mapped
    on first use in each worker process.
    """

    def __init__(self, clips: list[CachedClip], seed: int = 0) -> None:
        self.clips = clips
        self.seed = seed
        by_identity: dict[str, list[int]] = {}
        for i, clip in enumerate(clips):
            by_identity.setdefault(clip.identity, []).append(i)
        self.identities = [by_identity[name] for name in sorted(by_identity)]
        self._open: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}  # memory maps are per process
        return state

    def __len__(self) -> int:
        return sum(clip.frame_count for clip in self.clips)

    @property
    def identity_count(self) -> int:
        return len(self.identities)

    def pair_indices(self, index: int, stream: int = TRAIN_STREAM) -> tuple[int, int, int]:
        """(clip, source frame, driving frame) of sample ``index``: identity, then clip, then
        two frames, each uniform, as the reference samples."""
        rng = np.random.default_rng([self.seed, stream, index])
        clips = self.identities[int(rng.integers(len(self.identities)))]
        clip = clips[int(rng.integers(len(clips)))]
        source, driving = rng.integers(self.clips[clip].frame_count, size=2)
        return clip, int(source), int(driving)

    def frame(self, clip: int, index: int) -> torch.Tensor:
        if clip not in self._open:
            self._open[clip] = (np.load(self.clips[clip].frames, mmap_mode="r"), np.load(self.clips[clip].index))
        data, offsets = self._open[clip]
        bgr = cv2.imdecode(np.asarray(data[offsets[index] : offsets[index + 1]]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"frame cache shard {self.clips[clip].frames} is corrupt", "delete the cache folder and rerun")
        return torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).contiguous()

    def pair(self, index: int, stream: int = TRAIN_STREAM) -> tuple[torch.Tensor, torch.Tensor]:
        clip, source, driving = self.pair_indices(index, stream)
        return self.frame(clip, source), self.frame(clip, driving)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pair(index)

    def preview(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed pairs for the sample grids (their own stream: the same in every run)."""
        pairs = [self.pair(i, PREVIEW_STREAM) for i in range(count)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


class StepBatchSampler(Sampler[list[int]]):
    """This rank's sample indices for steps ``start`` .. ``steps - 1``: the global batch of step
    ``s`` is ``s*B ... s*B+B-1``, and rank ``r`` takes the ``r``-th equal slice of it."""

    def __init__(self, global_batch: int, start: int, steps: int, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise InputError(
                f"--batch-size {global_batch} does not split over {world} processes",
                f"use a multiple of {world}",
            )
        self.global_batch, self.local_batch = global_batch, global_batch // world
        self.start, self.steps, self.rank = start, steps, rank

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            first = step * self.global_batch + self.rank * self.local_batch
            yield list(range(first, first + self.local_batch))


def _ignore_stop_signals(_: int) -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which saves and then stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: PairDataset, sampler: StepBatchSampler, workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
        worker_init_fn=_ignore_stop_signals if workers else None,
    )


def prepare_dataset(options: TrainOptions, env: Distributed, reporter: Reporter) -> PairDataset:
    """A run's dataset: find the clips and fill the frame cache (the ranks split the work and
    wait for each other), then pair the cached frames."""
    clips = find_clips(options.data)
    cache = FrameCache(options.cache or options.out / "cache", options.size, options.max_frames, options.cache_format)
    stage = reporter.stage("caching frames", None, unit="clip")
    try:
        build_cache(clips, cache, env.loader_workers(options.workers), (env.rank, env.world), lambda done, total: stage.update(completed=done, total=total))
    finally:
        stage.close()
    env.wait_for_all()
    return PairDataset(collect_cache(clips, cache, reporter.warn), options.seed)
