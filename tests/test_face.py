"""Face detection, crop box, crop and paste-back, on the real media in ../shared/media."""

from __future__ import annotations

from pathlib import Path


import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from dpe_cli.errors import InputError, NoFaceError
from dpe_cli.face import (
    BoxAccumulator,
    CropBox,
    FaceBox,
    FaceDetector,
    FaceMesh,
    Paster,
    box_in_frame,
    parse_box,
    pick_face,
)
import dpe_cli.face.crop as crop_module
from dpe_cli.face.crop import crop
from dpe_cli.face.landmarks import FACE_OVAL
from dpe_cli.face.smoothing import OneEuroFilter

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"
DPE_CROPS = ("dpe_source_crop.mp4", "dpe_driver_crop.mp4")
FULL_FRAMES = ("talk_full_844.mp4", "talk_full_590.mp4", "talk_landscape_1280x720.mp4")


def media(name: str) -> Path:
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"shared media {path} is absent (the tests need the ../shared checkout)")
    return path


def video_frames(name: str, count: int, step: int = 1) -> list[np.ndarray]:
    """Every step-th frame from the start, count of them (decoding stops there)."""
    reader = imageio_ffmpeg.read_frames(str(media(name)))
    width, height = next(reader)["size"]
    frames = []
    try:
        for i, raw in enumerate(reader):
            if i % step == 0:
                frames.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
                if len(frames) == count:
                    break
    finally:
        reader.close()
    return frames


def image(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media(name))), cv2.COLOR_BGR2RGB)


