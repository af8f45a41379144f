"""Synthetic clips and datasets with exact per-frame labels.

A clip is an H.264 mp4 (yuv420p) plus a sidecar ``<clip>.labels.json`` holding the identity
parameters, the seeds and, for every frame, the pose and expression it was rendered with (and
the face box and five landmarks in pixels). Datasets follow the VoxCeleb layout,
``out_dir/<identity>/<clip>.mp4``, so the training code can read them like the real thing.
Identity seeds are ``seed, seed + 1, ...``: disjoint seed ranges give disjoint identities
(e.g. train from 0, test from 100000).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple

import imageio_ffmpeg
import numpy as np

from dpe_cli.bounds import check_all
from dpe_cli.choices import SYNTH_KINDS as KINDS
from dpe_cli.errors import InputError
from dpe_cli.synth.params import Expression, Identity, Pose, Scene
from dpe_cli.synth.render import render
from dpe_cli.synth.motion import MOTIONS, random_expression, random_pose, sample_keyframes, sample_motion

CROP_SIZES = (64, 512)
FULL_DEFAULT = (640, 360)
LABELS_VERSION = 1


def frame_size(kind: str, size: int | tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) for a clip kind, checked. An int means a square; crops are square and
    64-512 px, full frames default to 640x360; both need even sides for yuv420p video."""
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}", "use crop or full")
    if size is None:
        size = 256 if kind == "crop" else FULL_DEFAULT
    width, height = (size, size) if isinstance(size, int) else size
    if kind == "crop":
        lo, hi = CROP_SIZES
        if width != height or not lo <= width <= hi:
            raise InputError(
                f"crop size {width}x{height} is not supported", f"use one even size from {lo} to {hi}, e.g. 256"
            )
    elif not (min(width, height) >= 128 and max(width, height) <= 1920 and min(width, height) <= 1080):
        raise InputError(
            f"frame size {width}x{height} is out of range", "use e.g. 640x360: sides from 128 up to 1920x1080 or 1080x1920"
        )
    if width % 2 or height % 2:
        raise InputError(f"size {width}x{height} has an odd side", "use even sizes: H.264 yuv420p needs them")
    return width, height


def labels_path(clip: str | os.PathLike[str]) -> Path:
    """The sidecar labels file of a clip: ``x.mp4`` -> ``x.labels.json``."""
    return Path(clip).with_suffix(".labels.json")


