"""The paste-back's options and its box mask, on synthetic frames (no face needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dpe_cli.errors import InputError
from dpe_cli.face import CropBox, Paster
from dpe_cli.face.crop import crop
from helpers import assert_only_box_changed, xy_pattern


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


def _textured_disk(side: int, centre_x: int) -> np.ndarray:
    """A grey frame with a bright disk whose inside has broad shading (what the model's size
    shows) and fine stripes (full-resolution detail)."""
    yy, xx = np.mgrid[:side, :side]
    u, v = xx - centre_x, yy - side // 2
    frame = np.full((side, side, 3), 90, np.uint8)
    inside = u**2 + v**2 < (side // 5) ** 2
    texture = 160 + 45 * np.sin(u * 0.06) * np.cos(v * 0.05) + 25 * np.sign(np.sin(u * 0.9 + v * 0.3))
    frame[inside] = texture[inside, None].astype(np.uint8)
    return frame


def test_change_paste_moves_the_frames_detail_along_with_the_edit():
    """An edit that moves a detailed shape (lips that part, a lid that closes): ``change`` moves
    the frame's own sharp detail to the new place, ``change-fast`` can only show the edit's soft
    picture there, ``replace`` everywhere; an edit that changes nothing is lossless for all."""
    side = 480
    source, truth = _textured_disk(side, 230), _textured_disk(side, 250)
    box = CropBox(0, 0, side)
    edited, reference = crop(truth, box, 64), crop(source, box, 64)
    inner = np.s_[150:330, 150:330]
    results = {}
    for method in ("change", "change-fast", "replace"):
        with Paster(box, side, side, mask="box", method=method) as paster:
            if method != "replace":
                assert np.array_equal(paster.paste(source, reference, reference), source)
            out = paster.paste(source, edited, reference)
        error = (out[inner].astype(float) - truth[inner]) ** 2
        results[method] = 10 * np.log10(255**2 / error.mean())
    # 2.3 dB here (2.6 with the flow preset's five refinement steps instead of two, which the
    # face benchmarks do not tell apart)
    assert results["change"] > results["change-fast"] + 2.0, results
    assert results["change-fast"] > results["replace"], results


def test_a_still_pastes_the_same_edit_the_same_way_every_frame():
    """A still's box, views and mask are kept between frames: nothing kept may change, so the
    same edit pastes identically each time, and as a paster made for one video frame does."""
    side = 480
    source, truth = _textured_disk(side, 230), _textured_disk(side, 250)
    box = CropBox(0, 0, side)
    edited, reference = crop(truth, box, 64), crop(source, box, 64)
    with Paster(box, side, side, mask="box", still=True) as still, Paster(box, side, side, mask="box") as video:
        first = still.paste(source, edited, reference)
        assert np.array_equal(still.paste(source, edited, reference), first)
        assert np.array_equal(video.paste(source, edited, reference), first)
    assert not np.array_equal(first, source)


@pytest.mark.parametrize("side,size", [(863, 256), (500, 256), (745, 64), (200, 256)])
def test_the_edit_size_view_of_any_rectangle_is_that_of_the_whole(side, size):
    """The paste views only the rectangles it changed at the model's size; each must be what
    viewing the whole box gives there (a difference that is 0 elsewhere included): the same
    sampling points, within the 1/32-pixel steps in which warpAffine rounds them (a large part
    is cut from the whole resized), where a shift by one box pixel differs by several levels."""
    import cv2

    from dpe_cli.face.paste import _seen_small, _small_span

    rng = np.random.default_rng(side)
    # Detail as a photo has it: noise smoothed over a few pixels, stretched to 0-255.
    image = cv2.GaussianBlur(rng.uniform(0, 255, (side, side, 3)).astype(np.float32), (0, 0), 4.0)
    image = (image - image.min()) * (255 / np.ptp(image))
    whole = _seen_small(image, side, size, (0, size), (0, size))
    rows, cols = (size // 5, size // 2), (size // 3, size - 2)
    part = _seen_small(image, side, size, rows, cols)
    np.testing.assert_allclose(part, whole[rows[0] : rows[1], cols[0] : cols[1]], atol=1.0)
    shifted = _seen_small(np.roll(image, 1, axis=1), side, size, rows, cols)
    assert np.abs(shifted - part).max() > 3.0  # the tolerance would catch a shift
    y0, y1, x0, x1 = side // 4, side // 2, side // 3, 2 * side // 3
    difference = np.zeros_like(image)
    # As a moved box's is: 0 at the edges of its rectangle (where the flow stops moving pixels).
    window = np.outer(np.sin(np.linspace(0, np.pi, y1 - y0)), np.sin(np.linspace(0, np.pi, x1 - x0)))
    difference[y0:y1, x0:x1] = (image[y0:y1, x0:x1] - 128) * window[..., None]
    rows, cols = _small_span(y0, y1, side, size, 1), _small_span(x0, x1, side, size, 1)
    part = _seen_small(difference[y0:y1, x0:x1].copy(), side, size, rows, cols, (y0, x0), zero_outside=True)
    seen = _seen_small(difference, side, size, (0, size), (0, size))
    np.testing.assert_allclose(part, seen[rows[0] : rows[1], cols[0] : cols[1]], atol=1.0)
    seen[rows[0] : rows[1], cols[0] : cols[1]] = 0
    assert not seen.any()  # nothing of the difference reaches outside the span
