"""Procedural synthetic talking faces with exact pose and expression labels.

Used for the example videos, for training small models and factor regressors, and for
measuring how well pose and expression are disentangled: every frame's head pose
(yaw/pitch/roll, translation, scale) and expression (mouth opening, smile, blink, brow raise)
is known, and any single factor can be changed while the others stay fixed.

    from dpe_cli.synth import Identity, Pose, Expression, render_crop
    img = render_crop(Identity.from_seed(3), Pose(yaw=20), Expression(smile=0.8), 256)
"""

from __future__ import annotations

from dpe_cli.synth.dataset import (
    Pair,
    frame_size,
    labels_path,
    read_labels,
    render_clip,
    render_pair,
    write_clip,
    write_dataset,
)
from dpe_cli.synth.motion import MOTIONS, POSE_LIMITS, Motion, sample_keyframes, sample_motion
from dpe_cli.synth.params import Expression, Identity, Pose, Scene
from dpe_cli.synth.render import Rendering, render, render_crop, render_frame

__all__ = [
    "MOTIONS",
    "POSE_LIMITS",
    "Expression",
    "Identity",
    "Motion",
    "Pair",
    "Pose",
    "Rendering",
    "Scene",
    "frame_size",
    "labels_path",
    "read_labels",
    "render",
    "render_clip",
    "render_crop",
    "render_frame",
    "render_pair",
    "sample_keyframes",
    "sample_motion",
    "write_clip",
    "write_dataset",
]
