"""Face tracks and people: ``dpe_cli.scene`` against norfair, on sequences with ground truth.

Tracks: synthetic detections (FaceBox lists, as the detection pass gives them on frames of at
most 640 px) of people who sit side by side, cross, walk past one another, are panned across,
leave and come back, with detector jitter, misses, occlusion (the face behind is not detected)
and false detections; cuts between shots. Each detection carries its true person, so a
tracker's output is scored detection by detection: switches (a track going from one person to
another), fragmentations (one person's stretch, gaps up to the bridged gap, split over several
tracks), misses and false positives of the kept tracks, and a MOTA-like score
1 - (misses + false positives + switches + fragmentations) / true detections.

People: the real faces of ../shared/media (one person per file), each in three shots (as
filmed; small in a wide frame; relit and mirrored), run through the detector, TrackLinker and
TrackSampler; and dpe synth people, each in two shots with another scene, pose and
expression. Reports the similarities that calibrate link_people and match_photo.

    .venv/bin/python bench/face_tracks.py [--seeds 5] [--no-people] [--no-norfair]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dpe_cli.face.detect import FaceBox
from dpe_cli.scene.tracks import TrackLinker

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
W, H, FPS = 640, 360, 25.0
MAX_GAP, MIN_TRACK = 0.5, 0.3  # seconds, TrackLinker's defaults
MAX_MISSING = round(MAX_GAP * FPS)


@dataclass
class Actor:
    """One person's true face per frame: centre, side, whether on screen; depth orders occlusion."""

    cx: np.ndarray
    cy: np.ndarray
    side: np.ndarray
    present: np.ndarray
    depth: float = 0.0
    missed: np.ndarray | None = None  # forced detector misses


@dataclass
class Sequence:
    name: str
    frames: int
    cuts: list[int]
    detections: list[list[tuple[FaceBox, int]]] = field(default_factory=list)  # (box, person or -1)
    segment: dict[tuple[int, int], int] = field(default_factory=dict)  # (frame, person) -> stretch number


def ramp(n: int, a: float, b: float) -> np.ndarray:
    return np.linspace(a, b, n)


def bob(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A talking head's sway: slow sines with a random phase."""
    t = np.arange(n) / FPS
    return amplitude * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6.3))


def actor(cx: np.ndarray, cy: np.ndarray, side: float | np.ndarray, depth: float = 0.0, present: np.ndarray | None = None) -> Actor:
    n = len(cx)
    return Actor(cx, cy, np.broadcast_to(np.asarray(side, float), (n,)).copy(),
                 np.ones(n, bool) if present is None else present, depth)


