"""Faces in full frames: detect them, fix one crop box per video, crop, and paste edits back.

mediapipe is imported only when a detector, mesh or face-mask paster is created.
"""

from __future__ import annotations

from dpe_cli.face.crop import (
    DEFAULT_BOX_SCALE,
    BoxAccumulator,
    CropBox,
    box_in_frame,
    parse_box,
)
from dpe_cli.face.detect import FaceBox, FaceDetector, pick_face
from dpe_cli.face.landmarks import FaceMesh
from dpe_cli.face.paste import DEFAULT_FEATHER, Paster

__all__ = [
    "DEFAULT_BOX_SCALE",
    "DEFAULT_FEATHER",
    "BoxAccumulator",
    "CropBox",
    "FaceBox",
    "FaceDetector",
    "FaceMesh",
    "Paster",
    "box_in_frame",
    "parse_box",
    "pick_face",
]
