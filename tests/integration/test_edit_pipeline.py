"""The editing pipeline in this process, on real footage, with small random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dpe_cli.edit import EditJob, EditRequest
from dpe_cli.errors import InputError, NoFaceError, OutputExistsError
from dpe_cli.video import FrameReader, probe
from helpers import ROOT, ffmpeg, media, noise_video


def read_all(path: Path) -> list[np.ndarray]:
    if path.is_dir():
        import cv2

        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(path.glob("frame_*.png"))]
    return list(FrameReader(path))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def _crop_frames(path: Path, size: int, **kw) -> list[np.ndarray]:
    from dpe_cli.face.crop import resize_square

    return [resize_square(f, size) for f in FrameReader(path, **kw)]


def test_pixels_outside_the_box_are_the_source_pixels(tiny_weights, tmp_path):
    """A lossless PNG-sequence output shows the paste-back touches only the face box."""
    source = media("talk_landscape_1280x720.mp4")
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=media("lia_driver_crop_audio.mp4"), output=str(out) + "/", weights=tiny_weights, duration=0.5, mask="box")
    report = EditJob(request).run()
    edited = read_all(out)
    original = list(FrameReader(source, duration=0.5))
    assert len(edited) == len(original) == report["frames"] == 15
    x, y, w, h = report["box"]
    outside = np.ones(original[0].shape[:2], bool)
    outside[max(y, 0) : y + h, max(x, 0) : x + w] = False
    centre = (slice(y + h // 3, y + 2 * h // 3), slice(x + w // 3, x + 2 * w // 3))
    for a, b in zip(original, edited):
        assert np.array_equal(a[outside], b[outside])
        assert np.abs(a[centre].astype(int) - b[centre].astype(int)).mean() > 5


def test_still_driver_and_side_by_side(tiny_weights, tmp_path):
    out = tmp_path / "sbs.mp4"
    request = EditRequest(source=media("talk_full_844.mp4"), driver=media("portrait_s6.jpg"), output=str(out), weights=tiny_weights, duration=0.4, side_by_side=True)
    report = EditJob(request).run()
    info = probe(out)
    assert report["frames"] == 10 and info.frame_count == 10
    assert info.height == 844 and info.width == 844 * 3  # source | driver crop | result


def test_crop_none_rejects_non_square_footage(tiny_weights, tmp_path):
    request = EditRequest(source=media("talk_landscape_1280x720.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(tmp_path / "x.mp4"), weights=tiny_weights, crop="none")
    with pytest.raises(InputError, match="square"):
        EditJob(request).run()
    assert not (tmp_path / "x.mp4").exists()


def test_driver_at_another_frame_rate_is_resampled(tiny_weights, tmp_path):
    """A 30 fps driver under a 25 fps source: the output keeps the source's timeline."""
    out = tmp_path / "resampled.mp4"
    request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("talk_landscape_1280x720.mp4"), output=str(out), weights=tiny_weights, duration=2.0, driver_end="stop")
    report = EditJob(request).run()
    assert report["frames"] == 50 and probe(out).fps == 25


def test_driver_end_policies(tiny_weights, tmp_path):
    short = tmp_path / "short.mp4"
    ffmpeg("-i", str(media("dpe_driver_crop.mp4")), "-t", "0.4", "-c:v", "libx264", str(short))
    counts = {}
    for policy in ("stop", "hold", "loop"):
        out = tmp_path / f"{policy}.mp4"
        request = EditRequest(source=media("dpe_source_crop.mp4"), driver=short, output=str(out), weights=tiny_weights, duration=1.0, driver_end=policy, crop="none")
        counts[policy] = EditJob(request).run()["frames"]
    assert counts == {"stop": 10, "hold": 25, "loop": 25}


def test_failure_mid_run_leaves_no_output(tiny_weights, tmp_path):
    out = tmp_path / "never.mp4"
    request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out), weights=tiny_weights, crop="none", batch_size=2)
    job = EditJob(request)
    from dpe_cli.engine import Engine

    job.engine = Engine.load(tiny_weights)
    calls = {"n": 0}
    real_render = job.engine.render

    def failing_render(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
        return real_render(*args, **kwargs)

    job.engine.render = failing_render
    with pytest.raises(KeyboardInterrupt):
        job.run()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["strength 0", "self-driven relative"])
def test_an_edit_that_changes_nothing_is_lossless(tiny_weights, tmp_path, how):
    """--strength 0, or the source driving itself with --relative, gives back the decoded
    source frames, face included (the change paste against the model's reconstruction)."""
    source = media("talk_full_590.mp4")
    options = {"strength": 0.0} if how == "strength 0" else {"relative": True}
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=source, output=str(out) + "/", weights=tiny_weights, duration=0.4, **options)
    report = EditJob(request).run()
    edited, original = read_all(out), list(FrameReader(source, duration=0.4))
    assert len(edited) == len(original) == report["frames"] == 10
    assert report["paste_method"] == "change" and report["paste_reference"] == "model"
    assert min(_psnr(a, b) for a, b in zip(edited, original)) >= 50


