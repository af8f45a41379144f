"""``dpe preview``: one PNG to check framing and paste-back before a long edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpe_cli.choices import DEFAULT_BOX_SCALE, DEFAULT_FEATHER
from dpe_cli.cli.common import (
    DebugOption,
    DeviceOption,
    JsonOption,
    QuietOption,
    WeightsOption,
    print_json,
    print_result,
    stderr,
)
from dpe_cli.cli.edit_cmd import BoxScale, DriverFaceIndex, FaceIndex, Faces, Feather, Mask, Person, Shots


def preview(
    source: Annotated[Path, typer.Argument(help="The video (or portrait) you mean to edit.", show_default=False)],
    driver: Annotated[Path | None, typer.Option("--driver", "-d", help="Driving video or image. Default: the source drives itself.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The preview PNG. Default: SOURCE-preview.png here.", show_default=False)] = None,
    weights: WeightsOption = None,
    device: DeviceOption = "auto",
    mask: Mask = "face",
    feather: Feather = DEFAULT_FEATHER,
    box_scale: BoxScale = DEFAULT_BOX_SCALE,
    face_index: FaceIndex = 0,
    driver_face_index: DriverFaceIndex = 0,
    shots: Shots = "auto",
    faces: Faces = "one",
    person: Person = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing PNG.")] = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Write one PNG to check framing and paste-back in seconds, before a long edit.

    It frames SOURCE as the edit would: one frame from the middle of each shot (--shots auto)
    with each edited person's box and number, or frames spread over a one-shot video, with
    the detected faces and the paste-back mask; then the driver's box, the crops the model
    sees and one edited frame.
    """
    from dpe_cli.preview import preview as make_preview
    from dpe_cli.progress import RichReporter

    with RichReporter(stderr, quiet=quiet) as reporter:
        report = make_preview(
            source, output or Path.cwd() / f"{source.stem}-preview.png", driver=driver, weights=weights, mask=mask,
            feather=feather, box_scale=box_scale, face_index=face_index, driver_face_index=driver_face_index,
            shots=shots, faces=faces, person=person, device=device, overwrite=overwrite, reporter=reporter,
        )  # fmt: skip
    if json_out:
        print_json({
            "output": report.output, "source_box": report.source_box, "driver_box": report.driver_box,
            "times": report.times, "weights": report.weights, "shots": report.shots, "notes": report.notes,
        })  # fmt: skip
    elif not quiet:
        framing = f"{len(report.shots)} shots" if len(report.shots) > 1 else f"box {report.source_box}"
        print_result(f"{report.output} ({framing}, model {report.weights.name})", label="wrote")


def register(app: typer.Typer) -> None:
    app.command("preview")(preview)
