"""The face-mesh landmark sets that paste masks are made of are mediapipe's own."""

from __future__ import annotations

from dpe_cli.face.landmarks import FACE_OVAL


def test_face_oval_is_mediapipes():
    from dpe_cli.face.detect import mediapipe_solutions

    edges = mediapipe_solutions().face_mesh.FACEMESH_FACE_OVAL
    assert set(FACE_OVAL) == {i for edge in edges for i in edge}
    assert len(FACE_OVAL) == len(set(FACE_OVAL))


def test_region_landmark_sets_are_mediapipes():
    from dpe_cli.face import landmarks
    from dpe_cli.face.detect import mediapipe_solutions

    mesh = mediapipe_solutions().face_mesh
    for ours, theirs in ((landmarks.LIPS, mesh.FACEMESH_LIPS), (landmarks.LEFT_EYE, mesh.FACEMESH_LEFT_EYE),
                         (landmarks.RIGHT_EYE, mesh.FACEMESH_RIGHT_EYE), (landmarks.LEFT_BROW, mesh.FACEMESH_LEFT_EYEBROW),
                         (landmarks.RIGHT_BROW, mesh.FACEMESH_RIGHT_EYEBROW)):
        assert set(ours) == {i for edge in theirs for i in edge}