def test_replace_paste_is_one_option_away_and_changes_the_face(tiny_weights, tmp_path):
    source = media("talk_full_590.mp4")
    psnr = {}
    for method in ("change", "replace"):
        out = tmp_path / method
        request = EditRequest(source=source, driver=source, output=str(out) + "/", weights=tiny_weights, duration=0.2, relative=True, paste_method=method)
        report = EditJob(request).run()
        psnr[method] = np.mean([_psnr(a, b) for a, b in zip(read_all(out), FrameReader(source, duration=0.2))])
        assert report["paste_method"] == method
    assert psnr["replace"] < 40 < psnr["change"]  # the replace paste resamples the face through the model


def test_mouth_mask_keeps_the_eyes_of_the_source(tiny_weights, tmp_path):
    """Dubbing: with --mask mouth the eyes and brows stay the source's, bit for bit."""
    from dpe_cli.face import FaceMesh
    from dpe_cli.face.landmarks import LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE

    source = media("talk_full_844.mp4")
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=media("dpe_driver_crop.mp4"), output=str(out) + "/", weights=tiny_weights, duration=0.2, mask="mouth")
    report = EditJob(request).run()
    assert report["mask"] == "mouth"
    original = list(FrameReader(source, duration=0.2))
    with FaceMesh(static_image_mode=True) as mesh:
        points = mesh(original[0])[:, :2].round().astype(int)
    edited = read_all(out)[0].astype(int)
    eyes = points[list(LEFT_EYE + RIGHT_EYE + LEFT_BROW + RIGHT_BROW)]
    assert all((edited[y, x] == original[0][y, x]).all() for x, y in eyes)
    lips = points[list(LIPS)]
    assert np.mean([np.abs(edited[y, x] - original[0][y, x]).sum() for x, y in lips]) > 3


def test_edit_span_keeps_every_other_frame_and_fades(tiny_weights, tmp_path):
    """--edit-start/--edit-end: frames outside the span are the source's; inside, the edit
    fades in and out (no jump at the span's ends); the output keeps every frame."""
    source = media("talk_full_590.mp4")
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=media("dpe_driver_crop.mp4"), output=str(out) + "/", weights=tiny_weights,
                          duration=1.2, edit_start=0.2, edit_end=1.0, fade=0.2, mask="box")
    report = EditJob(request).run()
    edited, original = read_all(out), list(FrameReader(source, duration=1.2))
    assert len(edited) == len(original) == report["frames"] == 30
    change = [float(np.abs(a.astype(int) - b).mean()) for a, b in zip(edited, original)]
    assert all(c == 0 for c in change[:6]) and all(c == 0 for c in change[25:])  # before 0.2 s, from 1.0 s
    assert change[5 + 5] > 0 and report["frames_edited"] < 20
    assert change[6] < change[8] < change[12]  # fading in over 0.2 s (5 frames)
    assert change[24] < change[20]  # and out
    assert report["edit_span"] == [0.2, 1.0]


@pytest.mark.parametrize("options", [{"relative": True}, {"strength": 0.5}, {"smooth": 0.5}])
def test_bf16_works_with_every_motion_control(tiny_weights, tmp_path, options):
    out = tmp_path / "bf16.mp4"
    request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out), weights=tiny_weights,
                          duration=0.2, crop="none", precision="bf16", **options)
    assert EditJob(request).run()["frames"] == 5


def test_video_without_a_face_is_a_clear_error(tiny_weights, tmp_path):
    request = EditRequest(source=noise_video(tmp_path / "noface.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(tmp_path / "out.mp4"), weights=tiny_weights)
    with pytest.raises(NoFaceError, match="no face"):
        EditJob(request).run()
    assert not (tmp_path / "out.mp4").exists()


def test_existing_output_needs_overwrite(tiny_weights, tmp_path):
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"precious")
    request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out), weights=tiny_weights)
    with pytest.raises(OutputExistsError):
        EditJob(request).run()
    assert out.read_bytes() == b"precious"


