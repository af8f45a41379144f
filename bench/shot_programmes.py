"""Test programmes with known shot boundaries, for bench/shot_detectors.py.

A programme is a list of shots joined by transitions: hard cuts, cross-dissolves (the ends of
two shots overlap and blend) and fades through black (out, a few black frames, in). Shots come
from the real talking-head videos in ../shared/media, cut into segments of 1-4 s and brought
to 640x360 (scaled to cover, centre-cropped), or are rendered with ``dpe_cli.synth``. Some
shots carry motion that must not read as a boundary: a pan or zoom (a moving crop window),
lighting flicker, a camera flash, fast head motion, a face entering or leaving the frame.
Frames are made one at a time, so a programme costs one frame of memory beyond its sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from dpe_cli.synth import Identity, Scene, render
from dpe_cli.synth.motion import sample_motion
from dpe_cli.video import FrameReader
from dpe_cli.video.probe import probe

FPS = 25.0
SIZE = (640, 360)
REAL_VIDEOS = (
    "talk_full_590.mp4",
    "talk_full_844.mp4",
    "talk_landscape_1280x720.mp4",
    "dpe_source_crop.mp4",
    "dpe_driver_crop.mp4",
    "driver_512_audio.mp4",
)
SYNTH_IDENTITIES = range(130000, 130012)  # used by no other benchmark or training run
SYNTH_SCENES = range(130100, 130106)


_CUT = ("cut", 0, 0, 0)


@dataclass(frozen=True)
class Shot:
    frames: int
    frame: Callable[[int], np.ndarray]  # i in [0, frames) -> RGB uint8 at SIZE
    motion: str = ""  # what the shot does that is not a boundary ("" for plain)
    source: str = ""


@dataclass(frozen=True)
class Boundary:
    frame: int  # first frame of the new shot (the middle of a gradual transition)
    kind: str  # "cut", "jump cut" (same video), "dissolve", "fade"
    transition: int = 0


@dataclass(frozen=True)
class Programme:
    name: str
    shots: list[Shot]
    joins: list[tuple[str, int, int, int]]  # (kind, dissolve or fade-out, black, fade-in)

    def truth(self) -> tuple[list[Boundary], list[tuple[int, int, str]], int]:
        """Boundaries, spans of motion that is not a boundary (start, end, kind), frames."""
        boundaries, spans, at = [], [], 0
        for k, shot in enumerate(self.shots):
            join_in = self.joins[k - 1] if k else _CUT
            join_out = self.joins[k] if k < len(self.joins) else _CUT
            own = shot.frames - (join_in[1] if join_in[0] == "dissolve" else 0)
            pure_from = at + (join_in[3] if join_in[0] == "fade" else 0)
            pure_to = at + own - (join_out[1] if join_out[0] in ("dissolve", "fade") else 0)
            if shot.motion:
                spans.append((pure_from + 2, pure_to - 2, shot.motion))
            kind, a, black, b = join_out
            if kind == "dissolve":
                boundaries.append(Boundary(pure_to + a // 2, kind, a))
            elif kind == "fade":
                boundaries.append(Boundary(pure_to + (a + black + b) // 2, kind, a + black + b))
            elif k < len(self.joins):
                boundaries.append(Boundary(at + own, kind))
            at += own + (black if kind == "fade" else 0)
        return boundaries, spans, at

    def frames(self) -> Iterator[np.ndarray]:
        for k, shot in enumerate(self.shots):
            join_in = self.joins[k - 1] if k else _CUT
            join_out = self.joins[k] if k < len(self.joins) else _CUT
            skip = join_in[1] if join_in[0] == "dissolve" else 0
            stop = shot.frames - (join_out[1] if join_out[0] == "dissolve" else 0)
            for i in range(skip, stop):
                frame = shot.frame(i)
                if join_in[0] == "fade" and i < join_in[3]:
                    frame = _gain(frame, i / join_in[3])
                if join_out[0] == "fade" and i >= shot.frames - join_out[1]:
                    frame = _gain(frame, (shot.frames - 1 - i) / join_out[1])
                yield frame
            if join_out[0] == "dissolve":
                nxt, n = self.shots[k + 1], join_out[1]
                for j in range(n):
                    w = (j + 1) / (n + 1)
                    a, b = shot.frame(stop + j).astype(np.float32), nxt.frame(j).astype(np.float32)
                    yield np.clip((1 - w) * a + w * b + 0.5, 0, 255).astype(np.uint8)
            elif join_out[0] == "fade":
                for _ in range(join_out[2]):
                    yield np.zeros((SIZE[1], SIZE[0], 3), np.uint8)


def _gain(frame: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8)


def load_real(media: Path) -> dict[str, np.ndarray]:
    """Each real video at FPS, scaled to cover SIZE and centre-cropped (frames, H, W, 3)."""
    videos = {}
    for name in REAL_VIDEOS:
        info = probe(media / name)
        scale = max(SIZE[0] / info.width, SIZE[1] / info.height)
        w, h = max(SIZE[0], round(info.width * scale)), max(SIZE[1], round(info.height * scale))
        x, y = (w - SIZE[0]) // 2, (h - SIZE[1]) // 2
        frames = [f[y : y + SIZE[1], x : x + SIZE[0]].copy() for f in FrameReader(media / name, fps=FPS, size=(w, h))]
        videos[name] = np.stack(frames)
    return videos


def _window(video: np.ndarray, start: int, n: int, path: Callable[[float], tuple[float, float, float]]) -> Callable[[int], np.ndarray]:
    """Frames seen through a moving window: path(s in 0..1) -> (centre x, centre y, scale <= 1)."""

    def frame(i: int) -> np.ndarray:
        s = i / max(n - 1, 1)
        s = s * s * (3 - 2 * s)  # eased, as a camera operator starts and stops a move
        cx, cy, scale = path(s)
        w, h = SIZE[0] * scale, SIZE[1] * scale
        m = np.float32([[1 / scale, 0, -(cx - w / 2) / scale], [0, 1 / scale, -(cy - h / 2) / scale]])
        return cv2.warpAffine(video[start + i], m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    return frame


def _kinds(joins: int, dissolves: int, fades: int, jumps: int, rng: np.random.Generator) -> list[str]:
    kinds = ["dissolve"] * dissolves + ["fade"] * fades + ["jump cut"] * jumps
    kinds += ["cut"] * (joins - len(kinds))
    return [str(k) for k in rng.permutation(kinds)]


def real_programme(videos: dict[str, np.ndarray], seed: int, shots: int = 30) -> Programme:
    """Segments of the real videos; a quarter of the cuts join two segments of one video
    taken at least a second apart (jump cuts)."""
    rng = np.random.default_rng([seed, 23])
    kinds = ["start"] + _kinds(shots - 1, 5, 3, 7, rng)
    motions = {int(k): m for k, m in zip(rng.choice(np.arange(1, shots - 1), 5, replace=False),
                                        ("pan", "zoom", "pan", "flicker", "flash"))}
    joins = [_join(kind, rng) for kind in kinds[1:]]
    made, name, taken = [], "", (0, 0)
    for k, kind in enumerate(kinds):
        motion = motions.get(k, "")
        n = max(int(rng.integers(round(1.0 * FPS), round(4.0 * FPS) + 1)), _needs(joins, k))
        if motion in ("pan", "zoom"):
            n = max(n, 60)
        room = max(len(videos[name]) - sum(taken) - 25, taken[0] - 25) if name else 0
        if kind == "jump cut" and room >= 25:
            video = videos[name]
            n = min(n, room)
            starts = [s for s in range(len(video) - n + 1) if s >= sum(taken) + 25 or s + n + 25 <= taken[0]]
        else:
            if kind == "jump cut":  # no room left in that video
                joins[k - 1] = _CUT
            name = str(rng.choice([v for v in videos if v != name]))
            video = videos[name]
            n = min(n, len(video))
            if k + 1 < shots and kinds[k + 1] == "jump cut":  # leave room for the next segment
                n = min(n, (len(video) - 25) // 2)
            starts = list(range(len(video) - n + 1))
        start = int(rng.choice(starts))
        taken = (start, n)
        made.append(_real_shot(video, motion, start, n, rng, name))
    return Programme(f"real-{seed}", made, joins)


def _needs(joins: list[tuple[str, int, int, int]], k: int) -> int:
    """Frames shot k needs: its transitions and at least 20 frames of its own."""
    used = joins[k - 1][1] if k and joins[k - 1][0] == "dissolve" else 0
    return used + (joins[k][1] if k < len(joins) else 0) + 20


def _join(kind: str, rng: np.random.Generator) -> tuple[str, int, int, int]:
    if kind == "dissolve":
        return (kind, int(rng.integers(round(0.5 * FPS), round(1.0 * FPS) + 1)), 0, 0)
    if kind == "fade":
        return (kind, int(rng.integers(8, 16)), int(rng.integers(0, 5)), int(rng.integers(8, 16)))
    return (kind, 0, 0, 0)


def _real_shot(video: np.ndarray, motion: str, start: int, n: int, rng: np.random.Generator, name: str) -> Shot:
    cx, cy = SIZE[0] / 2, SIZE[1] / 2
    if motion == "pan":  # the window travels 40 % of the frame width
        n = max(n, 60)
        start = min(start, len(video) - n)
        d = rng.choice([-1, 1]) * 0.4 * SIZE[0] / 2
        return Shot(n, _window(video, start, n, lambda s: (cx - d + 2 * d * s, cy, 0.7)), "pan", name)
    if motion == "zoom":
        n = max(n, 60)
        start = min(start, len(video) - n)
        return Shot(n, _window(video, start, n, lambda s: (cx, cy, 1.0 - 0.35 * s)), "zoom", name)
    base = lambda i: video[start + i]  # noqa: E731
    if motion == "flicker":  # exposure wandering by up to 15 % from frame to frame
        gains = 1 + 0.15 * rng.uniform(-1, 1, n)
        return Shot(n, lambda i: _gain(base(i), float(gains[i])), motion, name)
    if motion == "flash":  # a two-frame camera flash in the middle
        at = n // 2
        return Shot(n, lambda i: _gain(base(i), 1.8 if at <= i < at + 2 else 1.0), motion, name)
    return Shot(n, base, "", name)


def _synth_shot(identity: int, scene: int, seed: int, n: int, motion: str) -> Shot:
    """A shot of one synthetic person, with natural head motion and speech, or with a
    motion to test: fast head shaking, entering or leaving the frame, a camera pan."""
    tracks = sample_motion(n, FPS, seed, "full", aspect=SIZE[0] / SIZE[1])
    t = np.arange(n) / FPS
    ease = np.clip(t / min(1.5, n / FPS), 0, 1)
    if motion == "fast head motion":
        tracks = replace(tracks, yaw=28 * np.sin(2 * np.pi * 1.6 * t), pitch=14 * np.sin(2 * np.pi * 1.1 * t + 1),
                         tx=tracks.tx + 0.08 * np.sin(2 * np.pi * 1.3 * t))
    elif motion == "face enters":
        tracks = replace(tracks, tx=tracks.tx - 1.4 * (1 - ease))
    elif motion == "face leaves":
        tracks = replace(tracks, tx=tracks.tx + 1.4 * (1 - ease[::-1]))
    elif motion == "pan":
        shift = -0.5 * (3 * (t / t[-1]) ** 2 - 2 * (t / t[-1]) ** 3)
        tracks = replace(tracks, tx=tracks.tx + shift, drift=np.stack([shift, 0 * shift], -1))
    who, where = Identity.from_seed(identity), Scene.from_seed(scene)

    def frame(i: int) -> np.ndarray:
        drift = (float(tracks.drift[i, 0]), float(tracks.drift[i, 1]))
        return render(who, tracks.pose(i), tracks.expression(i), SIZE, "full", where, drift).image

    return Shot(n, frame, motion, f"synth {identity}/{scene}")


def synth_programme(seed: int, shots: int = 24) -> Programme:
    """Synthetic people on synthetic backdrops; some cuts keep the backdrop and change the
    person, some keep both (a jump cut: the same person in another pose and place)."""
    rng = np.random.default_rng([seed, 230])
    kinds = ["start"] + _kinds(shots - 1, 4, 2, 6, rng)
    specials = ["fast head motion", "face enters", "face leaves", "pan", "fast head motion"]
    slots = {int(k): m for k, m in zip(rng.choice(np.arange(1, shots - 1), len(specials), replace=False), specials)}
    joins = [_join(kind, rng) for kind in kinds[1:]]
    made, identity, scene = [], 0, 0
    for k, kind in enumerate(kinds):
        n = max(int(rng.integers(round(1.0 * FPS), round(4.0 * FPS) + 1)), _needs(joins, k))
        motion = slots.get(k, "")
        if motion in ("face enters", "face leaves", "pan"):
            n = max(n, 60)
        if kind != "jump cut":
            identity = int(rng.choice([i for i in SYNTH_IDENTITIES if i != identity]))
            scene = int(rng.choice(SYNTH_SCENES)) if k == 0 or rng.random() < 0.6 else scene
        made.append(_synth_shot(identity, scene, int(rng.integers(1 << 30)), n, motion))
    return Programme(f"synth-{seed}", made, joins)
