"""Shot boundaries (hard cuts, dissolves, fades through black), found in one streaming pass.

The detection pass already decodes every frame, so shots are found there, beside the face
detector, in bounded memory and a small fraction of its time. Each frame is reduced to a tiny
signature (48x28 YCbCr, and a 24x14 half of it), and three tests run on a short window:

- **Cut**: the change from frame t-1 to t (mean absolute difference of the signatures, each
  scaled to a common brightness so lighting flicker does not count) must be large in itself,
  several times the change between the neighbouring frames (head motion, talking and pans
  change every frame by similar amounts; a cut is one isolated jump, as in PySceneDetect's
  AdaptiveDetector), and must persist: frame t-1 must still differ from t+1 and t+2, so a
  one- or two-frame flash is not a cut.
- **Dissolve**: over a window c-h..c+h (h from 0.12 to 0.5 s) whose ends differ a lot, every
  frame must lie close to the straight line between the ends' signatures, the middle frame
  half way, with several frames strictly between: a cross-fade is exactly such a blend. A pan,
  a zoom or a face entering also changes the picture gradually, but its middle frame is a
  moved picture, not the average of the ends, so it leaves the line.
- **Fade**: a run of near-black frames (low mean and spread of luma) with picture before and
  after; the transition spans the falling and rising luma around it.

Candidates then compete: fades absorb the cuts and dissolves inside them, dissolves the cuts,
and no two boundaries stand closer than ``min_shot_seconds`` (the stronger one stays).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

_FINE = (48, 28)  # signature width, height
_COARSE = (24, 14)
_LEVEL = 128.0  # brightness the signatures are scaled to

# Cut test (levels of 0-255, on brightness-normalised signatures).
CUT_MIN_CHANGE = 3.0
CUT_RATIO = 1.6
_CONTEXT_S = 0.16  # neighbours each side whose change is the local motion level
_MOTION_FLOOR = 0.5

# Dissolve test.
DISSOLVE_MIN_CHANGE = 10.0
_HALVES_S = (0.12, 0.25, 0.5)
_MID_TOLERANCE = 0.2  # |alpha(middle) - 0.5|
_LINE_TOLERANCE = 0.25  # distance from the line, as a fraction of the ends' distance
_MIN_RAMP = 3  # frames strictly between the ends (0.1 < alpha < 0.9)

# Fade test.
DARK_LUMA = 16.0
DARK_SPREAD = 10.0
_RAMP_S = 2.0  # longest fade-out or fade-in looked at


@dataclass(frozen=True)
class Shot:
    start: int  # index of the shot's first frame (0-based, among the frames fed)
    end: int  # exclusive
    begins: str  # how it begins: "start" (the first shot), "cut", "dissolve", "fade"
    transition: int  # frames of the gradual transition before this shot (0 for a cut);
    # for a dissolve or fade, ``start`` is the middle of that transition


def one_shot(frames: int) -> list[Shot]:
    """The ``--shots none`` plan: one span for the whole video (none for no frames)."""
    return [Shot(0, frames, "start", 0)] if frames > 0 else []


@dataclass(frozen=True)
class _Candidate:
    frame: int  # first frame of the new shot
    begins: str
    transition: int
    strength: float  # how far past its test's threshold (>= 1)

    def span(self) -> tuple[int, int]:
        first = self.frame - self.transition // 2
        return first, first + self.transition


@dataclass(frozen=True)
class _Frame:
    fine: np.ndarray  # brightness-normalised 48x28 YCbCr, flattened
    coarse: np.ndarray  # 24x14 YCbCr as decoded, flattened
    coarse_norm: np.ndarray  # the same, brightness-normalised
    luma: float
    spread: float

    @property
    def dark(self) -> bool:
        return self.luma < DARK_LUMA and self.spread < DARK_SPREAD


_CENTRE = np.broadcast_to(np.float32([0.0, 128.0, 128.0]), (_FINE[1], _FINE[0], 3)).copy()


def _signature(frame: np.ndarray) -> _Frame:
    height, width = frame.shape[:2]
    small = frame
    if width > 2 * _FINE[0] and height > 2 * _FINE[1]:
        # Bilinear to twice the signature, then an exact 2x2 box average: a fifth of the cost
        # of one area resize from full size, and still an average over 16 pixels per cell.
        small = cv2.resize(frame, (2 * _FINE[0], 2 * _FINE[1]), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(small, _FINE, interpolation=cv2.INTER_AREA)
    ycc = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2YCrCb)
    mean, std = cv2.meanStdDev(ycc)
    luma, spread = float(mean[0, 0]), float(std[0, 0])
    fine = ycc.astype(np.float32)
    fine -= _CENTRE
    coarse = cv2.resize(fine, _COARSE, interpolation=cv2.INTER_AREA).reshape(-1)
    gain = _LEVEL / max(luma, DARK_LUMA)
    fine *= gain
    return _Frame(fine.reshape(-1), coarse, coarse * gain, luma, spread)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, in levels of 0-255."""
    return cv2.norm(a, b, cv2.NORM_L1) / a.size


