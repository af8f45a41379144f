"""Face tracks: per-frame detections linked into one track per face and shot, while streaming.

Each open track predicts where its face is now from its last few detections (a robust
constant-velocity line, shrunk towards standing still while the history is short, so detector
jitter is not extrapolated across a gap). A detection may join a track only inside a gate: its
centre within a fraction of the face side of the prediction (wider where the track's own
predictions have been off, as with a shaking camera, and the longer it has gone unseen), its
size within a factor of the predicted size. Inside the gate the cost is the centre distance,
the size ratio and the overlap; one optimal assignment per frame (Hungarian method) decides,
young tracks paying a little more, so two people side by side, or one walking past the other,
keep their tracks. A track unseen for longer than ``max_gap_seconds`` closes; a cut closes them
all. Tracks with fewer detections than ``min_track_seconds`` of frames are false detections
and are dropped at the end (their ids are not reused, so ids handed out while streaming stay
valid). Measured against norfair in ``bench/face_tracks.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dpe_cli.face.detect import FaceBox

HISTORY = 5  # detections the motion is fitted on
GATE_CENTER = 0.6  # centre distance / face side allowed one frame after a detection
GATE_ERRORS = 3.0  # ... or this many times the track's typical prediction error, if larger (a shaking camera)
ERROR_START, ERROR_WEIGHT = 0.1, 0.3  # that error: a running mean of centre distance / side
GATE_CENTER_PER_FRAME = 0.06  # the gate widens this much per frame the track went unseen
GATE_CENTER_MAX = 1.4
GATE_SIZE = math.log(1.8)  # |log(detected side / predicted side)|
SIZE_WEIGHT, IOU_WEIGHT = 2.0, 0.5  # the cost: centre distance / side + these times |log size ratio| and 1 - IoU
GAP_COST = 0.02  # per unseen frame: a track seen just now wins a tie against one coming back
YOUNG_COST = 0.5  # added for a track with fewer than min_detections: established tracks win ties
UNMATCHED_COST = 2.0  # a track takes a detection only when the match costs less than this


@dataclass
class Track:
    """One face followed through one shot: the frames it was detected in and its boxes there."""

    id: int  # unique over the video, in order of first appearance (dropped tracks leave gaps)
    shot: int  # index of the shot it lies in (tracks never cross a cut)
    frames: np.ndarray  # int64 (n,) ascending frame indices where it was detected (gaps allowed)
    boxes: np.ndarray  # float32 (n, 4): x, y, w, h of the detection at each of those frames

    @property
    def first(self) -> int:
        return int(self.frames[0])

    @property
    def last(self) -> int:
        """The last detected frame (inclusive)."""
        return int(self.frames[-1])

    def median_side(self) -> float:
        """Median face side, max(w, h) as the crop box measures it."""
        return float(np.median(np.maximum(self.boxes[:, 2], self.boxes[:, 3])))

    def overlaps(self, other: Track) -> bool:
        """Whether the two tracks' spans share a frame (then they are two different faces)."""
        return self.first <= other.last and other.first <= self.last


