"""One picture to check framing and paste-back before a long edit.

``preview`` runs the editing pipeline's own pieces on a few frames: the framing an edit would
use (:func:`dpe_cli.edit.pipeline.cast_source`: shot by shot and person by person for a video
with ``--shots auto``, else one fixed box), the paste-back mask of :class:`dpe_cli.face.Paster`
and one expression edit with the model a run would load. The top rows show frames of the
source with the detected faces (thin yellow), each edited person's crop box (green, with the
person's number) and the mask (cyan tint, its half-strength edge outlined): four frames
spread over a one-shot video, or one frame from the middle of each shot of several, up to
:data:`MAX_SHOTS` cells. The bottom row shows the driver frame with its box, the two crops
the model sees, the model's edit and the edited frame inside the box at full resolution.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dpe_cli.atomic import replacing
from dpe_cli.choices import DEFAULT_BOX_SCALE, DEFAULT_FEATHER
from dpe_cli.edit.casting import Casting, Subject
from dpe_cli.edit.findings import summary
from dpe_cli.edit.framing import Framing, frame_input
from dpe_cli.edit.pipeline import cast_source
from dpe_cli.edit.request import EditRequest
from dpe_cli.edit.scan import Scan
from dpe_cli.edit.stream import StageTimer
from dpe_cli.engine import Engine
from dpe_cli.errors import InputError, OutputExistsError
from dpe_cli.face import CropBox, FaceBox, FaceDetector, Paster, box_in_frame
from dpe_cli.face.crop import crop
from dpe_cli.inputs import InputFiles
from dpe_cli.progress import Reporter
from dpe_cli.video import MediaInfo, first_frame, probe, read_image

COLUMNS = 4  # cells in each row; source frames shown for a one-shot video
MAX_SHOTS = 12  # shot cells at most (three rows); with more shots the last cell counts the rest
CELL_W, CELL_H = 320, 240
LABEL_H = 24
WIDTH, HEIGHT = COLUMNS * CELL_W, 2 * (CELL_H + LABEL_H)  # the size for a one-shot video or a still
FACE, BOX, MASK = (255, 220, 0), (0, 220, 0), (0, 200, 255)  # RGB
# A box more than this times the --box-scale framing of its face leaves the face small in the
# model's crop (a zoom within the shot, or a box held to the frame): the edit there is soft.
BIG_BOX = 1.5


@dataclass(frozen=True)
class PreviewReport:
    output: Path
    source_box: tuple[int, int, int, int]
    driver_box: tuple[int, int, int, int]
    times: list[float]  # seconds of the source frames shown
    weights: Path
    shots: list[dict] = field(default_factory=list)  # a video framed shot by shot: each shot and its boxes
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _View:
    """One source cell: the frame shown, its label and the subjects boxed in it."""

    frame: int
    time: float
    label: str
    subjects: list[Subject]


def _frame_at(info: MediaInfo, t: float) -> np.ndarray:
    if info.kind == "image":
        return read_image(info.path)
    frame = first_frame(info.path, t)
    if frame is None:
        raise InputError(f"{info.path.name} has no frame at {t:.2f} s", "check that the video decodes")
    return frame


def _spread(first: int, end: int, count: int = COLUMNS) -> list[int]:
    """Frame numbers spread over first..end (the middles of ``count`` equal parts), each once:
    a clip of fewer frames shows each of its frames."""
    return sorted({first + int((i + 0.5) * (end - first) / count) for i in range(count)})


def _views(info: MediaInfo, framing: Framing, casting: Casting, scan: Scan | None) -> tuple[list[_View], int]:
    """The source cells, and how many shots were left out of them."""
    if info.kind == "image":
        return [_View(0, 0.0, "source: faces, box, mask", casting.subjects)], 0
    fps = scan.fps if scan is not None else float(info.fps)
    if scan is None or len(scan.shots) < 2:
        frames = scan.frames if scan is not None else (framing.frames or info.frame_count)
        return [_View(i, i / fps, f"source {i / fps:.2f} s: faces, box, mask", casting.active(i)) for i in _spread(0, frames)], 0
    shown = len(scan.shots) if len(scan.shots) <= MAX_SHOTS else MAX_SHOTS - 1
    views = []
    for k, shot in enumerate(scan.shots[:shown]):
        edited = [s for s in casting.subjects if s.shot == k]
        first = min((s.first for s in edited), default=shot.start)
        end = max((s.end for s in edited), default=shot.end)
        i = (first + end - 1) // 2
        label = f"shot {k + 1}: {shot.start / fps:.2f}-{shot.end / fps:.2f} s" + ("" if edited else ", not edited")
        views.append(_View(i, i / fps, label, [s for s in edited if s.first <= i < s.end]))
    return views, len(scan.shots) - shown


def _rect(image: np.ndarray, box: tuple[float, float, float, float], color: tuple[int, int, int], thickness: int) -> None:
    x, y, w, h = box
    cv2.rectangle(image, (round(x), round(y)), (round(x + w), round(y + h)), color, thickness)


def _tint(out: np.ndarray, box: CropBox, mask: np.ndarray, line: int) -> None:
    """The mask tinted into ``out`` where the box meets the frame, its half-strength edge drawn."""
    x, y, w, h = box_in_frame(box, out.shape[1], out.shape[0])
    if not (w and h):
        return
    visible = mask[y - box.y : y - box.y + h, x - box.x : x - box.x + w]
    alpha = 0.4 * visible[..., None]
    region = out[y : y + h, x : x + w].astype(np.float32)
    out[y : y + h, x : x + w] = np.rint(region * (1 - alpha) + np.array(MASK, np.float32) * alpha).astype(np.uint8)
    edge, _ = cv2.findContours((visible > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, edge, -1, MASK, line, offset=(x, y))


def _annotate(frame: np.ndarray, faces: list[FaceBox], marks: list[tuple[CropBox, np.ndarray | None, str]]) -> np.ndarray:
    """The frame with each mark's mask tinted in, the detected faces, and each mark's box
    drawn with its label (the person's number) at its top left corner."""
    out = frame.copy()
    line = max(1, round(max(frame.shape[:2]) / 300))
    for box, mask, _ in marks:
        if mask is not None:
            _tint(out, box, mask, line)
    for face in faces:
        _rect(out, (face.x, face.y, face.w, face.h), FACE, line)
    for box, _, label in marks:
        _rect(out, box.as_tuple(), BOX, 2 * line)
        if label:
            at = (max(0, box.x) + 3 * line, max(0, box.y) + 14 * line)
            cv2.putText(out, label, at, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * line, BOX, line, cv2.LINE_AA)
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
    if output.is_dir():
        raise InputError(f"preview output {output} is a folder", "give a file name ending in .png, e.g. -o preview.png")
    if output.suffix.lower() != ".png":
        raise InputError(f"preview output {output} must end in .png", "e.g. -o preview.png")
    parent = next((p for p in output.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"preview output {output}: {parent} is a file, not a folder", "write the preview into a folder")
    InputFiles(inputs).refuse(output.expanduser().resolve())  # the edit's identity test: links count as the input
    if output.exists() and not overwrite:
        raise OutputExistsError(f"{output} already exists", "pass `overwrite` to replace it")


def _big_boxes(casting: Casting, scale: float) -> str | None:
    """The note for boxes much larger than the framing of their face, naming the shots."""
    ratios = {s.shot: s.box.size / (scale * s.face_side) for s in casting.subjects if s.face_side > 0}
    big = sorted(k for k, r in ratios.items() if r > BIG_BOX)
    if not big:
        return None
    worst = max(ratios[k] for k in big)
    return (f"the crop box is much larger than the face in shot(s) {', '.join(str(k + 1) for k in big)} (up to {worst:.1f}x the "
            f"--box-scale {scale:g} framing): the face is small in the model's crop there, so its edit will be soft")


def _shots_report(scan: Scan, casting: Casting, views: list[_View]) -> list[dict]:
    """Each shot's time range, the frame shown (None: left out of the picture) and its boxes there."""
    shots = []
    for k, shot in enumerate(scan.shots):
        if len(scan.shots) < 2:
            at: int | None = views[len(views) // 2].frame
        else:
            at = views[k].frame if k < len(views) else None
        people = [{"person": s.person, "box": list(s.box_at(at if at is not None else s.first).as_tuple()), "moving": s.moving}
                  for s in casting.subjects if s.shot == k]
        shots.append({"start": round(shot.start / scan.fps, 3), "end": round(shot.end / scan.fps, 3),
                      "shown_at": None if at is None else round(at / scan.fps, 3), "people": people})
    return shots


class _Masks(contextlib.ExitStack):
    """One paster per subject (its mesh tracks that person), moved to the subject's box."""

    def __init__(self, info: MediaInfo, mask: str, feather: float) -> None:
        super().__init__()
        self.info, self.mask, self.feather = info, mask, feather
        self.pasters: dict[int, Paster] = {}

    def at(self, subject: Subject, frame: int) -> Paster:
        box = subject.box_at(frame)
        paster = self.pasters.get(subject.key)
        if paster is None:
            paster = self.enter_context(Paster(box, self.info.width, self.info.height, mask=self.mask, feather=self.feather, smooth=False))
            self.pasters[subject.key] = paster
        paster.move_to(box)
        return paster


def _driver(request: EditRequest, info: MediaInfo | None, views: list[_View], frames: list[np.ndarray], lead_box: CropBox,
            reporter: Reporter, timer: StageTimer) -> tuple[np.ndarray, CropBox, str]:
    """The driver's frame, box and label: the given driver's middle frame, else the source's
    last frame shown (the source drives itself)."""
    if info is None:
        last = views[-1]
        box = last.subjects[0].box_at(last.frame) if last.subjects else lead_box
        return frames[-1], box, f"driver: the source at {last.time:.2f} s"
    box = frame_input(info, request, "driver", reporter, timer).box
    t = 0.0 if info.kind == "image" else (info.frame_count // 2) / float(info.fps)
    return _frame_at(info, t), box, "driver: faces, box"


def _edit_cells(engine: Engine, paster: Paster, frame: np.ndarray, view: _View, box: CropBox, driver_frame: np.ndarray,
                driver_box: CropBox) -> list[np.ndarray]:
    """The crops the model sees, its edit, and the edited frame inside the box."""
    source_crop, driver_crop = crop(frame, box, engine.size), crop(driver_frame, driver_box, engine.size)
    encoding = engine.encode([source_crop])
    edited, reconstruction = engine.render(encoding, engine.motion([driver_crop]), "expression", engine.motion_of(encoding))
    pasted = paster.paste(frame, edited[0], reconstruction[0])
    return [
        _cell(np.hstack([source_crop, driver_crop]), f"model input, {engine.size} px: source | driver"),
        _cell(edited[0], f"edit, {engine.weights.stem}"),
        _cell(crop(pasted, box, CELL_H), f"edited frame {view.time:.2f} s, in the box"),
    ]


def _notes(scan: Scan | None, casting: Casting, request: EditRequest, reporter: Reporter) -> list[str]:
    """What the edit would say about the shots and people, and boxes too large for their face."""
    if scan is None:
        return []
    notes = [n for n in (summary(scan, casting, request.faces), _big_boxes(casting, request.box_scale)) if n]
    for note in notes:
        reporter.note(note)
    return notes


def _write(output: Path, canvas: np.ndarray) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with replacing(output, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
            raise InputError(f"cannot write {output}", "check that its folder is writable")


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
    shots: str = "auto",
    faces: str = "one",
    person: Path | None = None,
    device: str = "auto",
    overwrite: bool = False,
    reporter: Reporter | None = None,
) -> PreviewReport:
    """Write the preview PNG of editing ``source`` (driven by ``driver``, else by its own
    last shown frame) to ``output``, framed as the edit with these options would frame it."""
    # The edit's own request checks every option (ranges, NaN, choices) before any work.
    request = EditRequest(source, driver or source, str(output), weights=weights, device=device, mask=mask, feather=feather, box_scale=box_scale,
                          face_index=face_index, driver_face_index=driver_face_index, shots=shots, faces=faces, person=person)
    output = Path(output)
    _check_output(output, [Path(source)] + ([Path(driver)] if driver is not None else []), overwrite)
    reporter, timer = reporter or Reporter(), StageTimer()
    source_info = probe(source)
    driver_info = probe(driver) if driver is not None else None
    engine = Engine.load(weights, device=device)
    framing, casting, scan = cast_source(source_info, request, 0.0, None, reporter, timer)
    notes = _notes(scan, casting, request, reporter)
    views, left_out = _views(source_info, framing, casting, scan)
    frames = [_frame_at(source_info, v.time) for v in views]
    at, lead = next(((k, v.subjects[0]) for k, v in enumerate(views) if v.subjects), (0, casting.subjects[0]))
    lead_box = lead.box_at(views[at].frame)
    driver_frame, driver_box, driver_label = _driver(request, driver_info, views, frames, lead_box, reporter, timer)
    named = scan is not None
    with FaceDetector() as detector, _Masks(source_info, mask, feather) as masks:
        top = []
        for view, frame in zip(views, frames):
            marks = [(s.box_at(view.frame), masks.at(s, view.frame).mask(frame), f"person {s.person}" if named else "") for s in view.subjects]
            top.append(_cell(_annotate(frame, detector.detect(frame), marks), view.label))
        driver_panel = _cell(_annotate(driver_frame, detector.detect(driver_frame), [(driver_box, None, "")]), driver_label)
        edit = _edit_cells(engine, masks.at(lead, views[at].frame), frames[at], views[at], lead_box, driver_frame, driver_box)
    if left_out:
        top.append(_cell(None, f"+{left_out} more shots (--json lists them)"))
    top += [_cell(None, "")] * (-len(top) % COLUMNS)
    rows = [np.hstack(top[i : i + COLUMNS]) for i in range(0, len(top), COLUMNS)]
    _write(output, np.vstack([*rows, np.hstack([driver_panel, *edit])]))
    shots_seen = _shots_report(scan, casting, views) if scan is not None else []
    return PreviewReport(output, lead_box.as_tuple(), driver_box.as_tuple(), [v.time for v in views], engine.weights, shots_seen, notes)
