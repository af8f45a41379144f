"""CSIM: cosine similarity of dlib's 128-d face descriptors (the optional ``eval`` extra).

dlib's ResNet face-recognition network is the only identity network whose weights install
offline: ``face-recognition-models`` ships them and ``dlib-bin`` the runtime. The face box
comes from the MediaPipe mesh we already computed (the bounding box of its landmarks), dlib's
5-point shape predictor places the eyes and nose in it, and dlib aligns the 150x150 chip and
runs the network. The descriptor is L2-normalised, so CSIM is a plain dot product: about
0.97 between frames of one person and 0.80 to 0.89 between different people.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

INSTALL_HINT = (
    "CSIM needs the optional identity model: pip install 'dpe-cli[eval]' (dlib-bin and face-recognition-models)"
)


def _models_dir() -> Path | None:
    # face_recognition_models imports pkg_resources, which recent setuptools no longer
    # ships; its data files are found without importing it.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def unavailable_reason() -> str | None:
    """None when CSIM can be computed, else what to install."""
    if importlib.util.find_spec("dlib") is None:
        return INSTALL_HINT
    models = _models_dir()
    if models is None or not (models / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        return INSTALL_HINT
    return None


class IdentityEncoder:
    """dlib face descriptors; build only when :func:`unavailable_reason` is None."""

    def __init__(self) -> None:
        import dlib

        models = _models_dir()
        if models is None:
            raise ImportError(INSTALL_HINT)
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """Unit-norm 128-d descriptor of the face whose mesh is given."""
        (x0, y0), (x1, y1) = mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)
        return self.embed_box(rgb, (float(x0), float(y0), float(x1), float(y1)))

    def embed_box(self, rgb: np.ndarray, corners: tuple[float, float, float, float]) -> np.ndarray:
        """Unit-norm 128-d descriptor of the face in the box ``x0, y0, x1, y1`` (pixels)."""
        x0, y0, x1, y1 = corners
        box = self._dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        img = np.ascontiguousarray(rgb, dtype=np.uint8)
        vec = np.asarray(self._net.compute_face_descriptor(img, self._shape(img, box)), dtype=np.float64)
        return vec / max(np.linalg.norm(vec), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two unit vectors."""
    return float(np.clip(a @ b, -1.0, 1.0))