class _OpenTrack:
    """A track still taking detections: its detections so far and its motion model."""

    def __init__(self, track_id: int, shot: int) -> None:
        self.id = track_id
        self.shot = shot
        self.frames: list[int] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.error = ERROR_START
        self.predicted: tuple[int, np.ndarray] | None = None  # (frame, state) of the latest prediction

    @property
    def last(self) -> int:
        return self.frames[-1]

    def add(self, frame: int, face: FaceBox) -> None:
        if self.predicted is not None and self.predicted[0] == frame:
            cx, cy, log_w, log_h = self.predicted[1]
            fx, fy = face.center
            miss = math.hypot(fx - cx, fy - cy) / math.exp((log_w + log_h) / 2)
            self.error += ERROR_WEIGHT * (miss - self.error)
        self.frames.append(frame)
        self.boxes.append((face.x, face.y, face.w, face.h))

    def predict(self, frame: int) -> np.ndarray:
        """Centre x, y and log w, log h expected at ``frame``.

        A Theil-Sen line (median of the pairwise slopes, then the median intercept) through the
        last HISTORY detections: one bad box among them (a face turning, a hand) moves it little.
        The slope is shrunk by (n - 1) / n, as a short history is mostly jitter.
        """
        recent = np.asarray(self.boxes[-HISTORY:], dtype=np.float64)
        state = np.column_stack([recent[:, 0] + recent[:, 2] / 2, recent[:, 1] + recent[:, 3] / 2,
                                 np.log(recent[:, 2]), np.log(recent[:, 3])])
        t = np.asarray(self.frames[-HISTORY:], dtype=np.float64)
        n = len(t)
        if n == 1:
            return state[0]
        i, j = np.triu_indices(n, 1)
        slope = np.median((state[j] - state[i]) / (t[j] - t[i])[:, None], axis=0) * (n - 1) / n
        return np.median(state + slope * (frame - t)[:, None], axis=0)

    def close(self) -> Track:
        return Track(self.id, self.shot, np.asarray(self.frames, dtype=np.int64),
                     np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4))


def match_cost(predicted: np.ndarray, face: FaceBox, unseen: int, error: float = ERROR_START) -> float:
    """Cost of giving ``face`` to a track predicted at ``predicted``, inf outside the gate.

    ``unseen`` is the number of frames since the track's last detection (1 = the previous frame),
    ``error`` the track's typical prediction error (centre distance / side).
    """
    cx, cy, log_w, log_h = predicted
    w, h = math.exp(log_w), math.exp(log_h)
    side = math.sqrt(w * h)
    fx, fy = face.center
    distance = math.hypot(fx - cx, fy - cy) / side
    size = abs(0.5 * math.log(max(face.w * face.h, 1e-6) / (w * h)))
    gate = min(max(GATE_CENTER, GATE_ERRORS * error) + GATE_CENTER_PER_FRAME * (unseen - 1), GATE_CENTER_MAX)
    if distance > gate or size > GATE_SIZE:
        return math.inf
    ix = max(0.0, min(cx + w / 2, face.x + face.w) - max(cx - w / 2, face.x))
    iy = max(0.0, min(cy + h / 2, face.y + face.h) - max(cy - h / 2, face.y))
    inter = ix * iy
    iou = inter / (w * h + face.w * face.h - inter)
    return distance + SIZE_WEIGHT * size + IOU_WEIGHT * (1.0 - iou) + GAP_COST * (unseen - 1)


def assign(cost: np.ndarray) -> list[int]:
    """Minimum-cost assignment of every row to a distinct column (rows <= columns, finite costs).

    The Hungarian method with potentials, O(rows^2 x columns): ``result[i]`` is row i's column.
    """
    rows, cols = cost.shape
    u, v = np.zeros(rows + 1), np.zeros(cols + 1)
    owner = np.zeros(cols + 1, dtype=np.int64)  # owner[j]: 1-based row holding column j (0: free)
    way = np.zeros(cols + 1, dtype=np.int64)
    for row in range(1, rows + 1):
        owner[0] = row
        col = 0
        reach = np.full(cols + 1, np.inf)
        used = np.zeros(cols + 1, dtype=bool)
        while owner[col] != 0:
            used[col] = True
            i = owner[col]
            free = ~used[1:]
            reduced = cost[i - 1] - u[i] - v[1:]
            better = free & (reduced < reach[1:])
            reach[1:][better] = reduced[better]
            way[1:][better] = col
            candidates = np.where(free, reach[1:], np.inf)
            nxt = int(np.argmin(candidates)) + 1
            delta = candidates[nxt - 1]
            u[owner[used]] += delta
            v[used] -= delta
            reach[1:][free] -= delta
            col = nxt
        while col != 0:
            prev = way[col]
            owner[col] = owner[prev]
            col = prev
    result = [0] * rows
    for j in range(1, cols + 1):
        if owner[j]:
            result[owner[j] - 1] = j - 1
    return result


