"""People: tracks of real faces linked across shots by dlib's descriptor (dpe_cli.scene.people)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dpe_cli.face.detect import FaceDetector
from dpe_cli.scene.people import FaceDescriber, TrackSampler, link_people, match_photo, person_descriptors
from dpe_cli.scene.tracks import Track, TrackLinker
from dpe_cli.video import FrameReader
from helpers import media

FPS = 25.0


@pytest.fixture(scope="module")
def describer() -> FaceDescriber:
    reason = FaceDescriber.unavailable_reason()
    if reason:
        pytest.skip(f"{reason}: install the eval extra (pip install 'dpe-cli[eval]')")
    return FaceDescriber()


def frames(name: str, start: float, count: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    with FrameReader(media(name), start=start, size=size) as reader:
        return list(itertools.islice(reader, count))


def relit(frame: np.ndarray) -> np.ndarray:
    """Another shot of the same person: darker, warmer, mirrored."""
    lit = 255.0 * (frame / 255.0) ** 1.5 * np.array([1.08, 1.0, 0.85])
    return np.ascontiguousarray(np.clip(lit, 0, 255).astype(np.uint8)[:, ::-1])


def scene_pass(shots: list[list[np.ndarray]], describer: FaceDescriber) -> tuple[list[Track], dict[int, np.ndarray]]:
    """What the detection pass does with the scene modules: detect, link, sample."""
    linker, sampler = TrackLinker(FPS), TrackSampler(describer, FPS)
    f = 0
    with FaceDetector() as detector:
        for shot in shots:
            linker.cut(f)
            for frame in shot:
                for track_id, face in linker.add(f, detector.detect(frame)):
                    sampler.offer(track_id, f, frame, face)
                f += 1
    tracks = linker.tracks()
    return tracks, {t.id: sampler.descriptors(t.id) for t in tracks}


@pytest.fixture(scope="module")
def programme(describer):
    """Three shots: woman A, man B, then A again (later, relit and mirrored)."""
    a = frames("talk_full_590.mp4", 0.0, 35)
    b = frames("talk_full_844.mp4", 1.0, 35, (640, 640))
    a_again = [relit(frame) for frame in frames("talk_full_590.mp4", 3.5, 35)]
    return scene_pass([a, b, a_again], describer)


def test_one_person_in_two_shots_is_linked_and_another_kept_apart(programme):
    tracks, descriptors = programme
    assert [t.shot for t in tracks] == [0, 1, 2]
    assert all(len(descriptors[t.id]) == 2 for t in tracks)  # settled, then one a second
    assert all(np.allclose(np.linalg.norm(descriptors[t.id], axis=1), 1.0) for t in tracks)
    people = link_people(tracks, descriptors)
    assert [people[t.id] for t in tracks] == [0, 1, 0]
    # a track without descriptors is a person of its own
    people = link_people(tracks, {**descriptors, tracks[2].id: np.zeros((0, 128))})
    assert [people[t.id] for t in tracks] == [0, 1, 2]


def test_two_faces_on_screen_together_are_never_one_person(describer):
    a = frames("talk_full_590.mp4", 0.0, 30, (320, 320))
    b = frames("talk_full_844.mp4", 0.0, 30, (320, 320))
    side_by_side = [np.ascontiguousarray(np.concatenate([x, y], axis=1)) for x, y in zip(a, b)]
    tracks, descriptors = scene_pass([side_by_side], describer)
    assert len(tracks) == 2 and tracks[0].overlaps(tracks[1])
    assert len(set(link_people(tracks, descriptors, threshold=-1.0).values())) == 2
    # while the same two tracks, moved apart in time, do merge at that threshold
    later = Track(tracks[1].id, 1, tracks[1].frames + 100, tracks[1].boxes)
    assert len(set(link_people([tracks[0], later], descriptors, threshold=-1.0).values())) == 1


def test_match_photo_finds_the_person_or_nobody(programme, describer):
    tracks, descriptors = programme
    people = person_descriptors(link_people(tracks, descriptors), descriptors)
    assert sorted(people) == [0, 1] and len(people[0]) == 4 and len(people[1]) == 2

    def photo(image: np.ndarray) -> np.ndarray:
        with FaceDetector() as detector:
            return describer.describe(image, detector.detect(image)[0])

    full_size = frames("talk_full_844.mp4", 4.0, 1)[0]  # a frame not in the programme, not scaled down
    assert match_photo(photo(full_size), people) == 1
    assert match_photo(photo(frames("portrait_macron.png", 0.0, 1)[0]), people) is None
    assert match_photo(photo(full_size), {}) is None
