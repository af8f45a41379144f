"""Every numeric option's range, in one table that the CLI, the batch manifest reader and the
Python API all check against, before any work starts.

A value outside its range (NaN and infinity included) is refused with one line naming the
option and the range. The ranges are what the work can use: a wider value either does nothing
more (a crop box beyond 4x the face only pads) or only costs memory and time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dpe_cli.errors import InputError


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` (``low < value`` when ``open_low``; ``value < high`` when
    ``open_high``); ``integer`` options take whole numbers only. ``hint`` says what a value means."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False
    integer: bool = False
    hint: str = ""

    def admits(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not float(value).is_integer():
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def describe(self) -> str:
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        kind = "a whole number" if self.integer else "a value"
        text = f"use {kind} in {left}{self.low:g}, {self.high:g}{right}"
        return f"{text} ({self.hint})" if self.hint else text


_COUNT = 1e9  # steps, frames: far beyond any real run, still refusing a typo's 1e300
_LOSS = Bound(0, 1e4, hint="0 = off; the paper's largest weight is 20")

BOUNDS: dict[str, Bound] = {
    # editing (dpe edit-*, reenact, preview, batch manifests)
    "start": Bound(0, 1e6, hint="seconds"),
    "duration": Bound(0, 1e6, open_low=True, hint="seconds"),
    "edit_start": Bound(0, 1e6, hint="seconds of the source"),
    "edit_end": Bound(0, 1e6, open_low=True, hint="seconds of the source"),
    "fade": Bound(0, 10, hint="seconds"),
    "relative_to": Bound(0, 1e6, hint="seconds of the driver"),
    "box_scale": Bound(1, 4, hint="default 1.8; 4x the face already shows the shoulders"),
    "feather": Bound(0, 0.1, open_low=True, hint="share of the box side"),
    "strength": Bound(-2, 3, hint="1 = as driven"),
    "smooth": Bound(0, 1, open_high=True, hint="0 = off"),
    "batch_size": Bound(1, 1024, integer=True, hint="frames per model call"),
    "crf": Bound(0, 51, integer=True, hint="18 is near lossless"),
    "face_index": Bound(0, 1000, integer=True, hint="0 = the largest face"),
    "driver_face_index": Bound(0, 1000, integer=True, hint="0 = the largest face"),
    # evaluation and data (dpe eval, prepare-data, train's cache)
    "batch": Bound(1, 1024, integer=True, hint="frames per model call"),
    "max_frames": Bound(1, _COUNT, integer=True, hint="frames per clip or video"),
    "detect_every": Bound(1, 1e4, integer=True, hint="1 detects on every frame"),
    # training (dpe train; its batch_size is keyed apart from the edit's)
    "lr": Bound(0, 1, open_low=True, hint="e.g. 0.002"),
    "train_batch_size": Bound(1, 1e6, integer=True, hint="images per step, over all ranks"),
    "steps": Bound(1, _COUNT, integer=True),
    "save_every": Bound(1, _COUNT, integer=True),
    "log_every": Bound(1, _COUNT, integer=True),
    "sample_every": Bound(1, _COUNT, integer=True),
    "reconstruction_weight": _LOSS,
    "perceptual_weight": _LOSS,
    "self_weight": _LOSS,
    "expression_weight": _LOSS,
    "pose_weight": _LOSS,
    "motion_weight": _LOSS,
    "gan_weight": _LOSS,
    # synthetic data (dpe synth)
    "fps": Bound(1, 240, hint="frames per second, e.g. 25"),
    "frames": Bound(1, 1e6, integer=True),
    "identities": Bound(1, 1e5, integer=True),
    "clips": Bound(1, 1e4, integer=True),
    "workers": Bound(1, 256, integer=True),
}


def check(name: str, value: float | None, label: str | None = None) -> None:
    """Raise InputError unless ``value`` (None: not given) is within the bound of option
    ``name`` (a request's field); ``label`` is the field's own name where the table keys it
    apart (training's ``batch_size``)."""
    if value is None:
        return
    bound = BOUNDS[name]
    if not bound.admits(value):
        raise InputError(f"`{label or name}` = {value} is out of range", bound.describe())


def check_all(values: dict[str, float | None]) -> None:
    """:func:`check` each ``name: value`` in order; the first one out of range is refused."""
    for name, value in values.items():
        check(name, value)
