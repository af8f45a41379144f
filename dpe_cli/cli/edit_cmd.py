"""``dpe edit-expression``, ``dpe edit-pose`` and ``dpe reenact``: thin wrappers over
:mod:`dpe_cli.edit`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from dpe_cli.choices import (
    AUDIO_CHOICES,
    CROP_CHOICES,
    DEFAULT_BOX_SCALE,
    DEFAULT_FEATHER,
    DRIVER_END_CHOICES,
    FACES_CHOICES,
    MODES,
    PASTE_METHODS,
    RUN_PRECISIONS,
    REFERENCES,
    REGIONS,
    SHOT_CHOICES,
)
from dpe_cli.cli.common import (
    DebugOption,
    DeviceOption,
    JsonOption,
    QuietOption,
    WeightsOption,
    complete_regions,
    print_json,
    print_result,
    stderr,
)

Output = Annotated[
    str | None,
    typer.Option("--output", "-o", help="Output video (.mp4/.mov/.mkv), or a folder/ for a lossless PNG sequence. Default: SOURCE-<mode>.mp4 here."),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", "-b", min=1, max=256, help="Frames per model call. Default: 1 on a CPU (larger batches are slower per frame there), 8 on CUDA.", show_default=False)]
Precision = Annotated[Literal[RUN_PRECISIONS], typer.Option("--precision", help="auto: bf16 where the hardware computes it (CPUs with AVX-512 BF16 or AMX, GPUs with bf16; about 2x faster) when the model draws a check face within 45 dB of fp32, else fp32; or fp32, bf16, fp16 (CUDA).")]
Audio = Annotated[Literal[AUDIO_CHOICES] | None, typer.Option("--audio", help="Audio track. Default: source for edits, driver for reenact.", show_default=False)]
DriverEnd = Annotated[Literal[DRIVER_END_CHOICES], typer.Option("--driver-end", help="When the driver is shorter than the source: loop it, hold its last frame, or stop.")]
Crf = Annotated[int, typer.Option("--crf", min=0, max=51, help="H.264 quality (lower is better; 18 is near lossless).")]
SideBySide = Annotated[bool, typer.Option("--side-by-side", help="Write source, driver and result next to each other.")]
Start = Annotated[float, typer.Option("--start", min=0.0, help="Edit from this time (seconds) of the source.")]
Duration = Annotated[float | None, typer.Option("--duration", min=0.001, help="Edit this many seconds of the source.")]
Strength = Annotated[float, typer.Option("--strength", help="Scale of the transferred motion: 0 keeps the source, 1 is as driven.")]
Relative = Annotated[bool, typer.Option("--relative", help="Drive relative to the driver's first frame, starting from the source's own expression/pose.")]
RelativeTo = Annotated[str | None, typer.Option("--relative-to", metavar="SECONDS|IMAGE", help="The driver's neutral for --relative (implies it): its frame at SECONDS, or IMAGE, a still of the driver's actor with a neutral face. Default: the driver's first frame.", show_default=False)]
OutputCrop = Annotated[bool, typer.Option("--output-crop", help="Write the face crop at the model's size instead of the full photo (--mode expression; pose and both always write the crop).")]
Smooth = Annotated[float, typer.Option("--smooth", help="Temporal smoothing of the motion in [0, 1): 0 off, 0.5 mild, 0.8 strong.")]
Crop = Annotated[Literal[CROP_CHOICES], typer.Option("--crop", help="auto: detect the face and crop a fixed box; none: inputs already are square face crops.")]
Box = Annotated[str | None, typer.Option("--box", help="Fixed source crop box x,y,w,h in pixels (skips detection).")]
BoxScale = Annotated[float, typer.Option("--box-scale", help="Crop box side relative to the face (larger shows more hair and neck).")]
FaceIndex = Annotated[int, typer.Option("--face-index", min=0, help="Which face of the source when several are visible: 0 is the largest.")]
DriverFaceIndex = Annotated[int, typer.Option("--driver-face-index", min=0, help="Which face of the driver when several are visible: 0 is the largest.")]
Mask = Annotated[str, typer.Option("--mask", metavar=f"<{'|'.join(REGIONS)}>[,...]", autocompletion=complete_regions, help="Regions of the edit pasted back: face, mouth (dubbing: eyes and brows stay the source's), eyes, box, or several joined by commas (mouth,eyes).")]
Feather = Annotated[float, typer.Option("--feather", help="Mask edge softness (Gaussian sigma as a fraction of the box).")]
Paste = Annotated[Literal[PASTE_METHODS], typer.Option("--paste", help="change: keep the frame's own full-resolution pixels, move them where the edit moves the face, and add only what the edit changes; change-fast: the same without moving them (faster, softer where the face moves); replace: paste the model's picture (soft at the model's resolution).")]
PasteReference = Annotated[Literal[REFERENCES], typer.Option("--paste-reference", help="What --paste change measures the edit against: model (the model's reconstruction of the source: exact where nothing changes, one more generator pass) or source (the source crop: faster).")]
EditStart = Annotated[float | None, typer.Option("--edit-start", min=0.0, help="Edit only from this time (seconds of the source); earlier frames stay as they are.", show_default=False)]
EditEnd = Annotated[float | None, typer.Option("--edit-end", min=0.0, help="Edit only until this time (seconds of the source); later frames stay as they are.", show_default=False)]
Shots = Annotated[Literal[SHOT_CHOICES], typer.Option("--shots", help="auto: find the shots (cuts, dissolves, fades) and frame the person in each on its own, following a face that travels; frames without them stay as they are. none: one box for the whole video.")]
Faces = Annotated[Literal[FACES_CHOICES], typer.Option("--faces", help="one: the --face-index face of each shot (or --person); all: every person, in one pass.")]
Person = Annotated[Path | None, typer.Option("--person", help="A photo of the person to edit, in every shot where they appear (needs the identity model: pip install 'dpe-cli[eval]').", show_default=False)]
Fade = Annotated[float, typer.Option("--fade", min=0.0, max=10.0, help="Seconds over which the edit fades in and out at --edit-start/--edit-end.")]


def _default_output(source: Path, tag: str) -> str:
    return str(Path.cwd() / f"{source.stem}-{tag}.mp4")


def _run(command: str, given: dict[str, Any]) -> None:
    """Build the command's request from its parameters and run it; the editing library (torch)
    is imported only here."""
    from dpe_cli.edit import run_edit
    from dpe_cli.edit.commands import build_request
    from dpe_cli.progress import RichReporter

    options = dict(given)
    quiet, json_out = options.pop("quiet"), options.pop("json_out")
    options.pop("debug")
    source = options.pop("source", None) or options.pop("image")
    driver, output = options.pop("driver"), options.pop("output")
    tag = {"edit-expression": "expression", "edit-pose": "pose"}.get(command) or f"reenact-{options.get('mode')}"
    request = build_request(command, source, driver, output or _default_output(source, tag), **options)
    with RichReporter(stderr, quiet=quiet) as reporter:
        report = run_edit(request, reporter)
    if json_out:
        print_json(report)
    elif not quiet:
        framing = f"box {report['box']}" if len(report.get("shots") or ()) < 2 else f"{len(report['shots'])} shots"
        print_result(f"{report['output']} ({report['frames']} frames, {report['fps']:.3g} fps, {report['duration']:.2f} s, {framing})", label="wrote")


def edit_expression(
    source: Annotated[Path, typer.Argument(help="The video to edit.", show_default=False)],
    driver: Annotated[Path, typer.Option("--driver", "-d", help="Driving video or still image whose expression is transferred.", show_default=False)],
    output: Output = None,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    precision: Precision = "auto",
    batch_size: BatchSize = None,
    audio: Audio = None,
    driver_end: DriverEnd = "loop",
    crf: Crf = 18,
    side_by_side: SideBySide = False,
    start: Start = 0.0,
    duration: Duration = None,
    strength: Strength = 1.0,
    relative: Relative = False,
    relative_to: RelativeTo = None,
    smooth: Smooth = 0.0,
    crop: Crop = "auto",
    box: Box = None,
    box_scale: BoxScale = DEFAULT_BOX_SCALE,
    face_index: FaceIndex = 0,
    driver_face_index: DriverFaceIndex = 0,
    shots: Shots = "auto",
    faces: Faces = "one",
    person: Person = None,
    mask: Mask = "face",
    feather: Feather = DEFAULT_FEATHER,
    paste: Paste = "change",
    paste_reference: PasteReference = "model",
    edit_start: EditStart = None,
    edit_end: EditEnd = None,
    fade: Fade = 0.25,
    overwrite: Overwrite = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Make the person in SOURCE follow the DRIVER's expression, pasted back seamlessly.

    Head pose, background and audio stay. Only what the edit changes is added to the
    full-resolution frames (--paste change), so the face keeps its own detail.
    """
    _run("edit-expression", locals())


