"""The renderer's public names under their old module, for code that imports them from here.

The renderer is split by layer: :mod:`~dpe_cli.synth.params` (what is drawn),
:mod:`~dpe_cli.synth.geometry` (meshes), :mod:`~dpe_cli.synth.raster` (rasteriser),
:mod:`~dpe_cli.synth.paint` (surfaces and light) and :mod:`~dpe_cli.synth.render` (images).
"""

from __future__ import annotations

from dpe_cli.synth.geometry import rotation
from dpe_cli.synth.params import HAIR_STYLES, Expression, Identity, Pose, Scene
from dpe_cli.synth.render import CROP_UNIT, FRAME_UNIT, Rendering, render, render_crop, render_frame

__all__ = [
    "CROP_UNIT",
    "FRAME_UNIT",
    "HAIR_STYLES",
    "Expression",
    "Identity",
    "Pose",
    "Rendering",
    "Scene",
    "render",
    "render_crop",
    "render_frame",
    "rotation",
]
