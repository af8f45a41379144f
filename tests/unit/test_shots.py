"""Shot boundaries on drawn pictures: cuts, a dissolve, a fade, and motion that is not a cut."""

from __future__ import annotations

import numpy as np
import pytest

from dpe_cli.scene.shots import ShotDetector, one_shot

FPS = 25.0
H, W = 180, 320


def _scene(seed: int) -> np.ndarray:
    """A textured picture of its own: blocks of colour, different for every seed."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(20, 235, size=(6, 10, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, H // 6, axis=0), W // 10, axis=1)


def _moving(seed: int, frames: int, step: int = 3) -> list[np.ndarray]:
    """A pan: the scene slides sideways a few pixels per frame, with a little sensor noise."""
    base = np.concatenate([_scene(seed), _scene(seed + 100), _scene(seed + 200)], axis=1)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(frames):
        frame = base[:, i * step:i * step + W].astype(np.int16) + rng.integers(-3, 4, size=(H, W, 3))
        out.append(np.clip(frame, 0, 255).astype(np.uint8))
    return out


def _detect(frames: list[np.ndarray]) -> list[tuple[int, int, str]]:
    detector = ShotDetector(FPS)
    for frame in frames:
        detector.add(frame)
    return [(s.start, s.end, s.begins) for s in detector.shots()]


def test_hard_cuts_split_the_video_where_the_picture_changes():
    frames = _moving(1, 30) + _moving(2, 40) + _moving(3, 25)
    assert _detect(frames) == [(0, 30, "start"), (30, 70, "cut"), (70, 95, "cut")]


def test_a_pan_and_a_flash_are_not_cuts():
    frames = _moving(4, 60, step=6)
    frames[30] = np.full_like(frames[30], 250)  # a camera flash: one white frame
    assert _detect(frames) == [(0, 60, "start")]


def test_a_dissolve_is_one_boundary_in_its_middle():
    a, b = _moving(5, 50, step=0), _moving(6, 40, step=0)  # a dissolve between two held shots
    ramp = 16
    blend = [((1 - t) * a[30 + i].astype(np.float32) + t * b[i].astype(np.float32)).round().astype(np.uint8)
             for i, t in enumerate(np.linspace(0, 1, ramp + 2)[1:-1])]
    frames = a[:30] + blend + b[ramp:]
    shots = _detect(frames)
    assert len(shots) == 2
    assert shots[1][2] == "dissolve"
    assert abs(shots[1][0] - (30 + ramp // 2)) <= 3


def test_a_fade_through_black_is_one_boundary():
    a, b = _moving(7, 35), _moving(8, 35)
    down = [(f.astype(np.float32) * k).astype(np.uint8) for f, k in zip(a[25:], np.linspace(0.9, 0, 10))]
    up = [(f.astype(np.float32) * k).astype(np.uint8) for f, k in zip(b[:10], np.linspace(0, 0.9, 10))]
    frames = a[:25] + down + [np.zeros_like(a[0])] * 5 + up + b[10:]
    shots = _detect(frames)
    assert [s[2] for s in shots] == ["start", "fade"]
    assert 25 <= shots[1][0] <= 50


def test_shots_cover_every_frame_in_order():
    frames = _moving(9, 20) + _moving(10, 3) + _moving(11, 20)  # a 3-frame shot: shorter than the minimum
    shots = _detect(frames)
    assert shots[0][0] == 0 and shots[-1][1] == len(frames)
    assert all(a[1] == b[0] for a, b in zip(shots, shots[1:]))


def test_one_shot_is_the_whole_video():
    assert [(s.start, s.end) for s in one_shot(12)] == [(0, 12)]
    assert one_shot(0) == []


def test_bad_frames_and_rates_are_refused():
    with pytest.raises(ValueError):
        ShotDetector(0.0)
    with pytest.raises(ValueError):
        ShotDetector(FPS).add(np.zeros((8, 8), np.uint8))