def scenarios(rng: np.random.Generator) -> dict[str, tuple[int, list[int], list[Actor], float, float]]:
    """name -> (frames, cut frames, actors, miss probability, false detections per frame)."""
    out = {}
    n = 250
    out["side_by_side"] = (n, [], [actor(220 + bob(n, rng, 12), 170 + bob(n, rng, 6), 110),
                                   actor(420 + bob(n, rng, 12), 175 + bob(n, rng, 6), 105)], 0.05, 0.03)
    out["side_by_side_close"] = (n, [], [actor(250 + bob(n, rng, 10), 180 + bob(n, rng, 5), 120),
                                         actor(400 + bob(n, rng, 10), 180 + bob(n, rng, 5), 115)], 0.15, 0.03)
    n = 200
    out["walk_past_in_front"] = (n, [], [actor(320 + bob(n, rng, 6), 170 + bob(n, rng, 4), 80, depth=0),
                                         actor(ramp(n, -60, 700), 190 + bob(n, rng, 8), 100, depth=1)], 0.05, 0.02)
    n = 150
    out["crossing_occluded"] = (n, [], [actor(ramp(n, 80, 560), 180 + bob(n, rng, 5), 90, depth=1),
                                        actor(ramp(n, 560, 80), 180 + bob(n, rng, 5), 90, depth=0)], 0.05, 0.02)
    out["crossing_visible"] = (n, [], [actor(ramp(n, 80, 560), 150 + bob(n, rng, 5), 90, depth=1),
                                       actor(ramp(n, 560, 80), 225 + bob(n, rng, 5), 90, depth=0)], 0.05, 0.02)
    # Both faces detected while they overlap (the one behind only partly hidden), same size.
    out["crossing_both_seen"] = (n, [], [actor(ramp(n, 80, 560), 175 + bob(n, rng, 5), 90, depth=np.nan),
                                         actor(ramp(n, 560, 80), 190 + bob(n, rng, 5), 90, depth=np.nan)], 0.05, 0.02)
    n = 150  # the camera pans 400 px in 3 s across two people, then holds
    pan = np.concatenate([np.zeros(25), -400 * (1 - np.cos(np.linspace(0, np.pi, 75))) / 2, np.full(50, -400.0)])
    out["pan_two"] = (n, [], [actor(470 + pan + bob(n, rng, 5), 170 + bob(n, rng, 4), 80),
                              actor(600 + pan + bob(n, rng, 5), 180 + bob(n, rng, 4), 75)], 0.05, 0.02)
    n = 100  # a fast pan: 13.5 px per frame
    out["pan_fast"] = (n, [], [actor(ramp(n, 620, -40) + bob(n, rng, 3), 180 + bob(n, rng, 4), 100)], 0.05, 0.02)
    n = 150  # a handheld camera: the whole picture jumps by up to a third of a face side
    shake = np.cumsum(rng.normal(0, 12, (2, n)), axis=1) * 0.5 + rng.normal(0, 10, (2, n))
    out["handheld_shake"] = (n, [], [actor(250 + shake[0], 180 + shake[1], 80), actor(390 + shake[0], 185 + shake[1], 80)], 0.05, 0.02)
    n = 100  # a zoom in: faces grow 1.8x in 2 s and move away from the centre
    zoom = np.concatenate([np.ones(25), np.linspace(1, 1.8, 50), np.full(25, 1.8)])
    out["zoom_in"] = (n, [], [actor(320 + (260 - 320) * zoom, 180 + (170 - 180) * zoom, 60 * zoom),
                              actor(320 + (380 - 320) * zoom, 180 + (190 - 180) * zoom, 55 * zoom)], 0.05, 0.02)
    n = 300
    solo = actor(320 + bob(n, rng, 30), 180 + bob(n, rng, 10), 110)
    solo.present[150:200] = False  # turned away 2 s: a new stretch
    solo.missed = np.zeros(n, bool)
    for start in range(20, n - 15, 35):  # detector misses of 3 to 12 frames: bridged
        solo.missed[start:start + int(rng.integers(3, MAX_MISSING + 1))] = True
    out["dropouts"] = (n, [], [solo], 0.05, 0.03)
    n = 250
    leaver = actor(np.concatenate([ramp(75, 400, 700), np.full(50, 700.0), ramp(125, 700, 450)]), 180 + bob(n, rng, 5), 90)
    out["leave_and_come_back"] = (n, [], [actor(150 + bob(n, rng, 8), 170 + bob(n, rng, 5), 95), leaver], 0.05, 0.02)
    n = 225  # three shots: A, then B where A was, then A and C
    a = actor(320 + bob(n, rng, 8), 180 + bob(n, rng, 5), 110, present=np.r_[np.ones(75, bool), np.zeros(75, bool), np.ones(75, bool)])
    b = actor(330 + bob(n, rng, 8), 175 + bob(n, rng, 5), 115, present=np.r_[np.zeros(75, bool), np.ones(75, bool), np.zeros(75, bool)])
    c = actor(150 + bob(n, rng, 8), 185 + bob(n, rng, 5), 90, present=np.r_[np.zeros(150, bool), np.ones(75, bool)])
    out["cuts"] = (n, [75, 150], [a, b, c], 0.05, 0.02)
    n = 250
    crowd = []
    for k in range(8):  # small faces walking about, turning and crossing
        vx = np.cumsum(rng.normal(0, 0.4, n)) + rng.uniform(-4, 4)
        crowd.append(actor(np.clip(rng.uniform(60, 580) + np.cumsum(vx), -50, 690), rng.uniform(60, 300) + bob(n, rng, 10),
                           rng.uniform(28, 60), depth=float(rng.uniform())))
    out["crowd"] = (n, [], crowd, 0.15, 0.10)
    return out


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def true_box(a: Actor, f: int) -> tuple[float, float, float, float]:
    s = a.side[f]
    return a.cx[f] - s / 2, a.cy[f] - s / 2, s, s


