"""People: face tracks linked across shots by what the face looks like.

A track's identity is a few dlib face descriptors (128-d, unit norm; the optional ``eval``
extra), sampled over its life during the detection pass. Tracks are joined by average-linkage
agglomeration on the cosine similarity of their descriptors, never joining two tracks that are
on screen at the same time.

Calibration (``bench/face_tracks.py``, real faces from the shared media: 11 people, each in
three shots: as filmed, small in a wide frame, relit and mirrored; frames at most 640 px; 33
tracks of up to 5 descriptors): the mean similarity of two tracks of one person was at least
0.942 (median 0.984), of two different people at most 0.899 (median 0.825); LINK_THRESHOLD is
the midpoint. Best-pair similarity separated them less (0.942 against 0.914). A photo (a
full-size, brightened frame) against a person's descriptors: its own person at least 0.969,
anyone else at most 0.899. dlib does not tell the procedural ``dpe_cli.synth`` people apart:
tracks of one synthetic identity score at least 0.956 (median 0.979), of two identities up to
0.983 (median 0.955; the right one is the most similar for 75 % of them), so at this threshold synthetic people who are never on screen together are mostly
linked into one person (12 identities came out as 2 people).
"""

from __future__ import annotations

import numpy as np

from dpe_cli.errors import InputError
from dpe_cli.eval import identity
from dpe_cli.face.detect import FaceBox
from dpe_cli.scene.tracks import Track

DESCRIPTOR_SIZE = 128
LINK_THRESHOLD = 0.92  # mean cosine of two tracks' descriptors at which they are one person
PHOTO_THRESHOLD = 0.93  # mean cosine of a photo against a person's descriptors
INSTALL_HINT = "pip install 'dpe-cli[eval]' (dlib-bin and face-recognition-models)"


class FaceDescriber:
    """Identity descriptors of faces: dlib's 128-d face descriptor, given a detection box."""

    def __init__(self) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            raise InputError(reason, INSTALL_HINT)
        self._encoder = identity.IdentityEncoder()

    @staticmethod
    def unavailable_reason() -> str | None:
        """None when descriptors can be computed, else what is missing."""
        if identity.unavailable_reason() is None:
            return None
        return "telling people apart needs dlib's face descriptor, which is not installed"

    def describe(self, frame: np.ndarray, box: FaceBox) -> np.ndarray:
        """Unit 128-d descriptor of the face in ``box`` (pixels of ``frame``, RGB uint8)."""
        return self._encoder.embed_box(frame, (box.x, box.y, box.x + box.w, box.y + box.h))


class _Samples:
    def __init__(self, first: int) -> None:
        self.first = first
        self.last: int | None = None
        self.descriptors: list[np.ndarray] = []


class TrackSampler:
    """Keeps up to ``per_track`` descriptors per track, spread over its life, during the pass.

    A track is first described once it has lasted ``settle_seconds`` (most false detections
    are gone by then), at its first good detection: the face whole inside the frame and at
    least ``min_side`` pixels; then at most once every ``every_seconds``. The cost is bounded
    by ``per_track`` descriptors per track (dlib: tens of milliseconds each).
    """

    def __init__(self, describer: FaceDescriber, fps: float, per_track: int = 5, *, every_seconds: float = 1.0,
                 settle_seconds: float = 0.2, min_side: float = 24.0) -> None:
        if fps <= 0 or per_track < 1:
            raise ValueError(f"fps must be positive and per_track at least 1, got {fps}, {per_track}")
        self.describer = describer
        self.per_track = per_track
        self.every = max(1, round(every_seconds * fps))
        self.settle = round(settle_seconds * fps)
        self.min_side = min_side
        self._tracks: dict[int, _Samples] = {}

    def offer(self, track_id: int, frame_index: int, frame: np.ndarray, box: FaceBox) -> None:
        """The track's detection in this frame; described only when the schedule wants one."""
        samples = self._tracks.setdefault(track_id, _Samples(frame_index))
        if len(samples.descriptors) >= self.per_track or frame_index - samples.first < self.settle:
            return
        if samples.last is not None and frame_index - samples.last < self.every:
            return
        if not self._good(frame, box):
            return
        samples.descriptors.append(self.describer.describe(frame, box))
        samples.last = frame_index

    def descriptors(self, track_id: int) -> np.ndarray:
        """(k, 128): the track's descriptors, k = 0 when none was taken."""
        samples = self._tracks.get(track_id)
        if samples is None or not samples.descriptors:
            return np.zeros((0, DESCRIPTOR_SIZE))
        return np.stack(samples.descriptors)

    def _good(self, frame: np.ndarray, box: FaceBox) -> bool:
        height, width = frame.shape[:2]
        inside = box.x >= 0 and box.y >= 0 and box.x + box.w <= width and box.y + box.h <= height
        return inside and max(box.w, box.h) >= self.min_side


