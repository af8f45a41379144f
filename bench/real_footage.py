"""Real-footage framing on a synthetic programme with ground truth.

One 1280x720, 25 fps programme of ``dpe synth`` people (identities no other benchmark uses):
a person on the left; b-roll without a face; another person on the right, smaller; two people
side by side; a camera pan (the face travels 540 px in 3 s); a dissolve into a person who walks
out of the frame. The truth is the same renders with the driver's expression on every face
that is in the frame (what ``--faces all`` asks for). The source is written losslessly, so
any difference from the truth is the edit's.

Runs the real ``EditJob`` with ``--faces all`` twice per editor: today's framing
(``--shots none``: one box for the video) and the new one (``--shots auto``), and once per
shot on that shot cut out as its own video. Editors: an *oracle*, the true render cut with the
run's own boxes and reduced to the model's size in place of the model's output (what a perfect
model would give), and the shipped model driven by a crop video of another person.

Reports shot-boundary precision and recall; per shot the framing (face side / box side,
against the DPE crops' 0.53) and the PSNR inside the true face boxes; identity switches within
a shot; whether frames without a face are the source's own, bit for bit (PNG output); and the
detection pass's seconds per frame and memory, before (one box) and after (shots, tracks,
people).

    .venv/bin/python bench/real_footage.py [--out bench/results/real_footage.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import torch

import dpe_cli.edit.pipeline as pipeline_module
from dpe_cli.edit import EditJob, EditRequest
from dpe_cli.edit.framing import find_box
from dpe_cli.edit.scan import scan_video
from dpe_cli.edit.stream import StageTimer
from dpe_cli.face.crop import crop
from dpe_cli.progress import Reporter
from dpe_cli.synth import Identity, Scene, render, render_crop, sample_motion
from dpe_cli.video import FrameReader, probe

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS = 1280, 720, 25
SEED0 = 140000  # identities and scenes used by no other benchmark or training run
DPE_RATIO = 0.53  # face side / box side of the DPE (VoxCeleb) crops
FACE_MARGIN = 1.25  # the PSNR region: the true face box grown by this much


@dataclass
class Shot:
    name: str
    frames: int
    people: list[dict]  # per person: identity, scene, motion tracks, horizontal half or None
    broll: bool = False


def _person(k: int, n: int, *, tx_shift: np.ndarray | None = None, half: str | None = None, small: bool = False) -> dict:
    motion = sample_motion(n, FPS, SEED0 + 10 * k, "full", aspect=(W / 2 if half else W) / H)
    if small:
        motion = replace(motion, scale=motion.scale * 0.7)
    if tx_shift is not None:
        motion = replace(motion, tx=0 * motion.tx + tx_shift, drift=np.stack([tx_shift, 0 * tx_shift], -1))
    return {"identity": Identity.from_seed(SEED0 + k), "scene": Scene.from_seed(SEED0 + 500 + k), "motion": motion, "half": half}


def programme() -> tuple[list[Shot], list[tuple[str, int, int]]]:
    """The shots and the joins between them: (kind, first frame of the next shot, length of
    the transition in frames)."""
    t_pan = np.arange(75) / 74
    pan = 0.375 - 0.75 * (3 * t_pan**2 - 2 * t_pan**3)  # 540 px of 720-px units, eased
    t_out = np.clip((np.arange(70) - 20) / 35, 0, 1)
    leave = 1.5 * (3 * t_out**2 - 2 * t_out**3)  # walks out to the right within 1.4 s
    a = _person(1, 50)
    a["motion"] = replace(a["motion"], tx=a["motion"].tx * 0 - 0.35)
    b = _person(2, 50, small=True)
    b["motion"] = replace(b["motion"], tx=b["motion"].tx * 0 + 0.4)
    shots = [
        Shot("person left", 50, [a]),
        Shot("b-roll", 25, [], broll=True),
        Shot("person right, small", 50, [b]),
        Shot("two people", 50, [_person(3, 50, half="left"), _person(4, 50, half="right")]),
        Shot("pan", 75, [_person(5, 75, tx_shift=pan)]),
        Shot("face leaves", 70, [_person(6, 70, tx_shift=leave)]),
    ]
    return shots, [("cut", 0, 0), ("cut", 0, 0), ("cut", 0, 0), ("cut", 0, 0), ("dissolve", 0, 15)]


def _draw(person: dict, i: int, expression) -> tuple[np.ndarray, tuple | None]:
    motion, half = person["motion"], person["half"]
    width = W // 2 if half else W
    drift = (float(motion.drift[i, 0]), float(motion.drift[i, 1]))
    shot = render(person["identity"], motion.pose(i), expression, (width, H), "full", person["scene"], drift)
    x0, y0, x1, y1 = shot.face_box
    box = None if x1 <= x0 or y1 <= y0 else (x0 + (W // 2 if half == "right" else 0), y0, x1 - x0, y1 - y0)
    return shot.image, box


def _frame(shot: Shot, i: int, driver_expression) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """Source frame, true frame, and the true faces (x, y, w, h, who) in the frame."""
    if shot.broll:
        empty = render(Identity.from_seed(SEED0), replace(sample_motion(1, FPS, 0, "full").pose(0), tx=5.0),
                       sample_motion(1, FPS, 0).expression(0), (W, H), "full", Scene.from_seed(SEED0 + 900), (0.01 * i, 0.0)).image
        return empty, empty, []
    sources, truths, boxes = [], [], []
    for person in shot.people:
        src, box = _draw(person, i, person["motion"].expression(i))
        tru, _ = _draw(person, i, driver_expression)
        sources.append(src)
        truths.append(tru)
        inside = box is not None and box[0] < W and box[0] + box[2] > 0
        if inside:
            boxes.append((*box, id(person)))  # who: the rendered person
    if shot.people[0]["half"]:
        return np.concatenate(sources, axis=1), np.concatenate(truths, axis=1), boxes
    return sources[0], truths[0], boxes


def build(folder: Path) -> dict:
    """Render the programme: source and truth frames (in memory), true face boxes per frame, the
    lossless source video and the driver video; shots' true frame ranges and boundaries."""
    shots, joins = programme()
    total = sum(s.frames for s in shots) - sum(j[2] for j in joins)
    drv_motion = sample_motion(total, FPS, SEED0 + 777, "crop")
    drv_id = Identity.from_seed(SEED0 + 99)
    driver = [render_crop(drv_id, drv_motion.pose(i), drv_motion.expression(i), 256) for i in range(total)]
    source, truth, faces, ranges, boundaries = [], [], [], [], []
    cursor = 0
    for k, shot in enumerate(shots):
        overlap = joins[k - 1][2] if k else 0
        start = cursor - overlap
        for i in range(shot.frames):
            g = start + i
            src, tru, boxes = _frame(shot, i, drv_motion.expression(g))
            if i < overlap:  # a dissolve: blend with the previous shot's last frames
                a = (i + 1) / (overlap + 1)
                source[g] = (source[g] * (1 - a) + src * a + 0.5).astype(np.uint8)
                truth[g] = (truth[g] * (1 - a) + tru * a + 0.5).astype(np.uint8)
                faces[g] = faces[g] + boxes
            else:
                source.append(src)
                truth.append(tru)
                faces.append(boxes)
        if k:
            boundaries.append({"kind": joins[k - 1][0], "start": start, "end": start + overlap})
        ranges.append((start, start + shot.frames))
        cursor = start + shot.frames
    path = folder / "programme.mkv"
    _write_lossless(path, source)
    drv = folder / "driver.mp4"
    _write_lossless(drv, driver)
    return {"shots": shots, "ranges": ranges, "boundaries": boundaries, "source": source, "truth": truth,
            "faces": faces, "path": path, "driver": drv, "driver_frames": driver}


