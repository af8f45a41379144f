"""The synthetic talking-face generator in memory: determinism, labels that match the pixels,
motion tracks, controlled pairs, and the factor regressor's halves as loss networks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from dpe_cli.synth import POSE_LIMITS, Expression, Identity, Pose, Rendering, render, render_crop, render_frame, render_pair, sample_motion
from helpers import synth_crop

NEUTRAL = Expression()


def changed(a: np.ndarray, b: np.ndarray, level: int = 24) -> np.ndarray:
    """Pixels that differ clearly (more than codec/anti-aliasing noise)."""
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > level


# ------------------------------------------------------------------ parameters and rendering


def test_same_seeds_give_the_same_pixels_and_others_differ():
    assert Identity.from_seed(5) == Identity.from_seed(5) != Identity.from_seed(6)
    a, b = synth_crop(Pose(yaw=12), Expression(smile=0.4)), synth_crop(Pose(yaw=12), Expression(smile=0.4))
    assert np.array_equal(a.image, b.image) and a.face_box == b.face_box
    assert changed(a.image, synth_crop(Pose(yaw=12), Expression(smile=0.4), identity=4).image).mean() > 0.05


@pytest.mark.parametrize("size", [64, 128, 256])
def test_crop_sizes_and_labels_inside_the_image(size):
    r = synth_crop(Pose(yaw=-20, roll=10), size=size)
    assert r.image.shape == (size, size, 3) and r.image.dtype == np.uint8
    x0, y0, x1, y1 = r.face_box
    assert 0 < x0 < x1 < size and 0 < y0 < y1 < size
    assert (r.landmarks[:, 0] > x0).all() and (r.landmarks[:, 0] < x1).all()
    assert (r.landmarks[:, 1] > y0).all() and (r.landmarks[:, 1] < y1).all()


def test_full_frame_puts_a_smaller_face_where_the_pose_says():
    ident = Identity.from_seed(8)
    left = render(ident, Pose(tx=-0.4), NEUTRAL, (640, 360), "full")
    right = render(ident, Pose(tx=0.4), NEUTRAL, (640, 360), "full")
    assert left.image.shape == (360, 640, 3)
    assert np.array_equal(render_frame(ident, Pose(tx=-0.4), NEUTRAL), left.image)
    width = left.face_box[2] - left.face_box[0]
    assert 40 < width < 200  # a face inside a wider shot, not a crop
    shift = (right.face_box[0] - left.face_box[0]) / 360
    assert shift == pytest.approx(0.8, abs=0.02)


def test_a_256_crop_renders_fast():
    ident = Identity.from_seed(1)
    render_crop(ident, Pose(), NEUTRAL, 256)  # builds the cached meshes
    times = []
    for i in range(5):
        t = time.perf_counter()
        render_crop(ident, Pose(yaw=i), Expression(mouth_open=0.1 * i), 256)
        times.append(time.perf_counter() - t)
    assert min(times) < 0.25  # about 0.05 s on an idle core; generous for busy machines


# ------------------------------------------------------------------ labels match the pixels


@pytest.mark.parametrize(
    ("factor", "where"),
    [("mouth_open", "below_nose"), ("smile", "below_eyes"), ("blink", "eyes"), ("brow_raise", "above_nose")],
)
def test_each_expression_factor_changes_its_own_face_region(factor, where):
    base = synth_crop()
    moved = synth_crop(expr=Expression(**{factor: 1.0}))
    diff = changed(base.image, moved.image)
    rows = np.nonzero(diff)[0]
    assert len(rows) > 40, f"{factor} barely changed the image"
    eye_y, nose_y = base.landmarks[:2, 1].mean(), base.landmarks[2, 1]
    if where == "below_nose":
        assert rows.min() > nose_y
    elif where == "below_eyes":
        assert rows.min() > eye_y
    elif where == "eyes":
        assert np.abs(rows - eye_y).max() < 0.45 * (nose_y - eye_y) + 3
    else:
        assert rows.max() < nose_y


def test_blink_hides_the_whites_of_the_eyes():
    def white(r: Rendering) -> int:
        img = r.image.astype(int)
        bright = (img.min(-1) > 150) & (img.max(-1) - img.min(-1) < 45)
        return sum(int(bright[int(y) - 8 : int(y) + 8, int(x) - 14 : int(x) + 14].sum()) for x, y in r.landmarks[:2])

    opened, closed = synth_crop(), synth_crop(expr=Expression(blink=1.0))
    assert white(opened) > 20 and white(closed) < 0.1 * white(opened)


def test_mouth_state_reads_the_same_in_any_pose():
    """An expression survives a pose change: the dark mouth opening shows in every pose."""

    def dark_mouth(r: Rendering) -> float:
        (x0, y0), (x1, y1) = r.landmarks[3], r.landmarks[4]
        half = abs(x1 - x0) / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        box = r.image[int(cy - 0.2 * half) : int(cy + 0.9 * half), int(cx - 0.6 * half) : int(cx + 0.6 * half)]
        return float((box.max(-1) < 70).mean())

    for pose in (Pose(), Pose(yaw=25, pitch=-10), Pose(yaw=-20, pitch=12, roll=15)):
        assert dark_mouth(synth_crop(pose, Expression(mouth_open=1.0))) > 0.2
        assert dark_mouth(synth_crop(pose, NEUTRAL)) < 0.05


# ------------------------------------------------------------------ motion and pairs


def test_motion_is_smooth_bounded_and_reproducible():
    a, b = sample_motion(500, 25.0, seed=9), sample_motion(500, 25.0, seed=9)
    assert np.array_equal(a.yaw, b.yaw) and np.array_equal(a.blink, b.blink)
    for name, limit in POSE_LIMITS.items():
        track = getattr(a, name)
        assert np.abs(track).max() <= limit + 1e-9
        assert np.abs(np.diff(track)).max() < 2.0  # degrees per frame at 25 fps
    assert 0 <= a.mouth_open.min() and a.mouth_open.max() <= 1 and a.mouth_open.max() > 0.3
    assert -1 <= a.smile.min() and a.smile.max() <= 1 and -1 <= a.brow_raise.min() and a.brow_raise.max() <= 1
    assert a.blink.max() > 0.9 and (a.blink > 0.5).mean() < 0.2  # 20 s with short blinks
    assert a.pose(3) == Pose(*(float(getattr(a, k)[3]) for k in ("yaw", "pitch", "roll", "tx", "ty", "scale")))


@pytest.mark.parametrize("change", ["pose", "expression"])
def test_controlled_pairs_change_one_factor_group(change):
    pair = render_pair(identity_seed=4, change=change, seed=1, size=128)
    pose_keys = ("yaw", "pitch", "roll", "tx", "ty", "scale")
    expr_keys = ("mouth_open", "smile", "blink", "brow_raise")
    same, different = (expr_keys, pose_keys) if change == "pose" else (pose_keys, expr_keys)
    assert all(pair.source_labels[k] == pair.target_labels[k] for k in same)
    assert any(pair.source_labels[k] != pair.target_labels[k] for k in different)
    diff = changed(pair.source, pair.target)
    if change == "expression":  # same pose: nothing moves away from the face
        x0, y0, x1, y1 = pair.source_labels["face_box"]
        w, h = x1 - x0, y1 - y0
        diff[max(int(y0 - 0.6 * h), 0) : int(y1 + 0.3 * h), max(int(x0 - 0.3 * w), 0) : int(x1 + 0.3 * w)] = False
        assert diff.mean() < 0.002
    else:
        assert diff.mean() > 0.02


# ------------------------------------------------------------------ factor regressor


def test_factor_regressor_halves_load_as_training_loss_networks(tmp_path):
    from dpe_cli.synth.factors import FACTORS, expression_half, pose_half, save_expression_half, save_pose_half, to_tensor
    from dpe_cli.synth.regressor import ExpressionRegressor
    from dpe_cli.train.expression import load_expression_encoder

    torch.manual_seed(0)
    model = ExpressionRegressor(dims=len(FACTORS), width=4, input_size=32).eval()
    x = to_tensor(np.stack([synth_crop(size=32).image, synth_crop(Pose(yaw=20), Expression(smile=0.8), size=32).image]))
    for save, half in ((save_expression_half, expression_half), (save_pose_half, pose_half)):
        loaded = load_expression_encoder(save(model, tmp_path / f"{half.__name__}.safetensors"))
        assert torch.equal(loaded(x), half(model)(x))
