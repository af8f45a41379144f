"""Saying what the scan found and who is edited: the ``--json`` report's ``shots`` and
``people``, the one note line for a video of several shots or people, and the person a
``--person`` photo picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpe_cli.edit.casting import Casting
from dpe_cli.edit.scan import Scan
from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face.detect import FaceDetector
from dpe_cli.scene.people import FaceDescriber, match_photo, person_descriptors
from dpe_cli.video import read_image


def shots_report(scan: Scan, casting: Casting, per_subject: dict[int, int], frames: int) -> dict:
    """``shots`` (output frame numbers, end exclusive; seconds) with the people edited in each,
    and ``people``, the number of distinct people found. Shots past the output's end (the
    driver stopped it) are left out."""
    shots = []
    for k, shot in enumerate(scan.shots):
        if shot.start >= frames:
            break
        end = min(shot.end, frames)
        people = [
            {"person": s.person, "box": list(s.box.as_tuple()), "moving": s.moving, "frames_edited": per_subject.get(s.key, 0)}
            for s in casting.subjects
            if s.shot == k
        ]
        shots.append({"start_frame": shot.start, "end_frame": end, "start": round(shot.start / scan.fps, 3),
                      "end": round(end / scan.fps, 3), "transition": shot.begins, "people": people})
    return {"shots": shots, "people": scan.people_count, "people_by_face": scan.identity}


def summary(scan: Scan, casting: Casting, faces: str) -> str | None:
    """One line for a video of several shots or people (None for one shot and one person)."""
    if len(scan.shots) < 2 and scan.people_count < 2:
        return None
    edited = sorted({s.shot for s in casting.subjects})
    people = sorted({s.person for s in casting.subjects})
    who = "every person" if faces == "all" else ("person " if len(people) == 1 else "people ") + ", ".join(map(str, people))
    where = ", ".join(str(k + 1) for k in edited)
    kept = len(scan.shots) - len(edited)
    tail = f"; {kept} shot(s) without them are kept as they are" if kept else ""
    linked = "" if scan.identity or len(scan.shots) < 2 else " (people are not matched across shots without the identity model: pip install 'dpe-cli[eval]')"
    return (f"{len(scan.shots)} shot(s), {scan.people_count} people found: editing {who} in shot(s) {where}{tail}"
            f"{linked}; --json lists them")


def photo_descriptor(photo: Path) -> np.ndarray:
    """The identity descriptor of the largest face in a ``--person`` photo."""
    reason = FaceDescriber.unavailable_reason()
    if reason is not None:
        raise InputError("`person` needs the identity model, which is not installed", reason)
    image = read_image(photo)
    with FaceDetector() as detector:
        faces = detector.detect(image)
    if not faces:
        raise NoFaceError(f"`person` {photo.name}: no face found in the photo", "give a photo that shows the person's face")
    return FaceDescriber().describe(image, faces[0])


def find_person(scan: Scan, descriptor: np.ndarray, photo: Path) -> int:
    """The person of the scan who looks like the photo."""
    person = match_photo(descriptor, person_descriptors(scan.people, scan.descriptors))
    if person is None:
        raise InputError(f"`person` {photo.name}: nobody in the source looks like the photo", "give a clearer photo of the person, or pick a face with `face_index`")
    return person
