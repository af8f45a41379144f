"""One picture to check framing and paste-back before a long edit.

``preview`` runs the editing pipeline's own pieces on a few frames: the face detection pass
and fixed box of :func:`dpe_cli.edit.framing.find_box`, the paste-back mask of
:class:`dpe_cli.face.Paster`, and one expression edit with the model a run would load. It
writes one PNG of fixed size: the top row shows frames spread over the source with the
detected faces (thin yellow), the fixed crop box (green) and the mask (cyan tint, its
half-strength edge outlined); the bottom row the driver frame with its box, the two crops the
model sees, the model's edit and the edited frame inside the box at full resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dpe_cli.atomic import replacing
from dpe_cli.choices import DEFAULT_BOX_SCALE, DEFAULT_FEATHER
from dpe_cli.edit.framing import find_box
from dpe_cli.engine import Engine
from dpe_cli.errors import InputError, OutputExistsError
from dpe_cli.face import CropBox, FaceBox, FaceDetector, Paster, box_in_frame
from dpe_cli.face.crop import crop
from dpe_cli.face.regions import parse_regions
from dpe_cli.video import MediaInfo, probe, read_image
from dpe_cli.video.reader import FrameReader

COLUMNS = 4  # source frames shown, and cells in each row
CELL_W, CELL_H = 320, 240
LABEL_H = 24
WIDTH, HEIGHT = COLUMNS * CELL_W, 2 * (CELL_H + LABEL_H)
FACE, BOX, MASK = (255, 220, 0), (0, 220, 0), (0, 200, 255)  # RGB


@dataclass(frozen=True)
class PreviewReport:
    output: Path
    source_box: tuple[int, int, int, int]
    driver_box: tuple[int, int, int, int]
    times: list[float]  # seconds of the source frames shown
    weights: Path


def _frame_at(info: MediaInfo, t: float) -> np.ndarray:
    if info.kind == "image":
        return read_image(info.path)
    reader = FrameReader(info.path, start=t)
    try:
        frame = next(iter(reader), None)
    finally:
        reader.close()
    if frame is None:
        raise InputError(f"{info.path.name} has no frame at {t:.2f} s", "check that the video decodes")
    return frame


def _times(info: MediaInfo) -> list[float]:
    """Frame times spread over the video: the middles of COLUMNS equal parts."""
    if info.kind == "image":
        return [0.0]
    return [info.duration * (i + 0.5) / COLUMNS for i in range(COLUMNS)]


def _rect(image: np.ndarray, x: float, y: float, w: float, h: float, color: tuple[int, int, int], thickness: int) -> None:
    cv2.rectangle(image, (round(x), round(y)), (round(x + w), round(y + h)), color, thickness)


def _annotate(frame: np.ndarray, faces: list[FaceBox], box: CropBox, mask: np.ndarray | None) -> np.ndarray:
    """The frame with the mask tinted in, the detected faces and the fixed box drawn."""
    out = frame.copy()
    x, y, w, h = box_in_frame(box, frame.shape[1], frame.shape[0])
    line = max(1, round(max(frame.shape[:2]) / 300))
    if mask is not None and w and h:
        visible = mask[y - box.y : y - box.y + h, x - box.x : x - box.x + w]
        alpha = 0.4 * visible[..., None]
        region = out[y : y + h, x : x + w].astype(np.float32)
        out[y : y + h, x : x + w] = np.rint(region * (1 - alpha) + np.array(MASK, np.float32) * alpha).astype(np.uint8)
        edge, _ = cv2.findContours((visible > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, edge, -1, MASK, line, offset=(x, y))
    for face in faces:
        _rect(out, face.x, face.y, face.w, face.h, FACE, line)
    _rect(out, box.x, box.y, box.size, box.size, BOX, 2 * line)
    return out


def _cell(image: np.ndarray | None, label: str) -> np.ndarray:
    """A labelled CELL_W x CELL_H cell with the image fitted inside (grey bars keep its shape)."""
    cell = np.full((LABEL_H + CELL_H, CELL_W, 3), 48, np.uint8)
    cv2.putText(cell, label, (6, LABEL_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    if image is not None:
        scale = min(CELL_W / image.shape[1], CELL_H / image.shape[0])
        w, h = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
        x, y = (CELL_W - w) // 2, LABEL_H + (CELL_H - h) // 2
        cell[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=interpolation)
    return cell


def _check_output(output: Path, inputs: list[Path], overwrite: bool) -> None:
    if output.suffix.lower() != ".png":
        raise InputError(f"preview output {output} must end in .png", "e.g. -o preview.png")
    if any(output.resolve() == p.resolve() for p in inputs):
        raise InputError(f"preview output {output} is one of the inputs", "write the preview to another file")
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists", "pass -y/--overwrite to replace it")


def preview(
    source: Path,
    output: Path,
    *,
    driver: Path | None = None,
    weights: Path | None = None,
    mask: str = "face",
    feather: float = DEFAULT_FEATHER,
    box_scale: float = DEFAULT_BOX_SCALE,
    face_index: int = 0,
    driver_face_index: int = 0,
    device: str = "auto",
    overwrite: bool = False,
) -> PreviewReport:
    """Write the preview PNG of editing ``source`` (driven by ``driver``, else by its own
    last shown frame) to ``output``."""
    parse_regions(mask)  # a bad --mask fails before the slow steps
    source_info = probe(source)
    driver_info = probe(driver) if driver is not None else source_info
    _check_output(output, [source_info.path, driver_info.path], overwrite)
    engine = Engine.load(weights, device=device)
    source_box = find_box(source_info, face_index=face_index, scale=box_scale).box
    driver_box = source_box if driver is None else find_box(driver_info, face_index=driver_face_index, scale=box_scale).box
    times = _times(source_info)
    frames = [_frame_at(source_info, t) for t in times]
    driver_frame = frames[-1] if driver is None else _frame_at(driver_info, driver_info.duration / 2)

    top = []
    with FaceDetector() as detector, Paster(source_box, source_info.width, source_info.height, mask=mask, feather=feather, smooth=False) as paster:
        for t, frame in zip(times, frames):
            top.append(_cell(_annotate(frame, detector.detect(frame), source_box, paster.mask(frame)), f"source {t:.2f} s: faces, box, mask"))
        source_crop, driver_crop = crop(frames[0], source_box, engine.size), crop(driver_frame, driver_box, engine.size)
        encoding = engine.encode([source_crop])
        edited, reconstruction = engine.render(encoding, engine.motion([driver_crop]), "expression", engine.motion_of(encoding))
        pasted = paster.paste(frames[0], edited[0], reconstruction[0])
        driver_panel = _annotate(driver_frame, detector.detect(driver_frame), driver_box, None)
    top += [_cell(None, "")] * (COLUMNS - len(top))
    driver_label = "driver: faces, box" if driver is not None else f"driver: the source at {times[-1]:.2f} s"
    bottom = [
        _cell(driver_panel, driver_label),
        _cell(np.hstack([source_crop, driver_crop]), f"model input, {engine.size} px: source | driver"),
        _cell(edited[0], f"edit, {engine.weights.stem}"),
        _cell(crop(pasted, source_box, CELL_H), f"edited frame {times[0]:.2f} s, in the box"),
    ]
    canvas = np.vstack([np.hstack(top), np.hstack(bottom)])
    output.parent.mkdir(parents=True, exist_ok=True)
    with replacing(output, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
            raise InputError(f"cannot write {output}", "check that its folder is writable")
    return PreviewReport(output, source_box.as_tuple(), driver_box.as_tuple(), times, engine.weights)