class _Window:
    """The last frames' signatures and changes, addressed by absolute frame index."""

    def __init__(self, size: int) -> None:
        self.frames: deque[_Frame] = deque(maxlen=size)
        self.changes: deque[float] = deque(maxlen=size)  # change from the frame before
        self.count = 0

    def push(self, frame: _Frame) -> None:
        change = _distance(self.frames[-1].fine, frame.fine) if self.frames else 0.0
        self.frames.append(frame)
        self.changes.append(change)
        self.count += 1

    def first(self) -> int:
        return self.count - len(self.frames)

    def has(self, i: int) -> bool:
        return self.first() <= i < self.count

    def __getitem__(self, i: int) -> _Frame:
        return self.frames[i - self.first()]

    def change(self, i: int) -> float:
        return self.changes[i - self.first()]


class ShotDetector:
    """Streaming shot boundary detector: ``add`` every decoded frame in order (RGB uint8
    HxWx3, any size), then ``shots()``. Memory is a window of about a second of tiny
    signatures; time is about 0.1 ms per 640x360 frame on one core."""

    def __init__(self, fps: float, *, min_shot_seconds: float = 0.5) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if min_shot_seconds < 0:
            raise ValueError(f"min_shot_seconds must be >= 0, got {min_shot_seconds}")
        self.fps = float(fps)
        self._min_len = max(1, round(min_shot_seconds * fps))
        self._context = max(2, round(_CONTEXT_S * fps))
        self._halves = sorted({max(2, round(s * fps)) for s in _HALVES_S})
        self._reach = max(self._context, self._halves[-1])  # look-ahead of the tests
        self._window = _Window(2 * self._reach + 3)
        self._ramp = _FadeTracker(max(2, round(_RAMP_S * fps)))
        self._candidates: list[_Candidate] = []
        self._decided = 0  # frames whose cut and dissolve tests have run

    def add(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 HxWx3 frame, got {frame.dtype} {frame.shape}")
        signature = _signature(frame)
        self._window.push(signature)
        fade = self._ramp.push(signature.luma, signature.dark)
        if fade is not None:
            self._candidates.append(fade)
        while self._decided + self._reach < self._window.count:
            self._decide(self._decided)
            self._decided += 1

    def shots(self) -> list[Shot]:
        """The shots so far: contiguous, covering every frame fed, in order."""
        candidates = list(self._candidates)
        for t in range(self._decided, self._window.count):
            candidates.extend(self._tests(t))
        fade = self._ramp.finish()
        if fade is not None:
            candidates.append(fade)
        return _plan(self._window.count, _resolve(candidates, self._window.count, self._min_len))

    def _decide(self, t: int) -> None:
        self._candidates.extend(self._tests(t))

    def _tests(self, t: int) -> Iterator[_Candidate]:
        cut = self._cut(t)
        if cut is not None:
            yield cut
        dissolve = self._dissolve(t)
        if dissolve is not None:
            yield dissolve

    def _cut(self, t: int) -> _Candidate | None:
        """A cut between frames t-1 and t: a big change, isolated in time, that does not build
        up over the frames around it, and lasts."""
        w = self._window
        change = w.change(t) if t >= 1 else 0.0
        if change < CUT_MIN_CHANGE:
            return None
        beside = [w.change(k) for k in (t - 1, t + 1) if k >= 1 and w.has(k)]
        near = [w.change(k) for k in range(t - self._context, t + self._context + 1)
                if k != t and k >= 1 and w.has(k)]
        motion = 0.5 * (_mean(beside) + _mean(near))
        # Motion keeps going: frames two apart differ more than neighbours do. A cut does not.
        builds = _distance(w[t - 2].fine, w[t + 1].fine) / change if w.has(t - 2) and w.has(t + 1) else 1.0
        ratio = change / ((motion + _MOTION_FLOOR) * max(builds, 1.0))
        if ratio < CUT_RATIO:
            return None
        # A flash of one or two frames is not a cut: some frame before must differ from every
        # frame after, and the other way round.
        lasting = min(_distance(w[a].fine, w[b].fine) for a in range(t - 3, t) for b in range(t, t + 3)
                      if w.has(a) and w.has(b))
        strength = min(lasting / CUT_MIN_CHANGE, ratio * lasting / change / CUT_RATIO)
        return _Candidate(t, "cut", 0, strength) if strength >= 1.0 else None

    def _dissolve(self, c: int) -> _Candidate | None:
        """A dissolve centred on frame c: the window's frames lie on the line between its ends."""
        w = self._window
        best: _Candidate | None = None
        for h in self._halves:
            if not (w.has(c - h) and w.has(c + h)):
                continue
            start, end = w[c - h], w[c + h]
            change = _distance(start.coarse_norm, end.coarse_norm)
            if change < DISSOLVE_MIN_CHANGE:
                continue
            axis = end.coarse - start.coarse
            length2 = float(axis @ axis)
            alpha, off = _on_line(w[c].coarse, start.coarse, axis, length2)
            if abs(alpha - 0.5) > _MID_TOLERANCE or off > _LINE_TOLERANCE:
                continue
            frames = np.stack([w[k].coarse for k in range(c - h, c + h + 1)])
            alphas = (frames - start.coarse) @ axis / length2
            offs = np.linalg.norm(frames - start.coarse - alphas[:, None] * axis, axis=1) / np.sqrt(length2)
            ramp = int(np.count_nonzero((alphas > 0.1) & (alphas < 0.9)))
            if offs.max() > _LINE_TOLERANCE or ramp < _MIN_RAMP or np.diff(alphas).min() < -0.1:
                continue
            strength = min(change / DISSOLVE_MIN_CHANGE, _LINE_TOLERANCE / max(float(offs.max()), 1e-3))
            best = _Candidate(c, "dissolve", max(2, round(ramp / 0.8)), strength)
        return best


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _on_line(x: np.ndarray, start: np.ndarray, axis: np.ndarray, length2: float) -> tuple[float, float]:
    """Where ``x`` projects on the segment start..start+axis (0..1), and its distance from the
    line as a fraction of the segment's length."""
    rel = x - start
    alpha = float(rel @ axis) / length2
    off = float(np.linalg.norm(rel - alpha * axis)) / np.sqrt(length2)
    return alpha, off


class _FadeTracker:
    """Runs of near-black frames between pictures, with the luma ramps around them."""

    def __init__(self, longest: int) -> None:
        self._longest = longest
        self._luma: deque[float] = deque(maxlen=longest + 1)
        self._count = 0
        self._lit = False  # a picture was seen before
        self._dark_from: int | None = None
        self._fade_out_from = 0
        self._rising: tuple[int, int] | None = None  # (fade-out start, first lit frame)

    def push(self, luma: float, dark: bool) -> _Candidate | None:
        i = self._count
        self._count += 1
        done = None
        if self._rising is not None:
            first_lit = self._rising[1]
            still_rising = luma > self._luma[-1] * 1.03 + 0.5 and i - first_lit < self._longest
            if dark or not still_rising:
                done = self._fade(i)
        if dark and self._dark_from is None and self._lit:
            self._dark_from = i
            self._fade_out_from = i - self._falling()
        elif not dark and self._dark_from is not None:
            self._rising = (self._fade_out_from, i)
            self._dark_from = None
        self._lit = self._lit or not dark
        self._luma.append(luma)
        return done

    def finish(self) -> _Candidate | None:
        return self._fade(self._count) if self._rising is not None else None

    def _falling(self) -> int:
        """How many frames before this one the luma had been falling."""
        values = list(self._luma)
        k = len(values) - 1
        while k > 0 and values[k - 1] > values[k] * 1.03 + 0.5:
            k -= 1
        return len(values) - k

    def _fade(self, end: int) -> _Candidate:
        start, _ = self._rising  # type: ignore[misc]
        self._rising = None
        length = end - start
        return _Candidate(start + length // 2, "fade", length, 10.0)


_RANK = {"fade": 0, "dissolve": 1, "cut": 2}


def _resolve(candidates: list[_Candidate], n: int, min_len: int) -> list[_Candidate]:
    """Fades first, then dissolves, then cuts, each kind strongest first: a candidate stays
    unless it falls inside a transition already kept or within min_len of a kept boundary
    (or of either end of the video)."""
    kept: list[_Candidate] = []
    for c in sorted(candidates, key=lambda c: (_RANK[c.begins], -c.strength)):
        if c.frame < min_len or n - c.frame < min_len:
            continue
        if any(_overlap(c, k) or abs(c.frame - k.frame) < min_len for k in kept):
            continue
        kept.append(c)
    return sorted(kept, key=lambda c: c.frame)


def _overlap(a: _Candidate, b: _Candidate) -> bool:
    (a0, a1), (b0, b1) = a.span(), b.span()
    return a0 - 1 <= b1 and b0 - 1 <= a1


def _plan(n: int, boundaries: list[_Candidate]) -> list[Shot]:
    if n == 0:
        return []
    starts = [0] + [b.frame for b in boundaries]
    ends = starts[1:] + [n]
    kinds = [("start", 0)] + [(b.begins, b.transition) for b in boundaries]
    return [Shot(s, e, k, t) for s, e, (k, t) in zip(starts, ends, kinds)]
