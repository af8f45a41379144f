"""Synthetic clips and data sets on disk: every frame and its labels, the VoxCeleb layout,
keyframe motion, and that synth needs nothing from train."""

from __future__ import annotations

import subprocess
import sys

import imageio_ffmpeg
import numpy as np
import pytest

from dpe_cli.errors import InputError
from dpe_cli.synth import POSE_LIMITS, read_labels, render_clip, sample_keyframes, sample_motion, write_clip, write_dataset
from dpe_cli.synth.dataset import clip_seed


def decode(path) -> list[np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


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
