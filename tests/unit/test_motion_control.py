"""Motion controls on motion vectors: strength, relative driving, smoothing, per-frame fades."""

from __future__ import annotations

import pytest
import torch

from dpe_cli.edit import MotionControl
from dpe_cli.errors import InputError


def test_motion_controls():
    driver = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 0.0]])
    source = torch.tensor([[10.0, 10.0]])
    assert torch.equal(MotionControl()(driver), driver)  # the reference behaviour, bit for bit
    torch.testing.assert_close(MotionControl(strength=0.0)(driver, source), source.expand(3, -1))
    torch.testing.assert_close(MotionControl(strength=0.5)(driver, source)[0], torch.tensor([5.5, 5.0]))
    relative = MotionControl(relative=True)(driver, source)
    torch.testing.assert_close(relative, torch.tensor([[10.0, 10.0], [12.0, 10.0], [14.0, 10.0]]))
    smooth = MotionControl(smooth=0.5)(driver)
    torch.testing.assert_close(smooth[:, 0], torch.tensor([1.0, 2.0, 3.5]))
    with pytest.raises(InputError):
        MotionControl(smooth=1.0)
    with pytest.raises(InputError):
        MotionControl(strength=float("nan"))


def test_relative_driving_of_a_video_by_itself_is_its_own_motion():
    """Relative driving starts from the source's first edited frame, so a video driven by
    itself is rendered with its own vectors (the identity edit), at any strength."""
    own = torch.tensor([[1.0, 2.0], [4.0, -1.0], [0.5, 3.0]])
    for strength in (1.0, 0.5):
        control = MotionControl(strength=strength, relative=True)
        torch.testing.assert_close(control(own[:2], own[:2]), own[:2])
        torch.testing.assert_close(control(own[2:], own[2:]), own[2:])  # the anchor is kept across batches


def test_per_frame_weights_fade_the_edit():
    driver = torch.tensor([[2.0], [2.0], [2.0]])
    source = torch.tensor([[0.0], [0.0], [0.0]])
    faded = MotionControl()(driver, source, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(faded[:, 0], torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError):
        MotionControl()(driver, None, torch.tensor([0.0, 0.5, 1.0]))


def test_relative_driving_from_a_chosen_neutral():
    """With a driver neutral of the user's choosing, the motion is measured from it, not from the
    driver's first frame: the frame equal to the neutral gets the source's own vector."""
    driver = torch.tensor([[1.0, 0.0], [3.0, 0.0], [5.0, 0.0]])
    source = torch.tensor([[10.0, 10.0]])
    control = MotionControl(relative=True, reference=torch.tensor([3.0, 0.0]))
    torch.testing.assert_close(control(driver, source), torch.tensor([[8.0, 10.0], [10.0, 10.0], [12.0, 10.0]]))
    later = control(torch.tensor([[3.0, 1.0]]), torch.tensor([[0.0, 0.0]]))  # the anchor stays the first source's
    torch.testing.assert_close(later, torch.tensor([[10.0, 11.0]]))