def simulate(name: str, spec: tuple, rng: np.random.Generator) -> Sequence:
    """The detector's view: jittered boxes of the visible faces, misses, occlusion, false detections."""
    frames, cuts, actors, miss, false_rate = spec
    seq = Sequence(name, frames, cuts)
    clutter: list[list] = []  # [x, y, side, frames left]
    detectable = np.zeros((len(actors), frames), bool)
    for f in range(frames):
        on = [k for k, a in enumerate(actors) if a.present[f] and 0 <= a.cx[f] < W and 0 <= a.cy[f] < H]
        hidden = {min(j, k, key=lambda i: actors[i].depth) for j, k in itertools.combinations(on, 2)
                  if not np.isnan(actors[j].depth) and iou(true_box(actors[j], f), true_box(actors[k], f)) > 0.2}
        row = []
        for k in on:
            if k in hidden:
                continue
            detectable[k, f] = True
            a = actors[k]
            if rng.uniform() < miss or (a.missed is not None and a.missed[f]):
                continue
            # Jitter several times mediapipe's on real footage (0.4 % of the side), and a box in
            # fifty that is off by a fifth of the side (a face turning, a hand).
            spread = 0.2 if rng.uniform() < 0.02 else 0.03
            s = a.side[f] * np.exp(rng.normal(0, spread))
            cx, cy = a.cx[f] + rng.normal(0, spread * a.side[f]), a.cy[f] + rng.normal(0, spread * a.side[f])
            row.append((FaceBox(cx - s / 2, cy - s / 2, s, s, 0.9), k))
        if rng.uniform() < false_rate:
            clutter.append([rng.uniform(0, W - 60), rng.uniform(0, H - 60), rng.uniform(20, 70), int(rng.integers(1, 5))])
        for item in clutter:
            row.append((FaceBox(item[0] + rng.normal(0, 1), item[1] + rng.normal(0, 1), item[2], item[2], 0.6), -1))
            item[3] -= 1
        clutter = [item for item in clutter if item[3] > 0]
        seq.detections.append(sorted(row, key=lambda d: -d[0].area))
    for k in range(len(actors)):  # stretches: detectable frames, split by cuts and gaps over the bridged gap
        stretch, last = -1, -10**9
        for f in np.flatnonzero(detectable[k]):
            if f - last - 1 > MAX_MISSING or any(last < c <= f for c in cuts):
                stretch += 1
            seq.segment[(int(f), k)] = stretch
            last = f
    return seq


def run_ours(seq: Sequence) -> tuple[list[list[int | None]], float]:
    linker = TrackLinker(FPS, max_gap_seconds=MAX_GAP, min_track_seconds=MIN_TRACK)
    labels = []
    began = time.perf_counter()
    for f, row in enumerate(seq.detections):
        if f in seq.cuts:
            linker.cut(f)
        labels.append([tid for tid, _ in linker.add(f, [box for box, _ in row])])
    kept = {t.id for t in linker.tracks()}
    elapsed = time.perf_counter() - began
    return [[t if t in kept else None for t in row] for row in labels], elapsed


def run_norfair(seq: Sequence, config: dict) -> tuple[list[list[int | None]], float]:
    """norfair's Tracker with box corners as points; a new Tracker at each cut."""
    from norfair import Detection, Tracker

    def make() -> Tracker:
        return Tracker(hit_counter_max=MAX_MISSING, initialization_delay=round(MIN_TRACK * FPS) - 1, **config)

    tracker, owner = make(), {}
    labels: list[list[object]] = []
    began = time.perf_counter()
    for f, row in enumerate(seq.detections):
        if f in seq.cuts:
            tracker = make()
        dets = [Detection(np.array([[b.x, b.y], [b.x + b.w, b.y + b.h]]), data=j) for j, (b, _) in enumerate(row)]
        tracker.update(dets)
        taken = {id(d): j for j, d in enumerate(dets)}
        here: list[object] = [None] * len(dets)
        for obj in tracker.tracked_objects:
            if obj.last_detection is not None and id(obj.last_detection) in taken:
                here[taken[id(obj.last_detection)]] = obj
        labels.append(here)
    elapsed = time.perf_counter() - began
    # An object that never finished initialising is a dropped (spurious) track.
    return [[id(o) if o is not None and o.id is not None else None for o in row] for row in labels], elapsed


def norfair_configs() -> dict[str, dict]:
    def scaled(detection, tracked) -> float:  # corner distance in face sides
        side = float(np.sqrt(np.prod(detection.points[1] - detection.points[0])))
        return float(np.linalg.norm(detection.points - tracked.estimate, axis=1).mean()) / max(side, 1.0)

    return {"norfair iou<0.9": {"distance_function": "iou", "distance_threshold": 0.9},
            "norfair iou<0.7": {"distance_function": "iou", "distance_threshold": 0.7},
            "norfair side-scaled corners<0.6": {"distance_function": scaled, "distance_threshold": 0.6}}