@pytest.mark.slow
def test_full_size_official_weights_on_a_few_frames(official_checkpoint, tmp_path):
    out = tmp_path / "full.mp4"
    request = EditRequest(source=media("talk_full_844.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out), weights=official_checkpoint, duration=0.2, batch_size=2)
    report = EditJob(request).run()
    assert report["frames"] == 5 and probe(out).frame_count == 5


def test_every_run_says_which_model_it_loaded(tiny_weights, tmp_path):
    from dpe_cli.progress import Reporter

    class Notes(Reporter):
        def __init__(self):
            self.notes = []

        def note(self, message):
            self.notes.append(message)

    shipped = ROOT / "weights" / "dpe-synthetic-64.safetensors"
    for weights, demo in ((tiny_weights, False), (shipped, True)):
        notes = Notes()
        request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(tmp_path / f"{demo}.mp4"),
                              weights=weights, duration=0.2, crop="none")
        report = EditJob(request, notes).run()
        assert report["model"]["name"] == Path(weights).name and report["model"]["origin"] == "--weights"
        assert report["model"]["demo"] is demo and report["model"]["size"] == Path(weights).stat().st_size
        assert notes.notes[0].startswith(f"model: {Path(weights).name}")
        assert any("synthetic" in n for n in notes.notes) is demo


def test_pipeline_output_equals_model_edit_on_the_same_crops(tiny_weights, tmp_path):
    """The streamed pipeline renders exactly what ``DPE.edit`` gives for the same crops."""
    from dpe_cli import load_model
    from dpe_cli.images import from_model, to_model

    source, driver = media("dpe_source_crop.mp4"), media("dpe_driver_crop.mp4")
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=driver, output=str(out) + "/", weights=tiny_weights, duration=0.2, crop="none", paste=False, precision="fp32")
    EditJob(request).run()
    model = load_model(tiny_weights, device="cpu", dtype=torch.float32)
    with torch.inference_mode():
        expected = from_model(model.edit(to_model(_crop_frames(source, 64, duration=0.2)), to_model(_crop_frames(driver, 64, fps=25, duration=0.2))))
    got = read_all(out)
    assert len(got) == len(expected) == 5
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(got, expected))


def test_batch_size_does_not_change_the_frames(tiny_weights, tmp_path):
    """In float32 a batch changes only the order of sums; bf16 rounds the two modulation code
    paths differently, which a random model amplifies past one grey level."""
    frames = {}
    for batch_size in (1, 4):
        out = tmp_path / f"b{batch_size}"
        request = EditRequest(source=media("talk_full_590.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out) + "/", weights=tiny_weights,
                              duration=0.3, batch_size=batch_size, relative=True, smooth=0.3, precision="fp32")
        EditJob(request).run()
        frames[batch_size] = read_all(out)
    assert len(frames[1]) == len(frames[4]) == 8
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(frames[1], frames[4]))


def test_start_cuts_the_source_and_strength_0_keeps_it(tiny_weights, tmp_path):
    source = media("talk_full_590.mp4")
    out = tmp_path / "frames"
    request = EditRequest(source=source, driver=media("dpe_driver_crop.mp4"), output=str(out) + "/", weights=tiny_weights, start=0.4, duration=0.2, strength=0.0)
    report = EditJob(request).run()
    original = list(FrameReader(source))[10:15]
    got = read_all(out)
    assert report["frames"] == len(got) == 5 and all(np.array_equal(a, b) for a, b in zip(got, original))


def test_motion_controls_change_a_video_edit(tiny_weights, tmp_path):
    """--smooth, --strength and --relative each change what a video source is rendered with."""
    results = {}
    for name, options in {"plain": {}, "smooth": {"smooth": 0.8}, "strength": {"strength": 0.5}, "relative": {"relative": True}}.items():
        out = tmp_path / name
        request = EditRequest(source=media("dpe_source_crop.mp4"), driver=media("dpe_driver_crop.mp4"), output=str(out) + "/", weights=tiny_weights,
                              duration=0.3, crop="none", paste=False, **options)
        EditJob(request).run()
        results[name] = np.stack(read_all(out)).astype(int)
    for name in ("smooth", "strength", "relative"):
        assert np.abs(results[name] - results["plain"]).mean() > 0.02, name  # the random tiny model reacts weakly
    assert np.array_equal(results["smooth"][0], results["plain"][0])  # smoothing is causal: frame 0 is as driven


def test_side_by_side_shows_the_driver_cropped_at_the_panel_height(tiny_weights, tmp_path):
    """The driver panel is the driver's frame cut with its box at the output's height, not the
    model's 64-px input enlarged."""
    import cv2

    from dpe_cli.edit.framing import find_box
    from dpe_cli.face.crop import crop
    from dpe_cli.synth import write_clip
    from helpers import read_frames

    write_clip(tmp_path / "src.mp4", 5, n_frames=3, size=(320, 240), kind="full")
    write_clip(tmp_path / "drv.mp4", 6, n_frames=3, size=(320, 240), kind="full")
    out = tmp_path / "sbs"
    EditJob(EditRequest(source=tmp_path / "src.mp4", driver=tmp_path / "drv.mp4", output=f"{out}/", weights=tiny_weights,
                        side_by_side=True, shots="none")).run()
    first = cv2.cvtColor(cv2.imread(str(sorted(out.glob("*.png"))[0])), cv2.COLOR_BGR2RGB)
    assert first.shape[0] == 240 and first.shape[1] == 320 + 240 + 320
    box = find_box(probe(tmp_path / "drv.mp4"), duration=None).box
    driver_frame = read_frames(tmp_path / "drv.mp4", 1)[0]
    panel = first[:, 320 : 320 + 240]
    assert np.array_equal(panel, crop(driver_frame, box, 240))
    enlarged = cv2.resize(crop(driver_frame, box, 64), (240, 240), interpolation=cv2.INTER_AREA)
    assert not np.array_equal(panel, enlarged)
