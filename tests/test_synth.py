"""The synthetic talking-face generator: determinism, labels that match the pixels,
detectability by mediapipe, clips with labels, the ``dpe synth`` command, and that synth
needs nothing from train."""

from __future__ import annotations

import subprocess
import sys
import time

import imageio_ffmpeg
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from dpe_cli.cli.synth_cmd import parse_size, register
from dpe_cli.errors import InputError, OutputExistsError
from dpe_cli.synth import (
    POSE_LIMITS,
    Expression,
    Identity,
    Pose,
    Rendering,
    Scene,
    read_labels,
    render,
    render_clip,
    render_crop,
    render_frame,
    render_pair,
    sample_keyframes,
    sample_motion,
    write_clip,
    write_dataset,
)
from dpe_cli.synth.dataset import clip_seed
from dpe_cli.synth.motion import random_expression, random_pose

NEUTRAL = Expression()


def crop(pose: Pose = Pose(), expr: Expression = NEUTRAL, identity: int = 3, size: int = 256) -> Rendering:
    return render(Identity.from_seed(identity), pose, expr, (size, size), "crop", Scene.from_seed(11))


def changed(a: np.ndarray, b: np.ndarray, level: int = 24) -> np.ndarray:
    """Pixels that differ clearly (more than codec/anti-aliasing noise)."""
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > level


