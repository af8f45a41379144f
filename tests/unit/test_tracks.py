"""Face tracks: detections linked into one track per face and shot (dpe_cli.scene.tracks)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dpe_cli.face.detect import FaceBox
from dpe_cli.scene.tracks import TrackLinker, assign

FPS = 25.0


def face(cx: float, cy: float, side: float) -> FaceBox:
    return FaceBox(cx - side / 2, cy - side / 2, side, side, 0.9)


def run(frames: list[list[FaceBox]], cuts: tuple[int, ...] = (), **options) -> tuple[TrackLinker, list[list[int]]]:
    linker = TrackLinker(FPS, **options)
    ids = []
    for f, faces in enumerate(frames):
        if f in cuts:
            linker.cut(f)
        assigned = linker.add(f, faces)
        assert [box for _, box in assigned] == faces  # every face comes back, in order
        ids.append([track_id for track_id, _ in assigned])
    return linker, ids


def test_two_people_side_by_side_keep_their_tracks_through_jitter_and_misses():
    rng = np.random.default_rng(0)
    frames = []
    for f in range(200):
        row = []
        for cx in (220.0, 380.0):  # 1.3 face sides apart
            if rng.uniform() > 0.15:
                row.append(face(cx + rng.normal(0, 4), 180 + rng.normal(0, 4), 120 * np.exp(rng.normal(0, 0.03))))
        frames.append(row)
    linker, _ = run(frames)
    tracks = linker.tracks()
    assert len(tracks) == 2
    for t in tracks:
        centres = t.boxes[:, 0] + t.boxes[:, 2] / 2
        assert np.ptp(centres) < 60  # never jumped to the other person
        assert t.first <= 2 and t.last >= 197 and t.shot == 0
        assert t.frames.dtype == np.int64 and t.boxes.dtype == np.float32 and t.boxes.shape == (len(t.frames), 4)
        assert 110 < t.median_side() < 130
    assert [t.id for t in tracks] == [0, 1]


@pytest.mark.parametrize("both_seen", [True, False])
def test_people_crossing_do_not_swap(both_seen):
    """Two people walk past each other; the one behind is either seen or hidden while they overlap."""
    n = 150
    frames = []
    for f in range(n):
        a, b = 80 + 480 * f / (n - 1), 560 - 480 * f / (n - 1)
        row = [face(a, 170, 100)]
        if both_seen or abs(a - b) > 35:  # hidden for 11 frames (0.44 s)
            row.append(face(b, 195, 80))
        frames.append(row)
    linker, _ = run(frames)
    tracks = linker.tracks()
    assert len(tracks) == 2
    big, small = sorted(tracks, key=lambda t: -t.median_side())
    assert np.all(np.diff(big.boxes[:, 0]) > 0) and np.all(np.diff(small.boxes[:, 0]) < 0)  # each keeps its direction
    assert big.boxes[:, 2].min() == small.boxes[:, 2].max() + 20  # and its own size
    assert big.first == small.first == 0 and big.last == small.last == n - 1


def test_a_pan_across_two_people_keeps_both_tracks():
    n = 100
    frames = [[face(560 - 6 * f, 170, 80), face(420 - 6 * f, 185, 75)] for f in range(n)]  # 6 px per frame
    tracks = run(frames)[0].tracks()
    assert len(tracks) == 2 and all(len(t.frames) == n for t in tracks)
    assert {round(float(t.median_side())) for t in tracks} == {80, 75}


def test_a_gap_up_to_the_limit_is_bridged_and_a_longer_one_splits():
    def clip(missing: int) -> list[list[FaceBox]]:
        return [[] if 20 <= f < 20 + missing else [face(300 + 2 * f, 180, 100)] for f in range(60)]

    bridged = run(clip(12), max_gap_seconds=0.5)[0].tracks()  # 12 frames = 0.48 s
    assert len(bridged) == 1 and len(bridged[0].frames) == 48 and bridged[0].last == 59
    split = run(clip(14), max_gap_seconds=0.5)[0].tracks()  # 0.56 s
    assert [(t.first, t.last) for t in split] == [(0, 19), (34, 59)]


def test_a_cut_closes_every_track_even_where_the_next_shot_has_a_face_in_the_same_place():
    frames = [[face(320, 180, 110)] for _ in range(40)] + [[face(322, 181, 112)] for _ in range(40)]
    linker, ids = run(frames, cuts=(40,))
    tracks = linker.tracks()
    assert [(t.shot, t.first, t.last) for t in tracks] == [(0, 0, 39), (1, 40, 79)]
    assert ids[39] != ids[40]
    # a cut before the first frame, or twice at one frame, starts no extra shot
    linker = TrackLinker(FPS)
    linker.cut(0)
    linker.cut(0)
    for f in range(10):
        linker.add(f, [face(100, 100, 50)])
    assert linker.tracks()[0].shot == 0


def test_short_spurious_detections_are_dropped_and_leave_the_real_track_alone():
    frames = []
    for f in range(100):
        row = [face(320, 180, 110)]
        if f in (10, 11, 12, 50, 70, 71):  # flickers elsewhere: a poster, a hand
            row.append(face(80 + f, 60, 40))
        frames.append(row)
    linker, ids = run(frames, min_track_seconds=0.3)
    tracks = linker.tracks()
    assert len(tracks) == 1 and len(tracks[0].frames) == 100
    assert ids[10][1] != ids[0][0]  # while streaming, the flicker had a track of its own


def test_an_empty_video_and_frames_out_of_order():
    linker = TrackLinker(FPS)
    for f in range(30):
        assert linker.add(f, []) == []
    assert linker.tracks() == []
    with pytest.raises(ValueError):
        linker.add(29, [])
    with pytest.raises(ValueError):
        TrackLinker(0.0)


def test_assign_is_the_optimal_assignment():
    rng = np.random.default_rng(1)
    for _ in range(200):
        rows, cols = int(rng.integers(1, 5)), int(rng.integers(4, 7))
        cost = np.round(rng.uniform(0, 5, (rows, cols)), 1)
        best = min(sum(cost[i, c] for i, c in enumerate(p)) for p in itertools.permutations(range(cols), rows))
        got = assign(cost)
        assert len(set(got)) == rows and np.isclose(sum(cost[i, c] for i, c in enumerate(got)), best)
