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
