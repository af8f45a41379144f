"""Smooth random pose and expression trajectories for synthetic talking-head clips.

Slow factors (head pose, smile, brows) are sums of a few random low-frequency sinusoids,
rescaled so every clip sweeps its own randomly sized part of the allowed range; the mouth
follows a speech-like pattern (talk bursts of syllable-rate openings separated by pauses);
blinks are short random events. Every track stays inside ``POSE_LIMITS`` and the expression
ranges, so frames stay within what the face detectors are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpe_cli.choices import SYNTH_MOTIONS as MOTIONS
from dpe_cli.synth.params import Expression, Pose

# Degrees; the renderer is checked against mediapipe's detectors within these.
POSE_LIMITS = {"yaw": 30.0, "pitch": 20.0, "roll": 20.0}
TRACKS = ("yaw", "pitch", "roll", "tx", "ty", "scale", "mouth_open", "smile", "blink", "brow_raise")


@dataclass(frozen=True)
class Motion:
    """Per-frame tracks (arrays of n_frames), plus a slow backdrop drift for full frames."""

    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray
    tx: np.ndarray
    ty: np.ndarray
    scale: np.ndarray
    mouth_open: np.ndarray
    smile: np.ndarray
    blink: np.ndarray
    brow_raise: np.ndarray
    drift: np.ndarray  # (n_frames, 2), fraction of the image's short side

    def pose(self, i: int) -> Pose:
        return Pose(*(float(getattr(self, k)[i]) for k in TRACKS[:6]))

    def expression(self, i: int) -> Expression:
        return Expression(*(float(getattr(self, k)[i]) for k in TRACKS[6:]))


def smooth_wave(rng: np.random.Generator, n: int, fps: float, max_hz: float, waves: int = 4) -> np.ndarray:
    """A smooth zero-mean random signal whose largest excursion is exactly 1.

    Frequencies are drawn between 1/20 of max_hz and max_hz, with amplitude falling as 1/f
    so slow drifts dominate the way they do in real head motion.
    """
    t = np.arange(n) / fps
    freq = rng.uniform(max_hz / 20.0, max_hz, waves)
    phase = rng.uniform(0.0, 2 * np.pi, waves)
    amp = rng.uniform(0.5, 1.0, waves) / freq
    sig = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t + phase[:, None])).sum(0)
    sig -= sig.mean() if n > 1 else 0.0
    peak = np.abs(sig).max()
    return sig / peak if peak > 1e-9 else np.zeros(n)


def _bounded(rng: np.random.Generator, n: int, fps: float, limit: float, max_hz: float,
             min_extent: float = 0.25) -> np.ndarray:
    """A wave around a random centre; centre +- extent never leaves [-limit, limit]."""
    extent = rng.uniform(min_extent, 1.0) * limit
    centre = rng.uniform(-1.0, 1.0) * (limit - extent) * 0.5
    return centre + extent * smooth_wave(rng, n, fps, max_hz)


def blinks(rng: np.random.Generator, n: int, fps: float, rate_hz: float) -> np.ndarray:
    """Eyelid closure in [0, 1]: Poisson-timed blinks, quick to close and slower to open."""
    out = np.zeros(n)
    t = np.arange(n) / fps
    when = rng.uniform(-0.3, 0.5)
    while when < n / fps:
        close, reopen = rng.uniform(0.06, 0.1), rng.uniform(0.1, 0.22)
        depth = 1.0 if rng.random() < 0.85 else rng.uniform(0.5, 0.9)
        rise = np.clip((t - when) / close + 1.0, 0.0, 1.0)
        fall = np.clip(1.0 - (t - when) / reopen, 0.0, 1.0)
        shape = np.where(t < when, rise, fall)
        out = np.maximum(out, depth * np.sin(0.5 * np.pi * shape) ** 2)
        when += rng.exponential(1.0 / rate_hz) + close + reopen
    return out


def speech(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """Mouth opening in [0, 1]: talk bursts of syllable-rate openings between pauses."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    start = rng.uniform(-1.0, 0.5)
    while start < n / fps:
        length = rng.uniform(0.8, 3.0)
        rate = rng.uniform(3.0, 5.5)
        loud = rng.uniform(0.35, 1.0)
        phase = rng.uniform(0, 2 * np.pi)
        inside = np.clip(np.minimum(t - start, start + length - t) / 0.15, 0.0, 1.0)
        syll = (0.5 - 0.5 * np.cos(2 * np.pi * rate * (t - start) + phase)) ** 1.5
        accent = 0.75 + 0.25 * np.sin(2 * np.pi * 0.7 * (t - start) + phase)
        out = np.maximum(out, inside * loud * syll * accent)
        start += length + rng.uniform(0.25, 1.5)
    return np.clip(out, 0.0, 1.0)


