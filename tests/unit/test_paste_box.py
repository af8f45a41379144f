"""The paste-back's options and its box mask, on synthetic frames (no face needed)."""

from __future__ import annotations

import numpy as np
import pytest

from dpe_cli.errors import InputError
from dpe_cli.face import CropBox, Paster
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