def _write_lossless(path: Path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", str(FPS), "-i", "-", "-c:v", "libx264rgb", "-crf", "0", "-preset", "ultrafast", str(path)]
    with subprocess.Popen(command, stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        for frame in frames:
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        proc.stdin.close()
        if proc.wait():
            raise RuntimeError(f"ffmpeg failed writing {path}")


# -- the oracle editor --------------------------------------------------------------------------
class _Oracle:
    """Stands in for :class:`dpe_cli.edit.infer.Inference`: each edited face's output is the true
    frame cut with the face's own box at the model's size, blended by its weight (a fade)."""

    truth: list[np.ndarray] = []
    offset = 0

    def __init__(self, engine, request, feed, timer, **_: object) -> None:
        self.size = engine.size
        self.frames_edited = 0
        self.per_subject: dict[int, int] = {}

    def __call__(self, batch) -> None:
        for item in batch:
            edited = False
            for face in item.faces:
                if face.weight <= 0:
                    continue
                true = crop(self.truth[self.offset + item.index], face.subject.box_at(item.index), self.size).astype(np.float32)
                mixed = face.weight * true + (1 - face.weight) * face.crop.astype(np.float32)
                face.edited = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
                face.reference = face.crop
                self.per_subject[face.subject.key] = self.per_subject.get(face.subject.key, 0) + 1
                edited = True
            self.frames_edited += edited


@contextlib.contextmanager
def oracle(truth: list[np.ndarray], offset: int):
    _Oracle.truth, _Oracle.offset = truth, offset
    real = pipeline_module.Inference
    pipeline_module.Inference = _Oracle
    try:
        yield
    finally:
        pipeline_module.Inference = real


# -- runs -----------------------------------------------------------------------------------------
def edit(source: Path, driver: Path, out: Path, shots: str, weights: str | None, reference: str) -> tuple[dict, list[np.ndarray]]:
    """One ``--faces all`` edit into a PNG sequence (``--shots none``: today's one box, one face)."""
    request = EditRequest(source=source, driver=driver, output=f"{out}/", weights=weights, shots=shots,
                          faces="all" if shots == "auto" else "one", paste_reference=reference, overwrite=True)
    report = EditJob(request).run()
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(out.glob("frame_*.png"))]
    return report, frames


def _face_mask(boxes: list[tuple]) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    for x, y, w, h, _ in boxes:
        cx, cy, side = x + w / 2, y + h / 2, FACE_MARGIN * max(w, h)
        x0, y0 = max(int(cx - side / 2), 0), max(int(cy - side / 2), 0)
        mask[y0 : int(cy + side / 2), x0 : int(cx + side / 2)] = True
    return mask


def psnr_in_faces(frames: list[np.ndarray], truth: list[np.ndarray], faces: list[list[tuple]], first: int) -> float | None:
    """PSNR over the true face regions of ``frames`` (which start at programme frame ``first``)."""
    err, count = 0.0, 0
    for k, out in enumerate(frames):
        mask = _face_mask(faces[first + k])
        if mask.any():
            d = out[mask].astype(np.float64) - truth[first + k][mask]
            err, count = err + float((d**2).sum()), count + d.size
    return None if count == 0 else float(10 * np.log10(255**2 / max(err / count, 1e-12)))


def passthrough(frames: list[np.ndarray], source: list[np.ndarray], faces: list[list[tuple]]) -> dict:
    """Frames with no face in them: how many, and how many are the source's own bit for bit."""
    empty = [i for i in range(len(frames)) if not faces[i]]
    exact = sum(np.array_equal(frames[i], source[i]) for i in empty)
    worst = max((int(np.abs(frames[i].astype(int) - source[i]).max()) for i in empty), default=0)
    return {"frames": len(empty), "bit_exact": exact, "max_level_change": worst}


def boundary_scores(found: list[dict], truth: list[dict]) -> dict:
    """A found shot start is right within 2 frames of a true cut, or inside a dissolve (2 of slack)."""
    used, right = set(), 0
    for shot in found[1:]:
        f = shot["start_frame"]
        for k, b in enumerate(truth):
            if k not in used and b["start"] - 2 <= f <= b["end"] + 2:
                used.add(k)
                right += 1
                break
    cuts = [k for k, b in enumerate(truth) if b["kind"] == "cut"]
    return {"found": len(found) - 1, "true": len(truth), "precision": right / max(len(found) - 1, 1),
            "recall": len(used) / len(truth), "cut_recall": len(used & set(cuts)) / len(cuts),
            "dissolve_found": all(k in used for k, b in enumerate(truth) if b["kind"] == "dissolve")}


def _nearest(box, faces: list[tuple]):
    """Who the true face nearest the box's centre is (None: no face in the frame)."""
    if not faces:
        return None
    cx, cy = box.x + box.size / 2, box.y + box.size * 0.5
    return min(faces, key=lambda f: np.hypot(f[0] + f[2] / 2 - cx, f[1] + f[3] / 2 - cy))[4]


def _true_shot(data: dict, frame: int) -> str:
    return next(data["shots"][k].name for k, (first, end) in reversed(list(enumerate(data["ranges"]))) if first <= frame < end)


def casting_checks(data: dict, casting) -> dict:
    """Within each edited span: identity switches (the true face nearest the subject's box
    changes), and the moving boxes' jitter (RMS second difference of the box centre, in % of
    its side)."""
    switches, jitter = 0, {}
    for subject in casting.subjects:
        seen = [_nearest(subject.box_at(i), data["faces"][i]) for i in range(subject.first, min(subject.end, len(data["faces"])))]
        seen = [s for s in seen if s is not None]
        switches += sum(a != b for a, b in zip(seen, seen[1:]))
        if subject.moving:
            centre = subject.path[:, :2] + subject.path[:, 2:3] / 2
            second = np.diff(centre, n=2, axis=0)
            jitter[_true_shot(data, subject.first)] = round(float(100 * np.sqrt((second**2).sum(1).mean()) / subject.path[0, 2]), 3)
    return {"switches": switches, "moving_box_jitter_pct_of_side": jitter, "subjects": len(casting.subjects)}


def framing(scan, data: dict, casting=None, single_box: list[int] | None = None) -> list[dict]:
    """Per true shot and face track: the median over its frames of detected face side / the
    side of the box that frames it there (the DPE crops: 0.53). Today: the one box; new: the
    subject's box at that frame (moving boxes followed frame by frame)."""
    rows = []
    for track in scan.tracks:
        ratios = []
        for f, (x, y, w, h) in zip(track.frames.tolist(), (track.boxes / scan.shrink).tolist()):
            if single_box is not None:
                side = single_box[2]
            else:
                here = [s for s in casting.subjects if s.first <= f < s.end]
                if not here:
                    continue
                cx, cy = x + w / 2, y + h / 2
                side = min((s.box_at(f) for s in here), key=lambda b: np.hypot(b.x + b.size / 2 - cx, b.y + b.size / 2 - cy)).size
            ratios.append(max(w, h) / side)
        if ratios:
            ratio = float(np.median(ratios))
            rows.append({"shot": _true_shot(data, int(np.median(track.frames))), "frames": len(ratios), "ratio": round(ratio, 3),
                         "error": round(abs(ratio / DPE_RATIO - 1), 3)})
    return rows


def detection_pass(info, frames: int) -> dict:
    """Seconds per frame of today's one-box pass and of the new scan; the scan's peak Python
    memory over half the programme and over all of it (flat: the per-frame state is a few numbers)."""
    began = time.perf_counter()
    find_box(info)
    before = (time.perf_counter() - began) / frames
    began = time.perf_counter()
    scan = scan_video(info, start=0.0, duration=None, shots="auto", identity=True, reporter=Reporter(), timer=StageTimer())
    after = (time.perf_counter() - began) / frames
    peaks = {}
    for name, duration in (("half", frames / 2 / FPS), ("all", None)):
        tracemalloc.start()
        scan_video(info, start=0.0, duration=duration, shots="auto", identity=True, reporter=Reporter(), timer=StageTimer())
        peaks[name] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
    return {"before_s_per_frame": round(before, 4), "after_s_per_frame": round(after, 4), "slower": round(after / before - 1, 3),
            "scan_peak_mib": peaks, "identity_model": scan.identity, "people_found": scan.people_count}, scan


def _shot_psnr(frames: list[np.ndarray], data: dict, offset: int = 0) -> dict[str, float | None]:
    out = {}
    for k, (first, end) in enumerate(data["ranges"]):
        if first < offset or end > offset + len(frames):
            continue
        value = psnr_in_faces(frames[first - offset : end - offset], data["truth"], data["faces"], first)
        out[data["shots"][k].name] = None if value is None else round(value, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/real_footage.json")
    parser.add_argument("--weights", default=None, help="the model to measure (default: the one a run would use)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict = {"meta": {"machine": platform.machine(), "threads": 1, "size": [W, H], "fps": FPS}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = build(folder)
        n = len(data["source"])
        info = probe(data["path"])
        decoded = [f for f in FrameReader(data["path"])]
        results["meta"].update(frames=n, lossless_source=all(np.array_equal(a, b) for a, b in zip(decoded, data["source"])))
        del decoded
        timing, scan = detection_pass(info, n)
        results["detection"] = timing
        from dpe_cli.edit.casting import Cast, cast_subjects
        from dpe_cli.face.crop import DEFAULT_BOX_SCALE

        casting = cast_subjects(scan, Cast(DEFAULT_BOX_SCALE, 0.25, "all"))
        results["casting"] = casting_checks(data, casting)
        print(json.dumps(timing), file=sys.stderr)
        runs = {}
        for editor, weights, reference in (("oracle", None, "source"), ("model", args.weights, "model")):
            for shots in ("none", "auto"):
                context = oracle(data["truth"], 0) if editor == "oracle" else contextlib.nullcontext()
                with context:
                    report, frames = edit(data["path"], data["driver"], folder / f"{editor}-{shots}", shots, weights, reference)
                runs[f"{editor} {shots}"] = {
                    "psnr": _shot_psnr(frames, data), "passthrough": passthrough(frames, data["source"], data["faces"]),
                    "box": report["box"], "shots": report.get("shots"), "people": report.get("people"),
                }
                if editor == "oracle" and shots == "auto":
                    results["boundaries"] = boundary_scores(report["shots"], data["boundaries"])
                    results["framing_new"] = framing(scan, data, casting=casting)
                if editor == "oracle" and shots == "none":
                    results["framing_today"] = framing(scan, data, single_box=report["box"])
                print(editor, shots, json.dumps(runs[f"{editor} {shots}"]["psnr"]), file=sys.stderr)
                del frames
        alone = {}
        for k, (first, end) in enumerate(data["ranges"]):
            if data["shots"][k].broll:
                continue
            clip = folder / f"shot{k}.mkv"
            _write_lossless(clip, data["source"][first:end])
            with oracle(data["truth"], first):
                _, frames = edit(clip, data["driver"], folder / f"alone{k}", "auto", None, "source")
            alone[data["shots"][k].name] = round(psnr_in_faces(frames, data["truth"], data["faces"], first), 2)
        runs["oracle alone"] = {"psnr": alone}
        results["runs"] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
