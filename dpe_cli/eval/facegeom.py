"""Head pose and expression from a MediaPipe face mesh: the stand-in for the paper's 3DMM.

The paper's AED/APD compare 3DMM expression and pose coefficients; no 3DMM fitter installs
offline, so we measure the same two things on the 468-point MediaPipe mesh, whose ``x, y``
are image pixels and ``z`` a depth in the same pixel scale (larger = farther; the axes form
a right-handed frame: x right, y down, z into the image). The numbers are in degrees and in
inter-ocular units, so they are *not* comparable with the paper's tables, only between
models measured the same way.

Head frame (:func:`head_frame`), built from rigid parts of the face only (no mouth, jaw or
eyelids):

- x axis (subject's right to left) = the sum of the vectors between 13 mirrored landmark
  pairs (eye corners, temples, forehead sides, nose wings); the mesh is symmetric, so this
  is the face's left-right axis whatever the expression;
- y axis (down) = from the forehead landmarks to the nose landmarks, made orthogonal to x;
  that line leans back by a fixed anatomical angle in a frontal face, subtracted so that a
  face looking into the camera has pitch close to 0;
- z axis = x cross y (out of the back of the head).

Pose (:func:`head_pose`) = the rotation taking camera axes to the head frame, written
``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``, in degrees. Yaw turns about the vertical axis
(positive = the nose turns towards the image's left), pitch nods (positive = the nose goes
down), roll tilts in the image plane (positive = clockwise on screen). With roll outermost,
rotating the picture itself changes roll only, and yaw is exact for a nodding head.
APD (:func:`pose_distance`) = mean of |d yaw|, |d pitch| and |d roll|, in degrees.

Expression (:func:`expression_descriptor`, :func:`expression_distance`): the landmarks in the
head frame, centred on the rigid landmarks and divided by the 3-D distance between the outer
eye corners (the inter-ocular distance, IOD). The distance between two faces first aligns
one onto the other by a least-squares similarity (Umeyama) on the rigid landmarks, then
averages the 3-D distance of the lip, eye and eyebrow landmarks, in IODs. Identical faces
give 0 whatever their pose; frames of one talking person differ by about 0.025 (median), a
closed against a wide-open mouth by 0.03 to 0.05. The descriptor keeps some of the person's
face shape, but little: two different people with similar expressions are also about 0.025
apart, so AED tracks expression across identities too. Compare models on the same inputs
rather than reading it as an absolute number.
"""

from __future__ import annotations

import numpy as np
from mediapipe.python.solutions import face_mesh_connections as _conn

MESH_POINTS = 468  # the refined mesh's 10 iris points are dropped

# Mirrored pairs (subject's right, subject's left) on rigid parts of the face.
MIRROR_PAIRS = (
    (33, 263),
    (133, 362),  # eye corners, outer and inner
    (234, 454),
    (127, 356),
    (162, 389),
    (21, 251),  # face contour at ear and temple height
    (54, 284),
    (103, 332),
    (67, 297),
    (109, 338),  # forehead sides
    (98, 327),
    (129, 358),
    (48, 278),  # nose wings
)
FOREHEAD = (10, 151, 109, 338, 67, 297)
NOSE = (4, 5, 195, 98, 327, 129, 358)
RIGID = tuple(sorted({i for pair in MIRROR_PAIRS for i in pair} | {10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1}))
EXPRESSIVE = tuple(
    sorted(
        {
            i
            for edges in (
                _conn.FACEMESH_LIPS,
                _conn.FACEMESH_LEFT_EYE,
                _conn.FACEMESH_RIGHT_EYE,
                _conn.FACEMESH_LEFT_EYEBROW,
                _conn.FACEMESH_RIGHT_EYEBROW,
            )
            for edge in edges
            for i in edge
        }
    )
)
OUTER_EYE_CORNERS = (33, 263)

# The forehead-to-nose line of a face looking into the camera leans back by about this much
# (median over the frames of eleven real face videos and portraits; it varies by about 10
# degrees between people); removed so that such a face has pitch ~0.
FRONTAL_PITCH_OFFSET_DEG = -10.0


def _points(mesh: np.ndarray) -> np.ndarray:
    pts = np.asarray(mesh, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < MESH_POINTS:
        raise ValueError(f"expected a (468 or 478, 3) face mesh, got shape {pts.shape}")
    return pts[:MESH_POINTS]


def _rot_x(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def head_frame(mesh: np.ndarray) -> np.ndarray:
    """3x3 rotation whose columns are the head's x (right to left), y (down), z axes in camera
    coordinates."""
    pts = _points(mesh)
    right = np.array([pts[r] for r, _ in MIRROR_PAIRS])
    left = np.array([pts[l] for _, l in MIRROR_PAIRS])
    x = (left - right).sum(axis=0)
    x /= np.linalg.norm(x)
    y = pts[list(NOSE)].mean(axis=0) - pts[list(FOREHEAD)].mean(axis=0)
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    frame = np.stack([x, y, z], axis=1)
    # Tilt the anatomical y axis forward by the frontal offset (a rotation about head x).
    return frame @ _rot_x(-FRONTAL_PITCH_OFFSET_DEG)


def euler_from_rotation(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of ``rot = Rz(roll) @ Ry(yaw) @ Rx(pitch)``."""
    yaw = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    roll = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    return float(yaw), float(pitch), float(roll)


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of the head in degrees; see the module docstring for the axes."""
    return euler_from_rotation(head_frame(mesh))


def pose_distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Mean absolute difference of yaw, pitch and roll in degrees (roll wrapped to +-180)."""
    diffs = [abs((x - y + 180.0) % 360.0 - 180.0) for x, y in zip(a, b)]
    return float(np.mean(diffs))


def expression_descriptor(mesh: np.ndarray) -> np.ndarray:
    """(468, 3) landmarks in the head frame, centred on the rigid landmarks, in IODs."""
    pts = _points(mesh)
    centred = (pts - pts[list(RIGID)].mean(axis=0)) @ head_frame(pts)
    iod = np.linalg.norm(pts[OUTER_EYE_CORNERS[0]] - pts[OUTER_EYE_CORNERS[1]])
    return centred / max(iod, 1e-9)


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``dst ~ s * src @ R + t`` (Umeyama 1991): (s, R, t)."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / max((a**2).sum(), 1e-12))
    return scale, rot, mu_d - scale * mu_s @ rot


def expression_distance(desc: np.ndarray, ref: np.ndarray) -> float:
    """Mean 3-D distance (IODs) of lip, eye and brow landmarks after rigid alignment of
    ``desc`` onto ``ref`` on the rigid landmarks."""
    rigid = list(RIGID)
    scale, rot, shift = _similarity(desc[rigid], ref[rigid])
    aligned = scale * desc @ rot + shift
    expressive = list(EXPRESSIVE)
    return float(np.linalg.norm(aligned[expressive] - ref[expressive], axis=1).mean())
