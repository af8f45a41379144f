"""Face detection, the crop box of real videos, face mesh, and paste-back, on the real media in
../shared/media (mediapipe in this process)."""

from __future__ import annotations

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from dpe_cli.face import BoxAccumulator, CropBox, FaceDetector, FaceMesh, Paster
from dpe_cli.face.crop import crop
from helpers import assert_only_box_changed, media

DPE_CROPS = ("dpe_source_crop.mp4", "dpe_driver_crop.mp4")
FULL_FRAMES = ("talk_full_844.mp4", "talk_full_590.mp4", "talk_landscape_1280x720.mp4")


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


@pytest.mark.parametrize("name", DPE_CROPS + FULL_FRAMES)
def test_detects_one_face_in_videos(detector, name):
    frames = video_frames(name, 3, step=20)
    assert len(frames) == 3
    for frame in frames:
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


# paste


MAGENTA = (255, 0, 255)


def paste_case(talk_844):
    """A frame, its box, its crop, and an edit that is magenta everywhere (no face in it)."""
    frames, _, box = talk_844
    frame = frames[0]
    source = crop(frame, box)
    return frame, box, source, np.full_like(source, MAGENTA)


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


def test_change_paste_reaches_past_the_face_outline(talk_844):
    """A dropping jaw leaves the source's outline: the change methods' mask reaches a little
    further than replace's (which would blur what it covers), and covers all that replace's does."""
    frame, box, _, _ = paste_case(talk_844)
    height, width = frame.shape[:2]
    with Paster(box, width, height, method="change") as change, Paster(box, width, height, method="replace") as replace:
        wide, exact = change.mask(frame), replace.mask(frame)
    assert (wide >= exact - 1e-6).all()
    assert (wide > exact + 0.1).sum() > 0.01 * box.size**2


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