def read_labels(clip: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(labels_path(clip).read_text())


def identity_dir(identity_seed: int) -> str:
    """The identity's folder name in a dataset (VoxCeleb style)."""
    return f"id{identity_seed:05d}"


def clip_seed(seed: int, identity_seed: int, clip: int) -> int:
    """The motion/scene seed of one clip of a dataset, decorrelated from its neighbours."""
    return int(np.random.SeedSequence([seed, identity_seed, clip]).generate_state(1)[0])


def _round(v: float) -> float:
    return round(float(v), 5)


def frame_labels(index: int, identity_seed: int, pose: Pose, expression: Expression,
                 box: tuple[float, float, float, float], landmarks: np.ndarray) -> dict[str, Any]:
    """One frame's labels: what it was rendered with, and where the face landed (pixels)."""
    out: dict[str, Any] = {"frame": index, "identity_seed": identity_seed}
    out.update({k: _round(v) for k, v in asdict(pose).items()})
    out.update({k: _round(v) for k, v in asdict(expression).items()})
    out["face_box"] = [round(float(v), 2) for v in box]
    out["landmarks"] = np.round(landmarks, 2).tolist()
    return out


def render_clip(identity_seed: int, n_frames: int, fps: float = 25.0,
                size: int | tuple[int, int] | None = None, kind: str = "crop",
                seed: int = 0, motion: str = "smooth") -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Frames (uint8 RGB) and their labels, one at a time. ``seed`` picks motion and scene;
    ``motion`` is smooth (head motion, speech, blinks) or keyframes (crops only: every frame
    an independent random pose and expression)."""
    width, height = frame_size(kind, size)
    check_counts(frames=n_frames, fps=fps)
    check_motion(motion, kind)
    identity = Identity.from_seed(identity_seed)
    scene = Scene.from_seed(seed)
    tracks = sample_keyframes(n_frames, seed) if motion == "keyframes" else sample_motion(n_frames, fps, seed, kind, aspect=width / height)
    for i in range(n_frames):
        pose, expr = tracks.pose(i), tracks.expression(i)
        drift = (float(tracks.drift[i, 0]), float(tracks.drift[i, 1]))
        frame = render(identity, pose, expr, (width, height), kind, scene, drift)
        yield frame.image, frame_labels(i, identity_seed, pose, expr, frame.face_box, frame.landmarks)


def write_clip(path: str | os.PathLike[str], identity_seed: int, n_frames: int = 100,
               fps: float = 25.0, size: int | tuple[int, int] | None = None, kind: str = "crop",
               seed: int = 0, motion: str = "smooth", progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Render one clip to ``path`` (mp4) and its labels next to it; returns the frame labels.

    The video is written to a temporary name and renamed when complete, so an interrupted
    run never leaves a truncated clip that looks finished. ``progress(1)`` is called per frame.
    """
    path = Path(path)
    width, height = frame_size(kind, size)
    check_counts(frames=n_frames, fps=fps)
    check_motion(motion, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    labels = []
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=2, output_params=["-crf", "18", "-preset", "fast"],
    )
    writer.send(None)
    done = False
    try:
        for image, label in render_clip(identity_seed, n_frames, fps, (width, height), kind, seed, motion):
            writer.send(np.ascontiguousarray(image))
            labels.append(label)
            if progress is not None:
                progress(1)
        done = True
    finally:
        writer.close()
        if not done:
            tmp.unlink(missing_ok=True)
    os.replace(tmp, path)
    meta = {
        "version": LABELS_VERSION,
        "generator": "dpe_cli.synth",
        "kind": kind,
        "size": [width, height],
        "fps": fps,
        "n_frames": n_frames,
        "motion": motion,
        "seed": seed,
        "identity_seed": identity_seed,
        "identity_id": identity_dir(identity_seed),
        "identity": Identity.from_seed(identity_seed).to_dict(),
        "frames": labels,
    }
    labels_path(path).write_text(json.dumps(meta, separators=(",", ":")) + "\n")
    return labels


def write_dataset(out_dir: str | os.PathLike[str], n_identities: int, clips_per_identity: int,
                  n_frames: int = 100, fps: float = 25.0, size: int | tuple[int, int] | None = None,
                  kind: str = "crop", seed: int = 0, workers: int = 1,
                  progress: Callable[[int], None] | None = None, motion: str = "smooth") -> list[Path]:
    """Write ``out_dir/id<seed>/<clip>.mp4`` (+ labels) for identities seed..seed+n-1.

    Rendering is single-threaded numpy, so ``workers`` > 1 renders clips in that many
    processes. ``progress(k)`` is called as frames complete (per clip when parallel).
    Returns the clip paths in order; the output does not depend on ``workers``.
    """
    check_counts(identities=n_identities, clips=clips_per_identity, frames=n_frames, fps=fps, workers=workers)
    frame_size(kind, size)
    check_motion(motion, kind)
    jobs = [
        (Path(out_dir) / identity_dir(i) / f"{clip:05d}.mp4", i, n_frames, fps, size, kind, clip_seed(seed, i, clip), motion)
        for i in range(seed, seed + n_identities)
        for clip in range(clips_per_identity)
    ]
    if workers == 1 or len(jobs) == 1:
        for job in jobs:
            write_clip(*job, progress=progress)
    else:
        # spawn, not fork: the caller may be running threads (e.g. a progress bar).
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn")) as pool:
            for done in as_completed([pool.submit(write_clip, *job) for job in jobs]):
                frames = len(done.result())
                if progress is not None:
                    progress(frames)
    return [job[0] for job in jobs]


def check_motion(motion: str, kind: str) -> None:
    if motion not in MOTIONS:
        raise InputError(f"unknown motion {motion!r}", "use smooth or keyframes")
    if motion == "keyframes" and kind != "crop":
        raise InputError("keyframe clips are face crops", "use `kind` crop with `motion` keyframes")


def check_counts(**values: float) -> None:
    """Check each count (``frames=...``, ``fps=...``) against its option's bound."""
    check_all(values)


class Pair(NamedTuple):
    """Two renders of one identity and scene that differ only in pose or only in expression."""

    source: np.ndarray
    target: np.ndarray
    source_labels: dict[str, Any]
    target_labels: dict[str, Any]


def render_pair(identity_seed: int, change: str, seed: int = 0, size: int = 256) -> Pair:
    """A controlled pair for benchmarks: ``change="pose"`` keeps the expression,
    ``change="expression"`` keeps the pose; identity, scene and framing are shared."""
    if change not in ("pose", "expression"):
        raise InputError(f"unknown change {change!r}", "use pose or expression")
    width, height = frame_size("crop", size)
    rng = np.random.default_rng([seed, identity_seed, 0x9A])
    identity = Identity.from_seed(identity_seed)
    scene = Scene.from_seed(int(rng.integers(2**31)))
    pose_a, expr_a = random_pose(rng), random_expression(rng)
    pose_b = random_pose(rng) if change == "pose" else pose_a
    expr_b = random_expression(rng) if change == "expression" else expr_a
    frames = []
    for i, (pose, expr) in enumerate(((pose_a, expr_a), (pose_b, expr_b))):
        r = render(identity, pose, expr, (width, height), "crop", scene)
        frames.append((r.image, frame_labels(i, identity_seed, pose, expr, r.face_box, r.landmarks)))
    return Pair(frames[0][0], frames[1][0], frames[0][1], frames[1][1])