def sample_motion(n_frames: int, fps: float, seed: int, kind: str = "crop", aspect: float = 1.0) -> Motion:
    """Tracks for one clip. ``kind="full"`` places the head somewhere in a frame of the given
    width/height ``aspect`` and lets the backdrop drift; crops keep the head near the centre."""
    rng = np.random.default_rng([int(seed), 0x40])
    n = int(n_frames)
    yaw = _bounded(rng, n, fps, POSE_LIMITS["yaw"], 0.35)
    pitch = _bounded(rng, n, fps, POSE_LIMITS["pitch"], 0.4)
    roll = _bounded(rng, n, fps, POSE_LIMITS["roll"], 0.3, min_extent=0.15)
    if kind == "full":
        room = max(0.5 * aspect - 0.42, 0.0)
        tx = rng.uniform(-room, room) + 0.04 * smooth_wave(rng, n, fps, 0.2)
        ty = rng.uniform(0.0, 0.08) + 0.03 * smooth_wave(rng, n, fps, 0.2)
        scale = rng.uniform(0.92, 1.12) + 0.06 * smooth_wave(rng, n, fps, 0.15)
        drift = 0.02 * np.stack([smooth_wave(rng, n, fps, 0.1), smooth_wave(rng, n, fps, 0.1)], -1)
    else:
        tx = 0.03 * smooth_wave(rng, n, fps, 0.3)
        ty = 0.03 * smooth_wave(rng, n, fps, 0.3)
        scale = 1.0 + 0.05 * smooth_wave(rng, n, fps, 0.2)
        drift = np.zeros((n, 2))
    smile = np.clip(rng.uniform(-0.3, 0.5) + rng.uniform(0.2, 0.8) * smooth_wave(rng, n, fps, 0.3), -1, 1)
    brow = np.clip(rng.uniform(-0.3, 0.3) + rng.uniform(0.2, 0.8) * smooth_wave(rng, n, fps, 0.5), -1, 1)
    return Motion(
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        tx=tx,
        ty=ty,
        scale=scale,
        mouth_open=speech(rng, n, fps),
        smile=smile,
        blink=blinks(rng, n, fps, rng.uniform(0.15, 0.5)),
        brow_raise=brow,
        drift=drift,
    )


def random_pose(rng: np.random.Generator) -> Pose:
    """A pose drawn uniformly within POSE_LIMITS, with small crop jitter."""
    return Pose(
        yaw=float(rng.uniform(-1, 1) * POSE_LIMITS["yaw"]),
        pitch=float(rng.uniform(-1, 1) * POSE_LIMITS["pitch"]),
        roll=float(rng.uniform(-1, 1) * POSE_LIMITS["roll"]),
        tx=float(rng.uniform(-0.03, 0.03)),
        ty=float(rng.uniform(-0.03, 0.03)),
        scale=float(rng.uniform(0.95, 1.05)),
    )


def random_expression(rng: np.random.Generator) -> Expression:
    """An expression drawn uniformly over its ranges (eyes open most of the time)."""
    return Expression(
        mouth_open=float(rng.uniform(0, 1)),
        smile=float(rng.uniform(-1, 1)),
        blink=float(rng.uniform(0, 1) if rng.random() < 0.3 else 0.0),
        brow_raise=float(rng.uniform(-1, 1)),
    )


def sample_keyframes(n_frames: int, seed: int) -> Motion:
    """Tracks in which every frame draws its pose and expression independently (as
    :func:`random_pose` and :func:`random_expression`): a clip cut down to keyframes. Two frames
    of one clip then differ as much as any two renders, so training pairs drawn from a clip span
    each factor's whole range (in a smooth clip a mouth moves about half as far)."""
    rng = np.random.default_rng([int(seed), 0x4B46])
    frames = [(random_pose(rng), random_expression(rng)) for _ in range(int(n_frames))]
    tracks = {k: np.array([getattr(pose, k) for pose, _ in frames]) for k in TRACKS[:6]}
    tracks.update({k: np.array([getattr(expression, k) for _, expression in frames]) for k in TRACKS[6:]})
    return Motion(**tracks, drift=np.zeros((len(frames), 2)))
