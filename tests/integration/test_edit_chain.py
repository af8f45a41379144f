"""The edit job's chain of stages: each unit alone, and the whole chain pinned to the plain
composition of the library's parts (decode, crop, encode, drive, paste) frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpe_cli.edit import EditJob, EditRequest
from dpe_cli.edit.casting import Casting
from dpe_cli.edit.compose import Compositor, output_size
from dpe_cli.edit.drivers import DriverTrack, TrackFeed
from dpe_cli.edit.framing import Framing, find_box
from dpe_cli.edit.frames import Face, FrameItem, video_frames
from dpe_cli.edit.infer import Inference
from dpe_cli.edit.stream import StageTimer
from dpe_cli.engine import Engine
from dpe_cli.face.crop import CropBox, crop
from dpe_cli.face.paste import Paster
from dpe_cli.video import FrameReader, probe
from helpers import media


def _png_frames(folder) -> list[np.ndarray]:
    import cv2

    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("frame_*.png"))]


@pytest.mark.parametrize("shots", ["auto", "none"])
def test_chain_equals_the_plain_composition_of_its_parts(tiny_weights, tmp_path, shots):
    """A single-shot, single-person expression edit is bit for bit what decoding, cropping with
    the video's one box, encoding, driving (with the model's reconstruction as the paste's
    reference) and pasting each frame in turn give, whether or not shots are looked for; this
    pins the chain's output."""
    source, driver = media("talk_full_590.mp4"), media("dpe_driver_crop.mp4")
    out = tmp_path / "frames"
    report = EditJob(EditRequest(source=source, driver=driver, output=f"{out}/", weights=tiny_weights, duration=0.4, shots=shots)).run()

    engine = Engine.load(tiny_weights)
    info, driver_info = probe(source), probe(driver)
    box = find_box(info, duration=0.4).box
    driver_box = find_box(driver_info, duration=0.4).box
    assert list(box.as_tuple()) == report["box"]
    paster = Paster(box, info.width, info.height, fps=float(info.fps))
    drivers = iter(FrameReader(driver, fps=info.fps))
    expected = []
    for frame in FrameReader(source, duration=0.4):
        encoding = engine.encode([crop(frame, box, engine.size)])
        own = engine.motion_of(encoding)
        edited, reference = engine.render(encoding, engine.motion([crop(next(drivers), driver_box, engine.size)]), "expression", own)
        expected.append(paster.paste(frame, edited[0], reference[0]))
    paster.close()
    got = _png_frames(out)
    assert len(got) == len(expected) == 10
    for a, b in zip(got, expected):
        assert np.array_equal(a, b)


def test_decode_stage_advances_the_driver_only_inside_the_edited_span(tmp_path):
    from helpers import noise_video

    clip = noise_video(tmp_path / "n.mp4", seconds=1.0)  # 25 frames
    request = EditRequest(source=clip, driver=clip, output=str(tmp_path / "o.mp4"), edit_start=0.2, edit_end=0.6, fade=0.0)
    cues = iter(range(100))
    items = list(video_frames(FrameReader(clip), Casting.single(CropBox(0, 0, 240)), cues, request, 32, StageTimer(), paste=False, keep_frame=False))
    assert len(items) == 25
    assert all(item.frame is None and item.faces[0].crop.shape == (32, 32, 3) for item in items)
    edited = [i for i, item in enumerate(items) if item.cue is not None]
    assert edited == list(range(5, 15))  # 0.2 s .. 0.6 s at 25 fps
    assert [items[i].cue for i in edited] == list(range(10))  # the span meets the driver's first frame
    assert all(items[i].faces[0].weight == 0 for i in range(25) if i not in edited)


def test_decode_stage_ends_with_a_driver_that_stops(tmp_path):
    from helpers import noise_video

    clip = noise_video(tmp_path / "n.mp4", seconds=1.0)
    request = EditRequest(source=clip, driver=clip, output=str(tmp_path / "o.mp4"))
    items = list(video_frames(FrameReader(clip), Casting.single(CropBox(0, 0, 240)), iter(range(7)), request, 16, StageTimer(), paste=True, keep_frame=True))
    assert len(items) == 7 and items[0].frame.shape == (240, 320, 3)


@pytest.mark.parametrize(("end", "expected"), [("loop", [0, 1, 2, 0, 1, 2, 0]), ("hold", [0, 1, 2, 2, 2, 2, 2]), ("stop", [0, 1, 2])])
def test_cached_driver_follows_driver_end(end, expected):
    track = DriverTrack(Framing(CropBox(0, 0, 8), 3, 3), torch.arange(3.0)[:, None])
    cues = TrackFeed(track, still=False, single_pass=False, driver_end=end).cues()
    assert [c for _, c in zip(range(7), cues)] == expected
    once = TrackFeed(track, still=False, single_pass=True, driver_end=end).cues()
    assert list(once) == [0, 1, 2]  # a portrait's timeline is the driver's own frames


def test_inference_edits_only_faces_with_weight(tiny_weights):
    engine = Engine.load(tiny_weights)
    rng = np.random.default_rng(0)
    pictures = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    track = DriverTrack(Framing(CropBox(0, 0, 64), 1, 1), engine.motion(pictures[:1]))
    request = EditRequest(source="s.mp4", driver="d.mp4", output="o.mp4")
    infer = Inference(engine, request, TrackFeed(track, True, False, "loop"), StageTimer(), portrait=None, model_reference=True, keep_reference=True)
    one = Casting.single(CropBox(0, 0, 64)).subjects[0]
    batch = [FrameItem(0, None, 0, [Face(pictures[0], 1.0, one)]), FrameItem(1, None, None, [Face(pictures[1], 0.0, one)]),
             FrameItem(2, None, 0, [Face(pictures[2], 0.5, one)])]
    infer(batch)
    assert infer.frames_edited == 2
    assert batch[1].faces[0].edited is None and batch[1].faces[0].reference is None
    for item in (batch[0], batch[2]):
        assert item.faces[0].edited.shape == (64, 64, 3) and item.faces[0].reference.shape == (64, 64, 3)
    # Half the edit is rendered between the face's own vector and the driver's.
    assert not np.array_equal(batch[0].faces[0].edited, batch[2].faces[0].edited)


def test_compositor_keeps_unedited_frames_and_lays_out_panels():
    frame = np.full((40, 60, 3), 7, np.uint8)
    one = Casting.single(CropBox(10, 5, 30)).subjects[0]
    kept = FrameItem(0, frame, None, [Face(np.zeros((16, 16, 3), np.uint8), 0.0, one)])
    paster = Paster(CropBox(10, 5, 30), 60, 40, mask="box")
    compose = Compositor(lambda subject: paster, StageTimer(), 16, panel_height=None, picture=lambda cue: cue)
    assert compose(kept) is frame  # a kept frame is the source's, untouched
    assert output_size(True, 60, 40, 16, with_driver=False) == (60, 40)
    w, h = output_size(True, 60, 40, 16, with_driver=True)
    sbs = Compositor(lambda subject: paster, StageTimer(), 16, panel_height=40, picture=lambda cue: cue)(kept)
    assert sbs.shape == (h, w, 3) == (40, 160, 3)  # source | driver (blank) | output
    assert np.array_equal(sbs[:, :60], frame) and not sbs[:, 60:100].any()
    paster.close()
