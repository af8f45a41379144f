"""What one editing run is asked to do: every option, checked before anything loads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from dpe_cli.bounds import check_all
from dpe_cli.choices import AUDIO_CHOICES, CROP_CHOICES, DRIVER_END_CHOICES, FACES_CHOICES, REFERENCES, RUN_PRECISIONS, SHOT_CHOICES
from dpe_cli.edit.motion import MotionControl
from dpe_cli.errors import InputError
from dpe_cli.face.crop import DEFAULT_BOX_SCALE
from dpe_cli.face.paste import DEFAULT_FEATHER, PASTE_METHODS
from dpe_cli.face.regions import parse_regions
from dpe_cli.model import Mode, check_mode

MAX_BOX_FRAMES = 3  # a --box side beyond 3x the frame would only pad (and allocate) emptiness

# The options that only shape the paste into the full frames.
PASTE_OPTIONS = ("paste_method", "paste_reference", "mask", "feather")


@dataclass
class EditRequest:
    """Everything one editing run needs. ``paste`` puts the edited face back into the full
    frames (only sound when the pose is kept, i.e. expression edits); otherwise the output
    is the face crop.

    Paste-back: ``paste_method`` "change" keeps the frame's own pixels, moves them where the
    edit moves the face, and adds the edit's change against ``paste_reference`` ("model": the
    model's reconstruction of the source, one more generator pass per frame, exact where the
    edit changes nothing; "source": the source crop, faster); "change-fast" does the same
    without moving the detail (faster, softer where the face moves); "replace" pastes the
    model's picture. ``mask`` names the face regions
    pasted (face, mouth, eyes, box, or several joined by commas).

    ``edit_start``/``edit_end`` (seconds of the source) edit only that span, fading the
    strength in and out over ``fade`` seconds at its ends; every other frame is the source's.
    ``start``/``duration`` instead cut the output. ``face_index`` picks the source's face,
    ``driver_face_index`` the driver's (0 = the largest). ``portrait`` (reenact) requires the
    source to be a still image; its expression edit is pasted into the full photo unless
    ``output_crop``.

    ``relative_to`` (implies ``relative``) is the driver's neutral that relative driving
    measures the driver's motion from: a time in seconds of the driver, or a still image of the
    driver's actor; None: the driver's first frame.
    """

    source: Path
    driver: Path
    output: str
    mode: Mode = "expression"
    paste: bool | None = None  # None: pasted back exactly when the pose is kept (expression edits)
    weights: Path | None = None
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 where the hardware computes it, else fp32
    batch_size: int | None = None  # None: 1 on a CPU (larger batches are slower per frame there), 8 on CUDA
    audio: str = "source"
    driver_end: str = "loop"
    crf: int = 18
    side_by_side: bool = False
    overwrite: bool = False
    start: float = 0.0
    duration: float | None = None
    strength: float = 1.0
    relative: bool = False
    relative_to: str | float | Path | None = None  # parsed to float seconds or a Path
    smooth: float = 0.0
    crop: str = "auto"
    box: str | None = None
    box_scale: float = DEFAULT_BOX_SCALE
    face_index: int = 0
    driver_face_index: int = 0
    portrait: bool = False
    output_crop: bool = False
    mask: str = "face"
    feather: float = DEFAULT_FEATHER
    paste_method: str = "change"
    paste_reference: str = "model"
    edit_start: float | None = None
    edit_end: float | None = None
    fade: float = 0.25
    shots: str = "auto"
    faces: str = "one"
    person: Path | None = None
    motion: MotionControl = field(init=False)

    def __post_init__(self) -> None:
        self.source, self.driver = Path(self.source), Path(self.driver)
        self.output = str(self.output)
        check_mode(self.mode)
        for name, choices in (
            ("audio", AUDIO_CHOICES), ("driver_end", DRIVER_END_CHOICES), ("crop", CROP_CHOICES), ("precision", RUN_PRECISIONS),
            ("paste_method", PASTE_METHODS), ("paste_reference", REFERENCES), ("shots", SHOT_CHOICES), ("faces", FACES_CHOICES),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise InputError(f"`{name}` {value!r} is not valid", f"use one of: {', '.join(choices)}")
        check_all({
            "start": self.start, "duration": self.duration, "edit_start": self.edit_start, "edit_end": self.edit_end,
            "fade": self.fade, "box_scale": self.box_scale, "feather": self.feather, "batch_size": self.batch_size,
            "crf": self.crf, "face_index": self.face_index, "driver_face_index": self.driver_face_index,
        })  # fmt: skip
        if self.edit_start is not None and self.edit_end is not None and self.edit_end <= self.edit_start:
            raise InputError(f"the edited span {self.edit_start}..{self.edit_end} s is empty or negative", "give 0 <= `edit_start` < `edit_end`")
        parse_regions(self.mask)
        if self.box is not None and self.crop == "none":
            raise InputError("`box` and `crop` none contradict each other", "give only one of them")
        if self.person is not None:
            self.person = Path(self.person)
            if not self.person.is_file():
                raise InputError(f"`person` {self.person}: photo not found", "give a photo of the person to edit")
        self._check_relative_to()
        if self.output_crop and self.paste:
            raise InputError("the output is either the face crop or the pasted frames", "drop `output_crop`, or the paste")
        if self.paste is None:
            self.paste = self.mode == "expression" and not self.output_crop
        elif self.paste and self.mode != "expression":
            raise InputError(f"a {self.mode} edit cannot be pasted back", "a new head pose no longer lines up with the frame; the output is the face crop")
        self._check_casting()
        self.motion = self.new_motion()

    def _check_relative_to(self) -> None:
        """``relative_to`` as seconds (a number, or text that reads as one) or an existing file."""
        value = self.relative_to
        if value is None:
            return
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = Path(value)
        if isinstance(value, Path):
            if not value.expanduser().is_file():
                raise InputError(f"`relative_to` {value}: neither a time in seconds nor an image file", "give the driver's neutral as seconds (2.5) or a still image of the driver's actor")
            value = value.expanduser()
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            check_all({"relative_to": value})
        else:
            raise InputError(f"`relative_to` {value!r} is not a time or an image", "give seconds (2.5) or a path")
        self.relative_to = value
        self.relative = True

    def _check_casting(self) -> None:
        """Who is edited: the per-shot choices need shot detection and a detected face."""
        if self.faces == "all" and self.person is not None:
            raise InputError("`faces` all and `person` contradict each other", "give only one of them")
        if (self.faces == "all" or self.person is not None) and (self.box is not None or self.crop == "none"):
            raise InputError("`faces` all and `person` pick faces that are detected", "drop `box` / `crop` none")
        if (self.faces == "all" or self.person is not None) and self.shots == "none":
            raise InputError("`faces` all and `person` find people shot by shot; `shots` none frames one face", "drop `shots` none")
        if self.faces == "all" and self.paste is False:
            raise InputError("`faces` all needs the edits pasted into the frames", "use `dpe edit-expression`, which pastes back")

    def unused_paste_options(self) -> list[str]:
        """The paste-back options set away from their defaults although nothing is pasted back
        (the output is the face crop), so that the run says so instead of ignoring them silently."""
        if self.paste:
            return []
        defaults = {f.name: f.default for f in fields(self) if f.name in PASTE_OPTIONS}
        return [name for name in PASTE_OPTIONS if getattr(self, name) != defaults[name]]

    @property
    def per_shot(self) -> bool:
        """Whether the source video is framed shot by shot and person by person."""
        return self.shots == "auto" and self.crop != "none" and self.box is None

    def new_motion(self) -> MotionControl:
        """A fresh motion control (its relative anchor and smoothing state start over): one per
        edited person, so one person's motion never leaks into another's."""
        return MotionControl(self.strength, self.relative, self.smooth)

    def span_weight(self, t: float) -> float | None:
        """How much of the edit the frame at ``t`` (seconds of the source) gets: None outside
        the edited span, else a weight in [0, 1] that ramps linearly over ``fade`` seconds at
        the span's ends (1 everywhere without a span)."""
        begin = self.edit_start if self.edit_start is not None else -math.inf
        end = self.edit_end if self.edit_end is not None else math.inf
        if not begin <= t < end:
            return None
        if self.fade == 0 or (math.isinf(begin) and math.isinf(end)):
            return 1.0
        return min(1.0, (t - begin) / self.fade, (end - t) / self.fade)