def link_people(tracks: list[Track], descriptors: dict[int, np.ndarray], *,
                threshold: float = LINK_THRESHOLD) -> dict[int, int]:
    """Track id -> person number (0, 1, ... in order of first appearance).

    Average linkage: the two groups of tracks with the highest mean descriptor similarity are
    joined while it reaches ``threshold``, unless a track of one and a track of the other
    share a frame (two faces on screen at once are two people). Tracks without descriptors
    are people of their own.
    """
    tracks = sorted(tracks, key=lambda t: (t.first, t.id))
    groups = [[i] for i in range(len(tracks))]
    vectors = [np.asarray(descriptors.get(t.id, np.zeros((0, DESCRIPTOR_SIZE))), dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
               for t in tracks]
    n = len(tracks)
    sums = np.zeros((n, n))
    counts = np.zeros((n, n))
    clash = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(i + 1, n):
            sums[i, j] = sums[j, i] = float((vectors[i] @ vectors[j].T).sum())
            counts[i, j] = counts[j, i] = len(vectors[i]) * len(vectors[j])
            clash[i, j] = clash[j, i] = tracks[i].overlaps(tracks[j])
    alive = np.ones(n, dtype=bool)
    while True:
        usable = alive[:, None] & alive[None, :] & ~clash & (counts > 0)
        if not usable.any():
            break
        similarity = np.where(usable, sums / np.maximum(counts, 1), -np.inf)
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < threshold:
            break
        a, b = min(a, b), max(a, b)  # keep the group of the earlier track
        groups[a] += groups[b]
        for table in (sums, counts):
            table[a, :] += table[b, :]
            table[:, a] += table[:, b]
            table[a, a] = 0
        clash[a, :] |= clash[b, :]
        clash[:, a] |= clash[:, b]
        alive[b] = False
    order = [groups[g] for g in range(n) if alive[g]]  # earliest first: groups keep their first track's index
    return {tracks[i].id: person for person, members in enumerate(order) for i in members}


def person_descriptors(people: dict[int, int], descriptors: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Person -> (k, 128) all descriptors of that person's tracks (the input of match_photo)."""
    stacked: dict[int, list[np.ndarray]] = {}
    for track_id, person in people.items():
        stacked.setdefault(person, []).append(np.asarray(descriptors.get(track_id, np.zeros((0, DESCRIPTOR_SIZE)))).reshape(-1, DESCRIPTOR_SIZE))
    return {person: np.concatenate(parts) for person, parts in sorted(stacked.items())}


def match_photo(photo_descriptor: np.ndarray, people: dict[int, np.ndarray], *,
                threshold: float = PHOTO_THRESHOLD) -> int | None:
    """The person (number) who looks like the photo, or None when nobody is close enough.

    ``people`` maps person -> (k, 128) descriptors (see person_descriptors); the score is the
    photo's mean similarity to them, and the best score must reach ``threshold``.
    """
    photo = np.asarray(photo_descriptor, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
    best, best_score = None, -np.inf
    for person, vectors in people.items():
        vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE)
        if len(vectors) == 0:
            continue
        score = float((photo @ vectors.T).mean())
        if score > best_score:
            best, best_score = person, score
    return best if best_score >= threshold else None