def score(seq: Sequence, labels: list[list[int | None]]) -> dict[str, int]:
    gt = misses = false_pos = switches = fragments = 0
    by_track: dict[object, list[int]] = {}
    by_stretch: dict[tuple[int, int], set] = {}
    false_of: dict[object, int] = {}
    for f, (row, tracks) in enumerate(zip(seq.detections, labels)):
        for (_, person), track in zip(row, tracks):
            if person < 0:
                false_pos += track is not None
                if track is not None:
                    false_of[track] = false_of.get(track, 0) + 1
                continue
            gt += 1
            if track is None:
                misses += 1
                continue
            by_track.setdefault(track, []).append(person)
            by_stretch.setdefault((person, seq.segment[(f, person)]), set()).add(track)
    for people in by_track.values():
        switches += sum(a != b for a, b in zip(people, people[1:]))
    fragments = sum(len(t) - 1 for t in by_stretch.values())
    false_tracks = sum(1 for t, k in false_of.items() if k > len(by_track.get(t, [])))
    return {"true_detections": gt, "misses": misses, "false_positives": false_pos, "switches": switches,
            "fragmentations": fragments, "false_tracks": false_tracks}


def linker_benchmark(seeds: int, with_norfair: bool) -> dict:
    trackers = {"dpe TrackLinker": run_ours}
    if with_norfair and importlib.util.find_spec("norfair") is None:
        print("norfair is not installed: the table has our linker only (pip install --no-deps norfair==2.3.0 filterpy==1.4.5)")
    elif with_norfair:
        for label, config in norfair_configs().items():
            trackers[label] = lambda seq, c=config: run_norfair(seq, c)
    rows: dict[str, dict[str, dict]] = {t: {} for t in trackers}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        for name, spec in scenarios(rng).items():
            seq = simulate(name, spec, rng)
            for label, run in trackers.items():
                labels, elapsed = run(seq)
                total = rows[label].setdefault(name, {"frames": 0, "seconds": 0.0})
                total["frames"] += seq.frames
                total["seconds"] += elapsed
                for key, value in score(seq, labels).items():
                    total[key] = total.get(key, 0) + value
    for per_scene in rows.values():
        every = {}
        for name, r in per_scene.items():
            for key, value in r.items():
                every[key] = every.get(key, 0) + value
        per_scene["all"] = every
        for r in per_scene.values():
            r["mota"] = round(1 - (r["misses"] + r["false_positives"] + r["switches"] + r["fragmentations"]) / r["true_detections"], 4)
            r["ms_per_frame"] = round(1000 * r.pop("seconds") / r["frames"], 3)
    return rows


def media_people() -> list[Path]:
    """One person per file of the shared media (each file shows someone else)."""
    return sorted(p for p in MEDIA.iterdir() if p.suffix in (".mp4", ".png", ".jpg"))


def detect_size(width: int, height: int) -> tuple[int, int] | None:
    shrink = min(1.0, 640 / max(width, height))
    return (round(width * shrink), round(height * shrink)) if shrink < 1 else None


