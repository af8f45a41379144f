"""The fixed words and defaults that options take, in one torch-free module.

The library checks its inputs against these and the command line offers them as choices
(``--help`` lists them, shell completion suggests them); keeping them free of torch, OpenCV
and mediapipe lets ``dpe --help`` and completion answer without loading any of those.
"""

from __future__ import annotations

from typing import Literal, get_args

# Files taken as videos (batch folders, training data) and as frames (training frame folders).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Editing (dpe_cli.edit.pipeline).
AUDIO_CHOICES = ("source", "driver", "none")
DRIVER_END_CHOICES = ("loop", "hold", "stop")
CROP_CHOICES = ("auto", "none")
PRECISIONS = ("fp32", "bf16", "fp16")
# Inference also takes "auto": bf16 where the hardware multiplies it natively, else float32.
RUN_PRECISIONS = ("auto", *PRECISIONS)
REFERENCES = ("model", "source")
# Real footage: shot detection, and which people of a shot are edited.
SHOT_CHOICES = ("auto", "none")
FACES_CHOICES = ("one", "all")
# The editing commands (dpe_cli.edit.commands), which a batch job names.
EDIT_COMMANDS = ("edit-expression", "edit-pose", "reenact")
# Devices: these three, or a numbered GPU (cuda:N).
DEVICES = ("auto", "cpu", "cuda")

# The model's edits (dpe_cli.model).
Mode = Literal["expression", "pose", "both"]
MODES: tuple[str, ...] = get_args(Mode)

# Paste-back (dpe_cli.face): how the edit is pasted and the regions of its mask.
PASTE_METHODS = ("change", "change-fast", "replace")
REGIONS = ("face", "mouth", "eyes", "box")
# Crop box side relative to the face (see dpe_cli.face.crop for how it was measured).
DEFAULT_BOX_SCALE = 1.85
# Mask edge softness: Gaussian sigma as a fraction of the box (see dpe_cli.face.regions).
DEFAULT_FEATHER = 0.03

# Training (dpe_cli.train) and synthetic data (dpe_cli.synth).
OBJECTIVES = ("cycle", "reenactment", "expression", "pose")
CACHE_FORMATS = ("jpg", "png")
SYNTH_KINDS = ("crop", "full")
SYNTH_MOTIONS = ("smooth", "keyframes")