def edit_pose(
    source: Annotated[Path, typer.Argument(help="The video to edit.", show_default=False)],
    driver: Annotated[Path, typer.Option("--driver", "-d", help="Driving video or still image whose head pose is transferred.", show_default=False)],
    output: Output = None,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    precision: Precision = "auto",
    batch_size: BatchSize = None,
    audio: Audio = None,
    driver_end: DriverEnd = "loop",
    crf: Crf = 18,
    side_by_side: SideBySide = False,
    start: Start = 0.0,
    duration: Duration = None,
    strength: Strength = 1.0,
    relative: Relative = False,
    relative_to: RelativeTo = None,
    smooth: Smooth = 0.0,
    crop: Crop = "auto",
    box: Box = None,
    box_scale: BoxScale = DEFAULT_BOX_SCALE,
    face_index: FaceIndex = 0,
    driver_face_index: DriverFaceIndex = 0,
    shots: Shots = "auto",
    person: Person = None,
    edit_start: EditStart = None,
    edit_end: EditEnd = None,
    fade: Fade = 0.25,
    overwrite: Overwrite = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Make the head in SOURCE follow the DRIVER's pose; the expression stays.

    A changed pose cannot be pasted back into the original frames seamlessly (the head
    would no longer line up with the neck and background), so the output is the face crop
    at the model's resolution.
    """
    _run("edit-pose", locals())


def reenact(
    image: Annotated[Path, typer.Argument(help="Still portrait to animate.", show_default=False)],
    driver: Annotated[Path, typer.Argument(help="Driving video.", show_default=False)],
    output: Output = None,
    mode: Annotated[Literal[MODES], typer.Option("--mode", "-m", help="both (expression and pose), expression or pose.")] = "both",
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    precision: Precision = "auto",
    batch_size: BatchSize = None,
    audio: Audio = None,
    crf: Crf = 18,
    side_by_side: SideBySide = False,
    strength: Strength = 1.0,
    relative: Relative = False,
    relative_to: RelativeTo = None,
    smooth: Smooth = 0.0,
    crop: Crop = "auto",
    box: Box = None,
    box_scale: BoxScale = DEFAULT_BOX_SCALE,
    face_index: FaceIndex = 0,
    driver_face_index: DriverFaceIndex = 0,
    output_crop: OutputCrop = False,
    mask: Mask = "face",
    feather: Feather = DEFAULT_FEATHER,
    paste: Paste = "change",
    paste_reference: PasteReference = "model",
    overwrite: Overwrite = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """One-shot talking head: animate the portrait IMAGE with the DRIVER video's motion.

    An expression-only edit (-m expression) keeps the pose, so the animated face is pasted
    into the full photo (its size, hair and background kept; --paste, --mask, --feather as
    for edit-expression, --output-crop for the crop). The pose and both modes move the head
    against the shoulders: their output is the face crop at the model's size. The portrait is framed, encoded and
    masked once; the output is as long as the driver, with the driver's audio by default.
    --relative starts from the portrait's own expression and pose, which usually looks more
    natural for another person's driver.
    """
    _run("reenact", locals())


def register(app: typer.Typer) -> None:
    app.command("edit-expression")(edit_expression)
    app.command("edit-pose")(edit_pose)
    app.command("reenact")(reenact)
