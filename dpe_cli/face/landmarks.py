"""Dense face landmarks (mediapipe FaceMesh), used to shape the paste-back mask."""

from __future__ import annotations

import numpy as np

from dpe_cli.closing import Closing
from dpe_cli.face.detect import as_rgb, mediapipe_solutions

# Mesh indices of the face outline, in order around the face starting at the top of the forehead
# (the vertices of mediapipe's FACEMESH_FACE_OVAL edges; fixed by the mesh topology).
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
FOREHEAD_TOP = 10
CHIN = 152
# The paste-back regions' landmark sets (mediapipe's FACEMESH_LIPS, _LEFT_EYE, _LEFT_EYEBROW, ...).
LIPS: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
    267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
LEFT_EYE: tuple[int, ...] = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE: tuple[int, ...] = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW: tuple[int, ...] = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW: tuple[int, ...] = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)


class FaceMesh(Closing):
    """Landmarks of the one face in an image; use as a context manager to release the graph.

    ``static_image_mode=False`` tracks the face from the previous call, which is faster and
    steadier for consecutive video frames; use True for unrelated images.
    """

    def __init__(self, static_image_mode: bool = False, refine_landmarks: bool = False) -> None:
        self._mesh = mediapipe_solutions().face_mesh.FaceMesh(
            static_image_mode=static_image_mode,
            max_num_faces=1,
            refine_landmarks=refine_landmarks,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        """(N, 3) float32 points: x, y in pixels, z (depth) on the x pixel scale; None if no face.

        N is 468, or 478 with ``refine_landmarks`` (the iris points are added).
        """
        image = as_rgb(rgb)
        height, width = image.shape[:2]
        result = self._mesh.process(image)
        if not result.multi_face_landmarks:
            return None
        points = np.array(
            [(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32
        )
        return points * np.array([width, height, width], dtype=np.float32)

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
