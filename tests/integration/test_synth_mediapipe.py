"""Synthetic faces as mediapipe sees them: the pose labels match its face mesh, and it finds
the face in random frames."""

from __future__ import annotations

import numpy as np
import pytest

from dpe_cli.synth import Expression, Identity, Pose, Scene, render_crop, render_frame, sample_motion
from dpe_cli.synth.motion import random_expression, random_pose
from helpers import synth_crop


@pytest.fixture(scope="module")
def mediapipe_models():
    mp = pytest.importorskip("mediapipe")
    models = (
        mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5),
        mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5),
        mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, min_detection_confidence=0.5),
    )
    yield models
    for m in models:
        m.close()


def mesh_points(mesh, image: np.ndarray) -> np.ndarray | None:
    """Face-mesh landmarks in pixels, or None when no face is found."""
    found = mesh.process(image).multi_face_landmarks
    if not found:
        return None
    h, w = image.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in found[0].landmark])


def test_pose_angles_match_what_mediapipe_sees(mediapipe_models):
    """Yaw turns the nose to the side its sign says, pitch moves it up or down the face, roll
    tilts the eye line; and the five landmark labels sit on the eyes, nose and mouth that face
    mesh finds."""
    mesh = mediapipe_models[2]
    for yaw in (-25.0, 25.0):
        r = synth_crop(Pose(yaw=yaw))
        pts = mesh_points(mesh, r.image)
        assert pts is not None
        asym = pts[1, 0] - (pts[234, 0] + pts[454, 0]) / 2  # nose tip vs the cheek midpoint
        assert np.sign(asym) == np.sign(yaw)
    heights = []
    for pitch in (-15.0, 0.0, 15.0):
        pts = mesh_points(mesh, synth_crop(Pose(pitch=pitch)).image)
        eyes, mouth = pts[[33, 133, 362, 263], 1].mean(), pts[[61, 291], 1].mean()
        heights.append((pts[1, 1] - eyes) / (mouth - eyes))  # nose tip down the eye-mouth span
    assert heights[0] > heights[1] + 0.05 > heights[2] + 0.1
    for roll in (-15.0, 15.0):
        pts = mesh_points(mesh, synth_crop(Pose(roll=roll)).image)
        slope = pts[263, 1] - pts[33, 1]  # outer corners: viewer's right eye minus left eye
        assert np.sign(slope) == np.sign(roll)
    r = synth_crop(Pose(yaw=15, pitch=-10, roll=5), Expression(smile=0.5))
    pts = mesh_points(mesh, r.image)
    seen = np.array([pts[[33, 133]].mean(0), pts[[362, 263]].mean(0), pts[1], pts[61], pts[291]])
    face = r.face_box[2] - r.face_box[0]
    assert np.abs(seen - r.landmarks).max() < 0.12 * face


def test_mediapipe_finds_the_face_in_random_frames(mediapipe_models):
    short, full, mesh = mediapipe_models
    rng = np.random.default_rng(2024)
    hits = []
    for i in range(16):
        image = render_crop(Identity.from_seed(100 + i), random_pose(rng), random_expression(rng), 256, Scene.from_seed(i))
        hits.append([short.process(image).detections is not None, full.process(image).detections is not None,
                     mesh_points(mesh, image) is not None])
    for i in range(10):
        motion = sample_motion(50, 25.0, seed=300 + i, kind="full", aspect=16 / 9)
        k = int(rng.integers(50))
        image = render_frame(Identity.from_seed(200 + i), motion.pose(k), motion.expression(k), (640, 360), Scene.from_seed(i))
        hits.append([short.process(image).detections is not None, full.process(image).detections is not None,
                     mesh_points(mesh, image) is not None])
    rates = np.array(hits).mean(0)
    assert (rates >= 0.95).all(), f"detection rates (short-range, full-range, face mesh): {rates}"