def decode(path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


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


# ------------------------------------------------------------------ parameters and rendering


def test_same_seeds_give_the_same_pixels_and_others_differ():
    assert Identity.from_seed(5) == Identity.from_seed(5) != Identity.from_seed(6)
    a, b = crop(Pose(yaw=12), Expression(smile=0.4)), crop(Pose(yaw=12), Expression(smile=0.4))
    assert np.array_equal(a.image, b.image) and a.face_box == b.face_box
    assert changed(a.image, crop(Pose(yaw=12), Expression(smile=0.4), identity=4).image).mean() > 0.05


@pytest.mark.parametrize("size", [64, 128, 256])
def test_crop_sizes_and_labels_inside_the_image(size):
    r = crop(Pose(yaw=-20, roll=10), size=size)
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
    base = crop()
    moved = crop(expr=Expression(**{factor: 1.0}))
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

    opened, closed = crop(), crop(expr=Expression(blink=1.0))
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
        assert dark_mouth(crop(pose, Expression(mouth_open=1.0))) > 0.2
        assert dark_mouth(crop(pose, NEUTRAL)) < 0.05


def test_pose_angles_match_what_mediapipe_sees(mediapipe_models):
    """Yaw turns the nose to the side its sign says, pitch moves it up or down the face, roll
    tilts the eye line; and the five landmark labels sit on the eyes, nose and mouth that face
    mesh finds."""
    mesh = mediapipe_models[2]
    for yaw in (-25.0, 25.0):
        r = crop(Pose(yaw=yaw))
        pts = mesh_points(mesh, r.image)
        assert pts is not None
        asym = pts[1, 0] - (pts[234, 0] + pts[454, 0]) / 2  # nose tip vs the cheek midpoint
        assert np.sign(asym) == np.sign(yaw)
    heights = []
    for pitch in (-15.0, 0.0, 15.0):
        pts = mesh_points(mesh, crop(Pose(pitch=pitch)).image)
        eyes, mouth = pts[[33, 133, 362, 263], 1].mean(), pts[[61, 291], 1].mean()
        heights.append((pts[1, 1] - eyes) / (mouth - eyes))  # nose tip down the eye-mouth span
    assert heights[0] > heights[1] + 0.05 > heights[2] + 0.1
    for roll in (-15.0, 15.0):
        pts = mesh_points(mesh, crop(Pose(roll=roll)).image)
        slope = pts[263, 1] - pts[33, 1]  # outer corners: viewer's right eye minus left eye
        assert np.sign(slope) == np.sign(roll)
    r = crop(Pose(yaw=15, pitch=-10, roll=5), Expression(smile=0.5))
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


# ------------------------------------------------------------------ motion, pairs, clips


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



def test_keyframe_clips_draw_every_frame_independently_over_the_whole_range(tmp_path):
    """--motion keyframes: frames of one clip differ as much as independent renders (training
    pairs that span each factor's range), reproducibly, and the labels are the rendered ones."""
    a, b = sample_keyframes(400, seed=3), sample_keyframes(400, seed=3)
    assert np.array_equal(a.yaw, b.yaw) and np.array_equal(a.mouth_open, b.mouth_open)
    assert not np.array_equal(a.yaw, sample_keyframes(400, seed=4).yaw)
    for name, limit in POSE_LIMITS.items():
        track = getattr(a, name)
        assert np.abs(track).max() <= limit and np.abs(np.diff(track)).mean() > 0.5 * limit
    smooth = sample_motion(400, 25.0, seed=3)
    assert np.abs(np.diff(a.brow_raise)).mean() > 10 * np.abs(np.diff(smooth.brow_raise)).mean()
    assert 0 <= a.mouth_open.min() < 0.05 and 0.95 < a.mouth_open.max() <= 1
    assert -1 <= a.brow_raise.min() < -0.9 and 0.9 < a.brow_raise.max() <= 1
    labels = write_clip(tmp_path / "k.mp4", identity_seed=2, n_frames=5, size=64, seed=3, motion="keyframes")
    assert read_labels(tmp_path / "k.mp4")["motion"] == "keyframes"
    assert [f["mouth_open"] for f in labels] == pytest.approx(a.mouth_open[:5].tolist(), abs=1e-4)
    with pytest.raises(InputError, match="face crops"):
        write_clip(tmp_path / "f.mp4", 2, 2, size=(320, 180), kind="full", motion="keyframes")
    with pytest.raises(InputError, match="unknown motion"):
        list(render_clip(2, 2, motion="jerky"))

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


def test_write_clip_writes_every_frame_and_its_labels(tmp_path):
    path = tmp_path / "clip.mp4"
    labels = write_clip(path, identity_seed=2, n_frames=6, fps=10.0, size=64, kind="crop", seed=5)
    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (6, 0.6)
    meta = read_labels(path)
    assert meta["frames"] == labels and len(labels) == 6 and meta["size"] == [64, 64]
    assert meta["identity"]["seed"] == 2 and meta["fps"] == 10.0
    assert set(labels[0]) >= {"yaw", "pitch", "roll", "tx", "ty", "scale", "mouth_open", "smile", "blink", "brow_raise", "face_box"}
    frames = decode(path)
    rendered = [img for img, _ in render_clip(2, 6, 10.0, 64, "crop", seed=5)]
    for got, want in zip(frames, rendered):
        mse = np.mean((got.astype(float) - want) ** 2)
        assert 10 * np.log10(255**2 / mse) > 28  # the labelled frames are the encoded ones
    assert not list(tmp_path.glob(".*partial*"))


def test_write_dataset_uses_the_voxceleb_layout(tmp_path):
    paths = write_dataset(tmp_path / "ds", n_identities=2, clips_per_identity=2, n_frames=3, fps=25.0, size=64, seed=10, workers=2)
    rel = sorted(str(p.relative_to(tmp_path / "ds")) for p in paths)
    assert rel == ["id00010/00000.mp4", "id00010/00001.mp4", "id00011/00000.mp4", "id00011/00001.mp4"]
    first = [read_labels(p)["frames"][0] for p in paths]
    assert first[0]["identity_seed"] == 10 and first[2]["identity_seed"] == 11
    assert first[0]["yaw"] != first[1]["yaw"]  # each clip has its own motion
    alone = write_clip(tmp_path / "alone.mp4", 11, 3, 25.0, 64, "crop", seed=clip_seed(10, 11, 1))
    assert read_labels(paths[3])["frames"] == alone  # parallel workers render the same clips


def test_full_clip_labels_carry_the_face_box(tmp_path):
    labels = write_clip(tmp_path / "f.mp4", identity_seed=1, n_frames=2, size=(320, 180), kind="full", seed=3)
    x0, y0, x1, y1 = labels[0]["face_box"]
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 180


# ------------------------------------------------------------------ layering


def test_synth_stands_without_train():
    """synth sits below train: importing it, factor regressor included, loads nothing of train."""
    code = "import sys, dpe_cli.synth, dpe_cli.synth.factors; print(sorted(m for m in sys.modules if m.startswith('dpe_cli.train')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_factor_regressor_halves_load_as_training_loss_networks(tmp_path):
    from dpe_cli.synth.factors import FACTORS, expression_half, pose_half, save_expression_half, save_pose_half, to_tensor
    from dpe_cli.synth.regressor import ExpressionRegressor
    from dpe_cli.train.expression import load_expression_encoder

    torch.manual_seed(0)
    model = ExpressionRegressor(dims=len(FACTORS), width=4, input_size=32).eval()
    x = to_tensor(np.stack([crop(size=32).image, crop(Pose(yaw=20), Expression(smile=0.8), size=32).image]))
    for save, half in ((save_expression_half, expression_half), (save_pose_half, pose_half)):
        loaded = load_expression_encoder(save(model, tmp_path / f"{half.__name__}.safetensors"))
        assert torch.equal(loaded(x), half(model)(x))


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli():
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test harness: ``synth`` registered on a fresh app."""

    register(app)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["synth", *map(str, args)])


def test_cli_writes_a_dataset_and_a_single_clip(cli, tmp_path):
    result = cli(tmp_path / "ds", "--identities", 2, "--clips", 1, "--frames", 3, "--size", 64, "--seed", 7, "--quiet")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["id00007", "id00008"]
    result = cli(tmp_path / "one.mp4", "--frames", 4, "--kind", "full", "--size", "320x180", "--quiet")
    assert result.exit_code == 0, result.output
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "one.mp4"))[0] == 4
    assert read_labels(tmp_path / "one.mp4")["kind"] == "full"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--size", "65"], InputError),
        (["--size", "big"], InputError),
        (["--frames", "0"], InputError),
        (["--fps", "-1"], InputError),
        (["--clips", "2"], InputError),  # a single .mp4 has no clips
        (["--workers", "0"], InputError),
        (["--motion", "keyframes", "--kind", "full"], InputError),
    ],
)
def test_cli_rejects_bad_options_with_a_hint(cli, tmp_path, args, error):
    result = cli(tmp_path / "x.mp4", *args)
    assert isinstance(result.exception, error)
    assert result.exception.hint
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("args", [["--kind", "portrait"], ["--motion", "jerky"]])
def test_cli_kind_and_motion_are_choices(cli, tmp_path, args):
    result = cli(tmp_path / "x.mp4", *args)
    assert result.exit_code == 2 and "is not one of" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_cli_refuses_to_overwrite_without_the_flag(cli, tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "keep.txt").write_text("x")
    assert isinstance(cli(tmp_path / "ds", "--frames", 1, "--size", 64).exception, OutputExistsError)
    assert cli(tmp_path / "ds", "-n", 1, "--clips", 1, "--frames", 1, "--size", 64, "-y", "-q").exit_code == 0


def test_parse_size():
    assert parse_size("256") == 256 and parse_size("640x360") == (640, 360) and parse_size(None) is None
