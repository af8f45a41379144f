"""``dpe reenact --mode expression``: the animated face pasted into the full photo, the
portrait framed and masked once, and relative driving from a driver neutral of the user's
choosing (a time of the driver, or a still of the driver's actor)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dpe_cli.edit import run_edit
from dpe_cli.edit.commands import build_request
from dpe_cli.errors import InputError
from dpe_cli.face import CropBox
from dpe_cli.face import paste as paste_module
from dpe_cli.progress import Reporter
from dpe_cli.synth import Expression, Identity, Pose, render_frame, write_clip
from helpers import assert_only_box_changed, read_frames

PHOTO_SIZE = (361, 451)  # odd on both sides, portrait orientation
FRAMES = 8


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("portrait")
    photo = render_frame(Identity.from_seed(5), Pose(), Expression(), PHOTO_SIZE)
    cv2.imwrite(str(folder / "photo.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    write_clip(folder / "driver.mp4", 7, n_frames=FRAMES, size=96, kind="crop")
    return {"folder": folder, "photo": photo, "photo_path": folder / "photo.png", "driver": folder / "driver.mp4"}


def _reenact(inputs: dict, tiny_weights: Path, out: Path, **options) -> tuple[dict, list[np.ndarray]]:
    request = build_request("reenact", inputs["photo_path"], inputs["driver"], f"{out}/", weights=tiny_weights, mode="expression", **options)
    report = run_edit(request)
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(out.glob("*.png"))]
    return report, frames


def test_expression_reenact_writes_the_full_photo_changed_only_in_the_face(inputs, tiny_weights, tmp_path):
    report, frames = _reenact(inputs, tiny_weights, tmp_path / "full")
    photo = inputs["photo"]
    assert report["paste"] is True and report["frames"] == len(frames) == FRAMES
    assert all(f.shape == photo.shape for f in frames)  # 361x451, odd sizes kept
    face = CropBox(*report["box"][:2], report["box"][2])
    for frame in frames:
        assert_only_box_changed(photo, frame, face)  # hair, shoulders, background: the photo's own pixels
    assert any(not np.array_equal(f, photo) for f in frames)  # the face is animated


def test_strength_zero_gives_the_photo_bit_for_bit(inputs, tiny_weights, tmp_path):
    _, frames = _reenact(inputs, tiny_weights, tmp_path / "still", strength=0.0)
    assert len(frames) == FRAMES
    assert all(np.array_equal(f, inputs["photo"]) for f in frames)


def test_output_crop_keeps_the_model_size_crop(inputs, tiny_weights, tmp_path):
    report, frames = _reenact(inputs, tiny_weights, tmp_path / "crop", output_crop=True)
    assert report["paste"] is False and {f.shape for f in frames} == {(64, 64, 3)}


def test_pose_and_both_modes_write_the_crop(inputs, tiny_weights, tmp_path):
    for mode in ("pose", "both"):
        request = build_request("reenact", inputs["photo_path"], inputs["driver"], f"{tmp_path / mode}/", weights=tiny_weights, mode=mode)
        assert request.paste is False
    with pytest.raises(InputError, match="does not take output_crop"):
        build_request("edit-pose", inputs["photo_path"], inputs["driver"], "o.mp4", output_crop=True)


def test_still_portrait_is_masked_once(inputs, tiny_weights, tmp_path, monkeypatch):
    calls = []
    real = paste_module.Paster._mask

    def counting(self, frame):
        calls.append(1)
        return real(self, frame)

    monkeypatch.setattr(paste_module.Paster, "_mask", counting)
    _reenact(inputs, tiny_weights, tmp_path / "once")
    assert len(calls) == 1


def test_relative_to_a_time_makes_that_driver_frame_the_photo(inputs, tiny_weights, tmp_path):
    """Driven relative to the driver's frame k, output frame k is driven by no change at all:
    the photo, bit for bit, while other frames move."""
    k = 3
    report, frames = _reenact(inputs, tiny_weights, tmp_path / "rel", relative_to=k / 25.0)
    assert report["relative_to"] == pytest.approx(k / 25.0)
    assert np.array_equal(frames[k], inputs["photo"])
    assert not np.array_equal(frames[0], inputs["photo"])


def test_relative_to_an_image_of_the_driver(inputs, tiny_weights, tmp_path):
    """A still of the driver's actor as the neutral: with square crops (--crop none) the still
    that equals driver frame k drives frame k with no change."""
    k = 5
    still = read_frames(inputs["driver"], k + 1)[k]
    neutral = tmp_path / "neutral.png"
    cv2.imwrite(str(neutral), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
    photo_crop = tmp_path / "face.png"
    cv2.imwrite(str(photo_crop), cv2.cvtColor(read_frames(inputs["driver"], 1)[0], cv2.COLOR_RGB2BGR))
    request = build_request("reenact", photo_crop, inputs["driver"], f"{tmp_path / 'out'}/", weights=tiny_weights, mode="expression",
                            crop="none", relative_to=str(neutral))
    assert request.relative and request.relative_to == neutral
    run_edit(request)
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((tmp_path / "out").glob("*.png"))]
    own = cv2.cvtColor(cv2.imread(str(photo_crop)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(frames[k], own)
    assert not np.array_equal(frames[0], own)


def test_relative_to_is_checked(inputs, tiny_weights, tmp_path):
    with pytest.raises(InputError, match="neither a time in seconds nor an image"):
        build_request("reenact", inputs["photo_path"], inputs["driver"], "o.mp4", relative_to="nowhere.png")
    with pytest.raises(InputError, match="relative_to"):
        build_request("reenact", inputs["photo_path"], inputs["driver"], "o.mp4", relative_to=-1)
    request = build_request("reenact", inputs["photo_path"], inputs["driver"], f"{tmp_path / 'late'}/", weights=tiny_weights, relative_to=99.0)
    with pytest.raises(InputError, match="past the end of the driver"):
        run_edit(request)
    assert not (tmp_path / "late").exists()
    request = build_request("reenact", inputs["photo_path"], inputs["driver"], f"{tmp_path / 'vid'}/", weights=tiny_weights,
                            relative_to=str(inputs["driver"]))
    with pytest.raises(InputError, match="is a video"):
        run_edit(request)


class _Notes(Reporter):
    """A reporter that keeps its notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


def test_paste_options_on_a_crop_output_are_reported_not_dropped_silently(inputs, tiny_weights, tmp_path):
    request = build_request("reenact", inputs["photo_path"], inputs["driver"], f"{tmp_path / 'pose'}/", weights=tiny_weights,
                            mode="pose", mask="mouth", paste="replace")
    assert request.unused_paste_options() == ["paste_method", "mask"]
    reporter = _Notes()
    run_edit(request, reporter)
    assert any("--paste, --mask unused" in n and "pose edit is not pasted back" in n for n in reporter.notes), reporter.notes
    # Defaults, or a paste that happens, say nothing.
    assert build_request("reenact", inputs["photo_path"], inputs["driver"], "o.mp4", mode="pose").unused_paste_options() == []
    assert build_request("reenact", inputs["photo_path"], inputs["driver"], "o.mp4", mode="expression", mask="mouth").unused_paste_options() == []
    assert build_request("reenact", inputs["photo_path"], inputs["driver"], "o.mp4", mode="expression", output_crop=True,
                         feather=0.05).unused_paste_options() == ["feather"]
