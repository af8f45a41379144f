"""`dpe eval`'s scorer on real faces: head pose from a real mesh, APD of rotated heads, CSIM."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dpe_cli.eval import facegeom, identity
from dpe_cli.eval.scoring import Frame, References, Scorer
from helpers import MEDIA, read_frames, rotation_matrix

SOURCE = MEDIA / "dpe_source_crop.mp4"  # one person
DRIVER = MEDIA / "dpe_driver_crop.mp4"  # another person
MACRON = MEDIA / "portrait_macron.png"
TAYLOR = MEDIA / "portrait_taylor.png"

needs_media = pytest.mark.skipif(not SOURCE.is_file(), reason=f"real face media not found in {MEDIA}")
needs_dlib = pytest.mark.skipif(
    identity.unavailable_reason() is not None,
    reason="dlib-bin / face-recognition-models (the eval extra) not installed",
)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    with Scorer() as s:
        yield s


@pytest.fixture(scope="module")
def real_mesh(scorer: Scorer) -> np.ndarray:
    if not SOURCE.is_file():
        pytest.skip(f"real face media not found in {MEDIA}")
    frame = Frame(read_frames(SOURCE, 1)[0])
    scorer.score(frame, References(pose=frame))
    assert frame.mesh is not None
    return frame.mesh.astype(np.float64)


def test_rotating_a_real_mesh_changes_pose_by_that_rotation_only(real_mesh: np.ndarray) -> None:
    base = np.array(facegeom.head_pose(real_mesh))
    assert np.all(np.abs(base) < 25), "a frontal talking head is near (0, 0, 0)"
    centre = real_mesh.mean(axis=0)
    for delta in [(15, 0, 0), (0, 12, 0), (0, 0, 20)]:
        turned = (real_mesh - centre) @ rotation_matrix(*delta).T + centre
        got = np.array(facegeom.head_pose(turned)) - base
        assert got == pytest.approx(delta, abs=1.0)
        # The expression descriptor is pose-normalised: a turned head keeps its expression.
        assert (
            facegeom.expression_distance(
                facegeom.expression_descriptor(turned), facegeom.expression_descriptor(real_mesh)
            )
            < 1e-6
        )


@needs_media
def test_rotated_head_gives_ordered_apd(scorer: Scorer) -> None:
    """A real frame rotated in the image plane by known angles: APD grows with the angle and
    the roll difference matches it; AED (expression) barely moves."""
    rgb = read_frames(SOURCE, 1)[0]
    ref = Frame(rgb)
    apds = []
    for angle in (4.0, 12.0, 24.0):
        warp = cv2.getRotationMatrix2D((128.0, 140.0), angle, 1.0)
        turned = Frame(cv2.warpAffine(rgb, warp, (256, 256), borderMode=cv2.BORDER_REFLECT))
        row = scorer.score(turned, References(expression=ref, pose=ref))
        assert row["no_face"] == ""
        # cv2 turns counter-clockwise on screen for positive angles: roll goes negative.
        assert ref.pose[2] - row["roll"] == pytest.approx(angle, abs=1.5)  # type: ignore[index]
        assert row["aed"] < 0.02
        apds.append(row["apd"])
    assert apds == sorted(apds) and apds[0] < 3 < apds[-1]


@needs_media
@needs_dlib
def test_csim_separates_people(scorer: Scorer) -> None:
    one = read_frames(SOURCE, 2, step=100)
    other = read_frames(DRIVER, 1)[0]
    same = scorer.score(Frame(one[0]), References(identity=Frame(one[1])))["csim"]
    different = scorer.score(Frame(one[0]), References(identity=Frame(other)))["csim"]
    portraits = scorer.score(
        Frame(cv2.imread(str(MACRON))[..., ::-1].copy()),
        References(identity=Frame(cv2.imread(str(TAYLOR))[..., ::-1].copy())),
    )["csim"]
    assert same > 0.93
    assert different < same - 0.05 and portraits < same - 0.05