class TrackLinker:
    """Links per-frame detections into tracks within a shot, streaming, memory linear only in the
    number of detections kept (n x 5 numbers)."""

    def __init__(self, fps: float, *, max_gap_seconds: float = 0.5, min_track_seconds: float = 0.3) -> None:
        if fps <= 0 or max_gap_seconds < 0 or min_track_seconds < 0:
            raise ValueError(f"fps must be positive and the durations >= 0, got {fps}, {max_gap_seconds}, {min_track_seconds}")
        self.fps = fps
        self.max_missing = round(max_gap_seconds * fps)  # missing frames a track survives
        self.min_detections = max(1, math.ceil(min_track_seconds * fps - 1e-9))
        self._open: list[_OpenTrack] = []
        self._closed: list[Track] = []
        self._next_id = 0
        self._shot = 0
        self._frames_in_shot = 0
        self._last_frame = -1

    def add(self, frame_index: int, faces: list[FaceBox]) -> list[tuple[int, FaceBox]]:
        """Take one frame's detections (called for every frame in order, ``[]`` without a face).

        Returns (track id, face) for every face, in the order given: the open track it joined,
        or the new track it starts.
        """
        if frame_index <= self._last_frame:
            raise ValueError(f"frame {frame_index} comes after frame {self._last_frame}")
        self._last_frame = frame_index
        self._frames_in_shot += 1
        self._expire(frame_index)
        owners = self._match(frame_index, faces)
        assigned = []
        for face, track in zip(faces, owners):
            if track is None:
                track = _OpenTrack(self._next_id, self._shot)
                self._next_id += 1
                self._open.append(track)
            track.add(frame_index, face)
            assigned.append((track.id, face))
        return assigned

    def cut(self, frame_index: int) -> None:
        """A new shot starts at ``frame_index``: close every open track (a cut before the first
        frame, or a second one at the same frame, starts no extra shot)."""
        if frame_index <= self._last_frame:
            raise ValueError(f"a cut at frame {frame_index} comes after frame {self._last_frame}")
        self._closed.extend(track.close() for track in self._open)
        self._open = []
        if self._frames_in_shot:
            self._shot += 1
            self._frames_in_shot = 0

    def tracks(self) -> list[Track]:
        """All tracks so far (open ones as they stand), in id order, short spurious ones dropped."""
        every = self._closed + [track.close() for track in self._open]
        return sorted((t for t in every if len(t.frames) >= self.min_detections), key=lambda t: t.id)

    def _expire(self, frame_index: int) -> None:
        alive = []
        for track in self._open:
            if frame_index - track.last - 1 > self.max_missing:
                self._closed.append(track.close())
            else:
                alive.append(track)
        self._open = alive

    def _match(self, frame_index: int, faces: list[FaceBox]) -> list[_OpenTrack | None]:
        """The open track each face joins (None: it starts a new one).

        One optimal assignment; young tracks (fewer than min_detections) pay YOUNG_COST more,
        so a track born of a stray box cannot take turns with the established one.
        """
        if not faces or not self._open:
            return [None] * len(faces)
        tracks, n = self._open, len(faces)
        # Columns: the faces, then one "stays unmatched" column per track.
        cost = np.full((len(tracks), n + len(tracks)), 1e9)
        for i, track in enumerate(tracks):
            predicted = track.predict(frame_index)
            track.predicted = (frame_index, predicted)
            unseen = frame_index - track.last
            extra = YOUNG_COST if len(track.frames) < self.min_detections else 0.0
            for j, face in enumerate(faces):
                c = match_cost(predicted, face, unseen, track.error) + extra
                if c < UNMATCHED_COST:
                    cost[i, j] = c
            cost[i, n + i] = UNMATCHED_COST
        owners: list[_OpenTrack | None] = [None] * n
        for i, col in enumerate(assign(cost)):
            if col < n:
                owners[col] = tracks[i]
        return owners