def noise(size: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector():
    with FaceDetector() as det:
        yield det


@pytest.fixture(scope="module")
def talk_844(detector):
    """Frames of talk_full_844.mp4, their detections and the accumulated box."""
    frames = video_frames("talk_full_844.mp4", 25, step=4)
    faces = [detector.detect(frame) for frame in frames]
    acc = BoxAccumulator()
    for found in faces:
        acc.add(found)
    height, width = frames[0].shape[:2]
    return frames, faces, acc.box(width, height)


def face_proportion(detector: FaceDetector, crops: list[np.ndarray]) -> tuple[float, float]:
    """Median face side / crop side and median face centre y / crop side."""
    boxes = [detector.detect(c)[0] for c in crops]
    side = np.median([max(b.w, b.h) / c.shape[0] for b, c in zip(boxes, crops)])
    centre_y = np.median([b.center[1] / c.shape[0] for b, c in zip(boxes, crops)])
    return float(side), float(centre_y)


# detection


def test_face_oval_is_mediapipes():
    from dpe_cli.face.detect import mediapipe_solutions

    edges = mediapipe_solutions().face_mesh.FACEMESH_FACE_OVAL
    assert set(FACE_OVAL) == {i for edge in edges for i in edge}
    assert len(FACE_OVAL) == len(set(FACE_OVAL))


@pytest.mark.parametrize("name", DPE_CROPS + FULL_FRAMES)
def test_detects_one_face_in_videos(detector, name):
    for frame in video_frames(name, 3, step=20):
        faces = detector.detect(frame)
        assert len(faces) == 1
        face = faces[0]
        assert face.score > 0.5
        height, width = frame.shape[:2]
        assert 0 <= face.center[0] < width and 0 <= face.center[1] < height
        assert 0.1 * min(width, height) < face.w < min(width, height)


@pytest.mark.parametrize("name", ["portrait_s0.jpg", "portrait_s6.jpg"])
def test_detects_one_face_in_portraits(detector, name):
    assert len(detector.detect(image(name))) == 1


@pytest.mark.parametrize(
    "picture", [np.full((256, 256, 3), 128, np.uint8), noise()], ids=["gray", "noise"]
)
def test_no_face_in_plain_images(detector, picture):
    assert detector.detect(picture) == []


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


def test_box_on_full_frame_video_matches_dpe_framing(detector, talk_844):
    frames, faces, box = talk_844
    x, y, w, h = box.as_tuple()
    assert w == h == box.size
    for found in faces:
        face = found[0]
        assert x <= face.x and face.x + face.w <= x + w
        assert y <= face.y and face.y + face.h <= y + h

    reference = [c for name in DPE_CROPS for c in video_frames(name, 5, step=20)]
    ref_side, ref_y = face_proportion(detector, reference)
    side, centre_y = face_proportion(detector, [crop(frame, box) for frame in frames[::3]])
    assert abs(side / ref_side - 1) < 0.15
    assert abs(centre_y - ref_y) < 0.05


def test_box_of_a_ready_crop_is_the_whole_frame(detector):
    frames = video_frames("dpe_source_crop.mp4", 10, step=10)
    acc = BoxAccumulator()
    for frame in frames:
        acc.add(detector.detect(frame))
    assert acc.box(256, 256) == CropBox(0, 0, 256)
    assert np.array_equal(crop(frames[0], CropBox(0, 0, 256)), frames[0])


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


def xy_pattern(width: int, height: int) -> np.ndarray:
    """R = column, G = row: every pixel says where it came from."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = np.arange(width)[None, :]
    frame[..., 1] = np.arange(height)[:, None]
    return frame


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


# paste


MAGENTA = (255, 0, 255)


def paste_case(talk_844):
    """A frame, its box, its crop, and an edit that is magenta everywhere (no face in it)."""
    frames, _, box = talk_844
    frame = frames[0]
    source = crop(frame, box)
    return frame, box, source, np.full_like(source, MAGENTA)


def assert_only_box_changed(frame, out, box):
    x, y, w, h = box_in_frame(box, frame.shape[1], frame.shape[0])
    outside = np.ones(frame.shape[:2], bool)
    outside[y : y + h, x : x + w] = False
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[outside], frame[outside])


def landmarks_in_frame(frame, box):
    """Face-mesh points of the frame's face, in frame pixels."""
    with FaceMesh(static_image_mode=True) as mesh:
        points = mesh(crop(frame, box, 256))[:, :2]
    return points * box.size / 256 + (box.x, box.y)


@pytest.mark.parametrize("mask", ["face", "box"])
def test_replace_paste_blends_only_inside_the_box(talk_844, mask):
    frame, box, source, edited = paste_case(talk_844)
    height, width = frame.shape[:2]
    with Paster(box, width, height, mask=mask, method="replace") as paster:
        out = paster.paste(frame, edited)
    assert_only_box_changed(frame, out, box)
    edge = np.s_[box.y : box.y + box.size, box.x : box.x + 2]  # the mask is 0 at the box edge
    assert np.array_equal(out[edge], frame[edge])
    cx, cy = box.x + box.size // 2, box.y + int(box.size * 0.57)  # the face centre
    assert (out[cy - 20 : cy + 20, cx - 20 : cx + 20] == MAGENTA).all()
    assert (paster.frames, paster.fallbacks) == (1, 0)


def test_face_mask_follows_the_face_in_the_frame(talk_844):
    frame, box, _, edited = paste_case(talk_844)
    height, width = frame.shape[:2]
    # a background point inside the box, beside the head at eye height
    point = np.s_[box.y + box.size // 2, box.x + box.size // 8]
    cheek = np.s_[box.y + box.size // 2, box.x + box.size // 2 - box.size // 10]
    with Paster(box, width, height, mask="face", method="replace") as face, Paster(box, width, height, mask="box", method="replace") as whole:
        out = face.paste(frame, edited)
        assert face.fallbacks == 0
        assert np.array_equal(out[point], frame[point])
        assert not np.array_equal(out[cheek], frame[cheek])
        assert not np.array_equal(whole.paste(frame, edited)[point], frame[point])


def test_mask_without_a_face_keeps_the_last_landmarks_or_falls_back_to_the_box(talk_844):
    frame, box, _, _ = paste_case(talk_844)
    height, width = frame.shape[:2]
    faceless = cv2.resize(noise(), (width, height))
    with Paster(box, width, height, mask="face") as face, Paster(box, width, height, mask="box") as whole:
        assert np.array_equal(face.mask(faceless), whole.mask(faceless))  # no face seen yet: the box
        assert face.fallbacks == 1
        with_face = face.mask(frame)
        assert np.array_equal(face.mask(faceless), with_face)  # the last landmarks are kept
        assert face.fallbacks == 2


def test_change_paste_keeps_the_frames_detail(talk_844):
    """The change paste adds the edit's change to the frame's own pixels: a small uniform change
    keeps every detail of the frame, a lossless no-op returns it bit for bit, and only a large
    change shows the model's (soft) picture, without a ghost of the frame underneath."""
    frame, box, _, _ = paste_case(talk_844)
    height, width = frame.shape[:2]
    reference = crop(frame, box, 64)
    with Paster(box, width, height, method="change") as paster:
        assert np.array_equal(paster.paste(frame, reference, reference), frame)
        brighter = np.clip(reference.astype(int) + 6, 0, 255).astype(np.uint8)
        out = paster.paste(frame, brighter, reference)
    with Paster(box, width, height, method="replace") as replace:
        soft = replace.paste(frame, brighter)
    cx, cy = box.x + box.size // 2, box.y + int(box.size * 0.55)
    centre = np.s_[cy - 40 : cy + 40, cx - 40 : cx + 40]
    added = out[centre].astype(int) - frame[centre]
    assert abs(added.mean() - 6) < 1 and added.std() < 1.5  # the same frame, 6 levels brighter
    assert (soft[centre].astype(int) - frame[centre]).std() > 3 * added.std()  # replace blurs it
    assert_only_box_changed(frame, out, box)

    # A large change (a dark patch where the mouth is) shows the edit there, no ghost.
    changed = reference.copy()
    changed[36:48, 24:40] = 20
    with Paster(box, width, height, method="change", mask="box") as paster:
        out = paster.paste(frame, changed, reference)
    s = box.size / 64
    inner = np.s_[box.y + round(39 * s) : box.y + round(45 * s), box.x + round(27 * s) : box.x + round(37 * s)]
    assert np.abs(out[inner].astype(int) - 20).max() <= 6


@pytest.mark.parametrize(("region", "inside", "outside"), [("mouth", (13, 152), (159, 386)), ("eyes", (159, 386), (13, 152)), ("mouth,eyes", (13, 159), ())])
def test_region_masks_cover_their_part_of_the_face(talk_844, region, inside, outside):
    frame, box, _, _ = paste_case(talk_844)
    height, width = frame.shape[:2]
    points = landmarks_in_frame(frame, box)
    with Paster(box, width, height, mask=region) as paster:
        mask = paster.mask(frame)
    for index in inside:  # 13 upper lip, 152 chin, 159/386 upper eyelids
        x, y = np.round(points[index] - (box.x, box.y)).astype(int)
        assert mask[y, x] > 0.99, (region, index)
    for index in outside:
        x, y = np.round(points[index] - (box.x, box.y)).astype(int)
        assert mask[y, x] < 0.01, (region, index)


def test_landmark_smoothing_steadies_the_mask(talk_844):
    """On a still face with sensor noise the smoothed mask changes less from frame to frame."""
    frame, box, _, _ = paste_case(talk_844)
    height, width = frame.shape[:2]
    rng = np.random.default_rng(1)
    frames = [np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    flicker = {}
    for smooth in (False, True):
        with Paster(box, width, height, mask="face", smooth=smooth) as paster:
            masks = [paster.mask(f) for f in frames]
        flicker[smooth] = np.mean([np.abs(a - b).mean() for a, b in zip(masks, masks[1:])])
    assert flicker[True] < 0.6 * flicker[False]


def test_paste_with_box_leaving_the_frame():
    frame = xy_pattern(120, 100)
    box = CropBox(-40, 40, 80)
    with Paster(box, 120, 100, mask="box", method="replace") as paster:
        out = paster.paste(frame, np.full((256, 256, 3), 255, np.uint8))
    assert_only_box_changed(frame, out, box)
    assert (out[80, 0] == 255).all()  # the box centre, on the frame's edge


@pytest.mark.parametrize(
    "options",
    [{"mask": "oval"}, {"mask": "box,face"}, {"mask": ""}, {"mask": "box", "feather": 0}, {"mask": "box", "method": "blend"}],
)
def test_paster_rejects_bad_options(options):
    with pytest.raises(InputError):
        Paster(CropBox(0, 0, 10), 10, 10, **options)


def test_region_landmark_sets_are_mediapipes():
    from dpe_cli.face import landmarks
    from dpe_cli.face.detect import mediapipe_solutions

    mesh = mediapipe_solutions().face_mesh
    for ours, theirs in ((landmarks.LIPS, mesh.FACEMESH_LIPS), (landmarks.LEFT_EYE, mesh.FACEMESH_LEFT_EYE),
                         (landmarks.RIGHT_EYE, mesh.FACEMESH_RIGHT_EYE), (landmarks.LEFT_BROW, mesh.FACEMESH_LEFT_EYEBROW),
                         (landmarks.RIGHT_BROW, mesh.FACEMESH_RIGHT_EYEBROW)):
        assert set(ours) == {i for edge in theirs for i in edge}


# temporal smoothing


def test_one_euro_filter_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    still = OneEuroFilter(25.0)
    noisy = 0.5 + rng.normal(0, 0.002, (100, 4))
    out = np.array([still(row) for row in noisy])
    assert np.abs(np.diff(out[20:], axis=0)).mean() < 0.3 * np.abs(np.diff(noisy[20:], axis=0)).mean()
    moving = OneEuroFilter(25.0)
    ramp = np.linspace(0, 1, 50)[:, None]  # half a box per second: a head turning
    followed = np.array([moving(row) for row in ramp])
    assert np.abs(followed[-1] - ramp[-1]).max() < 0.04  # lags by about one frame
    assert np.array_equal(OneEuroFilter(25.0)(np.ones(3)), np.ones(3))  # the first sample passes
    with pytest.raises(ValueError):
        OneEuroFilter(0.0)


# landmarks


@pytest.mark.parametrize(("refine", "count"), [(False, 468), (True, 478)])
def test_face_mesh_on_a_real_face(refine, count):
    frame = video_frames("dpe_source_crop.mp4", 1)[0]
    with FaceMesh(static_image_mode=True, refine_landmarks=refine) as mesh:
        points = mesh(frame)
    assert points is not None and points.shape == (count, 3) and points.dtype == np.float32
    assert (points[:, :2] >= 0).all() and (points[:, :2] < 256).all()


def test_face_mesh_finds_nothing_in_noise():
    with FaceMesh(static_image_mode=True) as mesh:
        assert mesh(noise()) is None
