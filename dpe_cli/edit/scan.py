"""The source's detection pass for real footage: one streaming decode that finds the shots,
the face tracks within each shot and, when the identity model is installed, who each track is.

Frames are decoded at reduced size (mediapipe looks at 128-192 px anyway); everything kept per
frame is a few numbers per face, so memory stays flat however long the video is. Tracks are
linked while streaming and split at the shots' boundaries afterwards (the shot detector decides
a boundary only a little after it passes), and the identity samples are taken by frame number,
so a track that the linker carried across a cut splits cleanly into one per shot.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from dpe_cli.edit.stream import StageTimer
from dpe_cli.errors import NoFaceError
from dpe_cli.face.detect import FaceDetector
from dpe_cli.progress import Reporter
from dpe_cli.scene.people import FaceDescriber, link_people
from dpe_cli.scene.shots import Shot, ShotDetector, one_shot
from dpe_cli.scene.tracks import Track, TrackLinker
from dpe_cli.video import FrameReader, MediaInfo

# Same reduced size as the single-box pass (dpe_cli.edit.framing), so boxes agree.
DETECT_MAX_SIDE = 640
# One identity sample per track this often: enough to tell people apart after a cut, and a
# few tens of milliseconds each.
DESCRIBE_EVERY_SECONDS = 1.0
# A piece of a track left on the far side of a cut shorter than this is the linker's overreach.
MIN_PIECE_SECONDS = 0.3


@dataclass
class Scan:
    """What the pass found, in the pass's pixels (``shrink`` times the frame's)."""

    width: int
    height: int
    pass_width: int
    pass_height: int
    shrink: float
    fps: float
    frames: int
    frames_with_face: int
    shots: list[Shot]
    tracks: list[Track]
    people: dict[int, int]  # track id -> person number
    identity: bool  # whether people were linked by their faces (the identity model is installed)
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)  # track id -> (k, 128)

    def shot_of(self, frame: int) -> int:
        for k, shot in enumerate(self.shots):
            if shot.start <= frame < shot.end:
                return k
        return len(self.shots) - 1

    @property
    def people_count(self) -> int:
        return len(set(self.people.values()))


class _Sampler:
    """Identity samples per track, by frame number, at most one per DESCRIBE_EVERY_SECONDS."""

    def __init__(self, describer: FaceDescriber, fps: float) -> None:
        self.describer = describer
        self.every = max(1, round(DESCRIBE_EVERY_SECONDS * fps))
        self.samples: dict[int, list[tuple[int, np.ndarray]]] = {}

    def offer(self, track_id: int, frame_index: int, frame: np.ndarray, face) -> None:
        taken = self.samples.setdefault(track_id, [])
        if taken and frame_index - taken[-1][0] < self.every:
            return
        taken.append((frame_index, self.describer.describe(frame, face)))


def _split(tracks: list[Track], shots: list[Shot], samples: dict[int, list[tuple[int, np.ndarray]]], fps: float) -> tuple[list[Track], dict[int, np.ndarray]]:
    """Tracks cut at the shots' boundaries, renumbered in order of first appearance, with the
    identity samples that fall within each piece."""
    min_len = max(2, round(MIN_PIECE_SECONDS * fps))
    pieces: list[tuple[Track, np.ndarray]] = []
    for track in tracks:
        taken = samples.get(track.id, [])
        for k, shot in enumerate(shots):
            inside = (track.frames >= shot.start) & (track.frames < shot.end)
            if int(inside.sum()) < min(min_len, max(1, (shot.end - shot.start) // 2)):  # short shots keep short tracks
                continue
            frames = track.frames[inside]
            vecs = [v for f, v in taken if frames[0] <= f <= frames[-1]]
            piece = Track(id=-1, shot=k, frames=frames, boxes=track.boxes[inside])
            pieces.append((piece, np.asarray(vecs, np.float64).reshape(-1, 128) if vecs else np.zeros((0, 128))))
    pieces.sort(key=lambda p: (int(p[0].frames[0]), p[0].shot))
    out, descriptors = [], {}
    for new_id, (piece, vecs) in enumerate(pieces):
        piece.id = new_id
        out.append(piece)
        descriptors[new_id] = vecs
    return out, descriptors


def scan_video(info: MediaInfo, *, start: float, duration: float | None, shots: str, identity: bool,
               reporter: Reporter, timer: StageTimer) -> Scan:
    """Decode the source once at reduced size: shots (``shots`` "none": one for the whole
    video), face tracks, and, with ``identity`` and the model installed, people across shots."""
    began = time.perf_counter()
    shrink = min(1.0, DETECT_MAX_SIDE / max(info.width, info.height))
    size = (max(1, round(info.width * shrink)), max(1, round(info.height * shrink)))
    reader = FrameReader(info.path, start=start, duration=duration, size=size if shrink < 1 else None)
    fps = float(reader.fps)
    cutter = ShotDetector(fps) if shots == "auto" else None
    # A track shorter than the linker's minimum is a false detection, unless the clip is that short.
    estimate = reader.frame_count_estimate or 0
    linker = TrackLinker(fps, min_track_seconds=min(MIN_PIECE_SECONDS, 0.5 * estimate / fps) if estimate else MIN_PIECE_SECONDS)
    describer = FaceDescriber() if identity and FaceDescriber.unavailable_reason() is None else None
    sampler = _Sampler(describer, fps) if describer is not None else None
    frames = with_face = 0
    stage = reporter.stage("finding shots and faces (source)", reader.frame_count_estimate)
    try:
        with FaceDetector() as detector:
            for frame in reader:
                faces = detector.detect(frame)
                with_face += bool(faces)
                if cutter is not None:
                    cutter.add(frame)
                for track_id, face in linker.add(frames, faces):
                    if sampler is not None:
                        sampler.offer(track_id, frames, frame, face)
                frames += 1
                stage.advance()
    finally:
        reader.close()
        stage.close()
        timer.add("detect", time.perf_counter() - began)
    if with_face == 0:
        raise NoFaceError(f"no face found in any of the {frames} frames", "use a video with a visible face, or give the crop with `box` x,y,w,h")
    found = cutter.shots() if cutter is not None else one_shot(frames)
    tracks, descriptors = _split(linker.tracks(), found, sampler.samples if sampler else {}, fps)
    if describer is not None:
        people = link_people(tracks, descriptors)
    else:
        people = {t.id: t.id for t in tracks}
    return Scan(info.width, info.height, reader.width, reader.height, shrink, fps, frames, with_face, found, tracks, people,
                describer is not None, descriptors)


def clipped(scan: Scan, first: int, end: int) -> Scan:
    """The scan with its tracks cut to output frames ``first``..``end`` (the edited span): the
    boxes frame the person where they are edited."""
    tracks = []
    for track in scan.tracks:
        inside = (track.frames >= first) & (track.frames < end)
        if inside.any():
            tracks.append(Track(id=track.id, shot=track.shot, frames=track.frames[inside], boxes=track.boxes[inside]))
    return dataclasses.replace(scan, tracks=tracks)