def variant(frame: np.ndarray, how: str) -> np.ndarray:
    """Another shot of the same person: as filmed, small in a wide frame, or relit and mirrored."""
    if how == "wide":
        small = cv2.resize(frame, (round(140 * frame.shape[1] / frame.shape[0]), 140), interpolation=cv2.INTER_AREA)
        canvas = np.tile(np.linspace(60, 170, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
        x = min(380, W - small.shape[1])
        canvas[150:290, x:x + small.shape[1]] = small[:, : W - x]
        return canvas
    if how == "relit":
        lit = 255.0 * (frame / 255.0) ** 1.5 * np.array([1.08, 1.0, 0.85])
        return cv2.GaussianBlur(np.clip(lit, 0, 255).astype(np.uint8)[:, ::-1], (3, 3), 0)
    return frame


def media_shots(path: Path, how: str, half: int) -> Iterator[np.ndarray]:
    """Frames (at most 640 px) of one half of a video, 4 s at most; a still held for 2.4 s."""
    from dpe_cli.video import FrameReader

    reader = FrameReader(path)
    reader = FrameReader(path, size=detect_size(reader.width, reader.height))
    if reader.info.kind == "image":
        frame = next(iter(reader))
        yield from (variant(frame, how) for _ in range(60))
        return
    count = reader.frame_count_estimate
    lo, hi = (0, count // 2) if half == 0 else (count // 2, count)
    for i, frame in enumerate(reader):
        if lo <= i < min(hi, lo + 100):
            yield variant(frame, how)
        elif i >= hi:
            break


def track_programme(shots: list[tuple[int, Iterable[np.ndarray]]], detector, describer) -> tuple[list, dict, dict]:
    """Runs the pass's scene work over shots of (true person, frames): tracks, descriptors, truth."""
    from dpe_cli.scene.people import TrackSampler

    linker = TrackLinker(FPS)
    sampler = TrackSampler(describer, FPS)
    truth: dict[int, int] = {}
    f = 0
    for person, frames in shots:
        if f:
            linker.cut(f)
        for frame in frames:
            for track_id, face in linker.add(f, detector.detect(frame)):
                sampler.offer(track_id, f, frame, face)
                truth[track_id] = person
            f += 1
    tracks = linker.tracks()
    return tracks, {t.id: sampler.descriptors(t.id) for t in tracks}, truth


def pair_figures(tracks: list, vectors: dict, truth: dict) -> dict:
    """Mean and best-pair similarity of tracks of one person and of two people."""
    sims: dict[str, dict[str, list[float]]] = {"mean": {"same": [], "different": []}, "best": {"same": [], "different": []}}
    for a, b in itertools.combinations([t for t in tracks if len(vectors[t.id])], 2):
        s = vectors[a.id] @ vectors[b.id].T
        kind = "same" if truth[a.id] == truth[b.id] else "different"
        sims["mean"][kind].append(float(s.mean()))
        sims["best"][kind].append(float(s.max()))
    return {link: {"same_min": round(min(v["same"]), 4), "same_median": round(float(np.median(v["same"])), 4),
                   "different_max": round(max(v["different"]), 4), "different_median": round(float(np.median(v["different"])), 4),
                   "margin": round(min(v["same"]) - max(v["different"]), 4)} for link, v in sims.items()}


def linking_figures(tracks: list, vectors: dict, truth: dict) -> dict:
    from dpe_cli.scene.people import LINK_THRESHOLD, link_people

    found = link_people(tracks, vectors)
    kept = [t for t in tracks if len(vectors[t.id])]
    merged = sum(1 for a, b in itertools.combinations(kept, 2) if truth[a.id] != truth[b.id] and found[a.id] == found[b.id])
    split = sum(1 for a, b in itertools.combinations(kept, 2) if truth[a.id] == truth[b.id] and found[a.id] != found[b.id])
    return {"threshold": LINK_THRESHOLD, "tracks": len(tracks), "tracks_described": len(kept),
            "people_true": len({truth[t.id] for t in tracks}), "people_found": len(set(found.values())),
            "wrongly_joined_pairs": merged, "wrongly_split_pairs": split}


def photo_figures(paths: list[Path], tracks: list, vectors: dict, truth: dict, detector, describer) -> dict:
    """Each file's photo (a full-size frame from late in the video, brightened; a still itself)."""
    from dpe_cli.scene.people import PHOTO_THRESHOLD, link_people, match_photo, person_descriptors
    from dpe_cli.video import FrameReader

    found = link_people(tracks, vectors)
    people = person_descriptors(found, vectors)
    person_of = {}
    for t in tracks:  # the found person holding most of this true person's tracks
        person_of.setdefault(truth[t.id], []).append(found[t.id])
    own, other, right, wrong, none, false_match = [], [], 0, 0, 0, 0
    for k, path in enumerate(paths):
        reader = FrameReader(path)
        frames = list(itertools.islice(reader, int(0.75 * max(reader.frame_count_estimate, 1)) + 1))
        photo = np.clip(frames[-1] * 1.15 + 10, 0, 255).astype(np.uint8)
        faces = detector.detect(photo)
        if not faces or k not in person_of:
            continue
        descriptor = describer.describe(photo, faces[0])
        mine = max(set(person_of[k]), key=person_of[k].count)
        scores = {p: float((descriptor @ v.T).mean()) for p, v in people.items() if len(v)}
        own.append(scores[mine])
        other.append(max(s for p, s in scores.items() if p != mine))
        got = match_photo(descriptor, people)
        right += got == mine
        wrong += got is not None and got != mine
        none += got is None
        false_match += match_photo(descriptor, {p: v for p, v in people.items() if p != mine}) is not None
    return {"threshold": PHOTO_THRESHOLD, "photos": len(own), "own_min": round(min(own), 4), "other_max": round(max(other), 4),
            "matched_right": right, "matched_wrong": wrong, "matched_none": none,
            "false_matches_when_absent": false_match}


def synth_shot(seed: int, shot: int) -> Iterator[np.ndarray]:
    """Two seconds and a half of one dpe synth person: 12 poses and expressions, each held 5 frames."""
    from dpe_cli.synth import Expression, Identity, Pose, Scene, render_frame

    rng = np.random.default_rng([seed, shot])
    person, scene = Identity.from_seed(seed), Scene.from_seed(seed * 10 + shot + 1)
    tx, scale = rng.uniform(-0.45, 0.45), rng.uniform(0.7, 1.2)
    for _ in range(12):
        pose = Pose(yaw=rng.uniform(-25, 25), pitch=rng.uniform(-10, 10), roll=rng.uniform(-8, 8), tx=tx,
                    ty=rng.uniform(-0.1, 0.1), scale=scale)
        face = Expression(mouth_open=rng.uniform(0, 0.8), smile=rng.uniform(-0.5, 1), brow_raise=rng.uniform(-0.5, 0.8))
        frame = render_frame(person, pose, face, (W, H), scene)
        yield from (frame for _ in range(5))


def people_benchmark(synth_people: int) -> dict:
    from dpe_cli.face.detect import FaceDetector
    from dpe_cli.scene.people import FaceDescriber

    if FaceDescriber.unavailable_reason():
        return {"skipped": FaceDescriber.unavailable_reason()}
    describer = FaceDescriber()
    paths = media_people()
    result: dict = {"media": [p.name for p in paths]}
    with FaceDetector() as detector:
        shots = [(k, media_shots(p, how, half)) for how, half in (("filmed", 0), ("wide", 1), ("relit", 1))
                 for k, p in enumerate(paths)]
        began = time.perf_counter()
        tracks, vectors, truth = track_programme(shots, detector, describer)
        result["real_seconds"] = round(time.perf_counter() - began, 1)
        result["real_pairs"] = pair_figures(tracks, vectors, truth)
        result["real_linking"] = linking_figures(tracks, vectors, truth)
        result["real_photos"] = photo_figures(paths, tracks, vectors, truth, detector, describer)
        seeds = range(130000, 130000 + synth_people)  # identities no other benchmark uses
        shots = [(seed, synth_shot(seed, shot)) for shot in (0, 1) for seed in seeds]
        tracks, vectors, truth = track_programme(shots, detector, describer)
        result["synth_pairs"] = pair_figures(tracks, vectors, truth)
        result["synth_linking"] = linking_figures(tracks, vectors, truth)
        means = {t.id: vectors[t.id].mean(axis=0) for t in tracks if len(vectors[t.id])}
        first = {truth[t.id]: t.id for t in reversed(tracks) if t.id in means and t.first < len(seeds) * 60}
        second = {truth[t.id]: t.id for t in tracks if t.id in means and t.first >= len(seeds) * 60}
        hits = sum(max(second, key=lambda s: means[first[p]] @ means[second[s]]) == p for p in first if p in second)
        result["synth_retrieval_top1"] = round(hits / max(len(first), 1), 3)
    return result


def table(rows: dict) -> str:
    lines = ["| tracker | switches | fragmentations | misses | false positives | MOTA-like | ms per frame |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for label, per_scene in rows.items():
        r = per_scene["all"]
        lines.append(f"| {label} | {r['switches']} | {r['fragmentations']} | {r['misses']} | {r['false_positives']} | {r['mota']:.4f} | {r['ms_per_frame']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="random draws of every scenario")
    parser.add_argument("--synth-people", type=int, default=12)
    parser.add_argument("--no-people", action="store_true", help="skip the descriptor part (dlib)")
    parser.add_argument("--no-norfair", action="store_true", help="skip norfair (not a dependency of dpe)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "face_tracks.json")
    args = parser.parse_args()
    rows = linker_benchmark(args.seeds, not args.no_norfair)
    print(table(rows))
    for label, per_scene in rows.items():
        bad = {name: (r["switches"], r["fragmentations"]) for name, r in per_scene.items() if name != "all" and (r["switches"] or r["fragmentations"])}
        print(f"{label}: (switches, fragmentations) by scenario: {bad or 'none'}")
    result = {"machine": platform.processor() or platform.machine(), "seeds": args.seeds, "fps": FPS,
              "max_gap_seconds": MAX_GAP, "min_track_seconds": MIN_TRACK, "tracks": rows}
    if not args.no_people:
        result["people"] = people_benchmark(args.synth_people)
        print(json.dumps(result["people"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
