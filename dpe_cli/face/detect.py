"""Face detection with mediapipe's full-range detector (bundled in the wheel, so no downloads)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from dpe_cli.closing import Closing
from dpe_cli.errors import InputError


def mediapipe_solutions() -> ModuleType:
    """Import mediapipe on first use: the import is slow and noisy, and only face work needs it.

    The environment variables turn down the C++ logging that would otherwise flood stderr; a
    value the user has already set wins.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import mediapipe as mp

    return mp.solutions


def as_rgb(image: np.ndarray) -> np.ndarray:
    """The image as mediapipe needs it: HxWx3 uint8, C-contiguous (a caller bug otherwise)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class FaceBox:
    """One detected face, in pixels of the frame it was found in (it may reach past the edges)."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


class FaceDetector(Closing):
    """Finds faces in RGB frames; use as a context manager so the mediapipe graph is released."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        if not 0.0 < min_confidence <= 1.0:
            raise InputError(
                f"face detection confidence {min_confidence} is out of range",
                "use a value in (0, 1], e.g. 0.5",
            )
        # model_selection=1 is the full-range model: it also finds the small faces of wide shots,
        # and still finds the large faces of ready-made 256x256 crops.
        self._detector = mediapipe_solutions().face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_confidence
        )

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """All faces in the frame, largest area first (the usual subject of a portrait video)."""
        image = as_rgb(rgb)
        height, width = image.shape[:2]
        result = self._detector.process(image)
        faces = []
        for detection in result.detections or ():
            rel = detection.location_data.relative_bounding_box
            faces.append(
                FaceBox(
                    x=rel.xmin * width,
                    y=rel.ymin * height,
                    w=rel.width * width,
                    h=rel.height * height,
                    score=float(detection.score[0]),
                )
            )
        return sorted(faces, key=lambda face: face.area, reverse=True)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None


def pick_face(faces: list[FaceBox], index: int = 0) -> FaceBox | None:
    """The index-th largest face (0 = largest), or None when the frame has fewer faces."""
    ranked = sorted(faces, key=lambda face: face.area, reverse=True)
    return ranked[index] if 0 <= index < len(ranked) else None
