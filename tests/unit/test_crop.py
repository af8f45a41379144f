"""The crop box (one fixed box per video), --box parsing, and cropping, on synthetic boxes and frames."""

from __future__ import annotations

import numpy as np
import pytest

import dpe_cli.face.crop as crop_module
from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face import BoxAccumulator, CropBox, FaceBox, FaceDetector, box_in_frame, parse_box, pick_face
from dpe_cli.face.crop import crop
from helpers import xy_pattern


def test_pick_face_orders_by_area():
    small, large = FaceBox(0, 0, 10, 10, 0.9), FaceBox(50, 50, 40, 40, 0.6)
    assert pick_face([small, large]) == large
    assert pick_face([small, large], 1) == small
    assert pick_face([small, large], 2) is None
    assert pick_face([]) is None


def test_detector_rejects_bad_confidence():
    with pytest.raises(InputError):
        FaceDetector(min_confidence=0)


# crop box


def test_box_ignores_a_few_bad_detections():
    face = FaceBox(400, 300, 100, 100, 0.9)
    clean, noisy = BoxAccumulator(), BoxAccumulator()
    for i in range(60):
        clean.add([face])
        noisy.add([FaceBox(0, 0, 300, 300, 0.6)] if i % 30 == 0 else [face])
    assert noisy.frames == noisy.frames_with_face == 60
    assert noisy.box(1280, 720) == clean.box(1280, 720)


def test_box_grows_to_hold_a_moving_face():
    faces = [FaceBox(200 + 20 * i, 300, 100, 100, 0.9) for i in range(40)]
    acc = BoxAccumulator()
    for face in faces:
        acc.add([face])
    box = acc.box(1920, 1080)
    held = [box.x <= f.x and f.x + f.w <= box.x + box.size for f in faces]
    assert sum(held) >= 0.9 * len(faces)


def test_box_counts_frames_and_needs_a_face():
    acc = BoxAccumulator()
    acc.add([])
    acc.add([])
    assert (acc.frames, acc.frames_with_face) == (2, 0)
    with pytest.raises(NoFaceError):
        acc.box(640, 480)


def test_box_memory_is_bounded(monkeypatch):
    # the package's `crop` is the function; the module comes from sys.modules
    monkeypatch.setattr(crop_module, "SAMPLE_SIZE", 16)
    acc = BoxAccumulator()
    for i in range(200):
        acc.add([FaceBox(100 + i % 3, 100, 50, 50, 0.9)])
    assert len(acc._samples) == 16 and acc.frames_with_face == 200
    assert acc.box(400, 400).size == 93  # 1.85 x 50, rounded up


def test_accumulator_uses_face_index():
    acc = BoxAccumulator(face_index=1)
    acc.add([FaceBox(0, 0, 200, 200, 0.9), FaceBox(500, 500, 50, 50, 0.9)])
    box = acc.box(1000, 1000)
    assert box.x < 525 < box.x + box.size and box.size < 150


# parse_box


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10,20,100,100", CropBox(10, 20, 100)),
        (" 10, 20 ,100,100 ", CropBox(10, 20, 100)),
        ("-5,-8,50,50", CropBox(-5, -8, 50)),
        ("10,20,100,60", CropBox(10, 0, 100)),  # made square around its centre
        ("10,20,60,100", CropBox(-10, 20, 100)),
    ],
)
def test_parse_box(text, expected):
    assert parse_box(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1,2,3", "1,2,3,4,5", "a,b,c,d", "1.5,2,3,4", "0,0,0,10", "0,0,10,-10"]
)
def test_parse_box_rejects(text):
    with pytest.raises(InputError):
        parse_box(text)


# crop


def test_crop_pads_instead_of_shifting():
    frame = xy_pattern(100, 80)
    out = crop(frame, CropBox(-20, 50, 60), size=60)
    assert out.shape == (60, 60, 3)
    # the visible part is where the box puts it, unshifted
    assert np.array_equal(out[:30, 20:], frame[50:80, 0:40])
    # left of the frame: the first column repeated; below it: the last row repeated
    assert np.array_equal(out[:30, :20], np.repeat(frame[50:80, :1], 20, axis=1))
    assert np.array_equal(out[30:], np.repeat(out[29:30], 30, axis=0))


def test_crop_resizes_both_ways():
    frame = xy_pattern(200, 200)
    assert crop(frame, CropBox(0, 0, 200), size=256).shape == (256, 256, 3)
    small = crop(frame, CropBox(10, 10, 128), size=64)
    assert small.shape == (64, 64, 3)
    assert abs(int(small[0, 0, 0]) - 10) <= 1 and abs(int(small[-1, -1, 1]) - 136) <= 1


def test_crop_rejects_box_outside_frame():
    with pytest.raises(InputError):
        crop(xy_pattern(100, 100), CropBox(150, 0, 50))


def test_box_in_frame():
    assert box_in_frame(CropBox(-10, 20, 50), 100, 60) == (0, 20, 40, 40)
    assert box_in_frame(CropBox(10, 10, 20), 100, 100) == (10, 10, 20, 20)
    assert box_in_frame(CropBox(200, 0, 50), 100, 100)[2] == 0
