"""What a synthetic render depicts: the person (Identity), the head's rigid motion (Pose),
the face's non-rigid motion (Expression) and everything else in the picture (Scene).

These are the labels of the synthetic data: plain frozen dataclasses, deterministic in their
seeds, so a clip can be re-rendered from its labels. Pose angles are degrees: yaw > 0 turns
the nose to the viewer's right, pitch > 0 tilts the face up, roll > 0 tilts the top of the
head to the viewer's right (clockwise on screen).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


HAIR_STYLES = ("short", "buzz", "fringe", "bob", "long", "bald")

_SKIN_TONES = np.array(
    [
        [0.95, 0.80, 0.70],
        [0.89, 0.70, 0.58],
        [0.80, 0.58, 0.44],
        [0.68, 0.47, 0.33],
        [0.52, 0.34, 0.23],
        [0.38, 0.24, 0.16],
    ]
)
_HAIR_COLORS = np.array(
    [
        [0.07, 0.05, 0.04],
        [0.17, 0.11, 0.07],
        [0.32, 0.20, 0.11],
        [0.45, 0.22, 0.10],
        [0.72, 0.57, 0.36],
        [0.58, 0.57, 0.55],
    ]
)
_EYE_COLORS = np.array(
    [
        [0.30, 0.17, 0.08],
        [0.16, 0.09, 0.05],
        [0.27, 0.42, 0.62],
        [0.28, 0.42, 0.27],
        [0.45, 0.34, 0.15],
        [0.42, 0.47, 0.52],
    ]
)

Color = tuple[float, float, float]


def _color(rgb: np.ndarray) -> Color:
    r, g, b = (round(float(v), 4) for v in np.clip(rgb, 0.0, 1.0))
    return (r, g, b)


@dataclass(frozen=True)
class Identity:
    """Who is rendered: face shape, colours and hair, all drawn from ``seed``."""

    seed: int
    face_width: float
    face_height: float
    jaw: float
    chin: float
    skin: Color
    hair_style: str
    hair_color: Color
    brow_color: Color
    eye_color: Color
    lip_color: Color
    nose_size: float
    nose_width: float
    brow_thickness: float
    brow_arch: float
    lip_fullness: float
    eye_size: float
    eye_spacing: float
    ear_size: float
    hairline: float

    @classmethod
    def from_seed(cls, seed: int) -> Identity:
        rng = np.random.default_rng([int(seed), 0x1D])
        tone = rng.uniform(0.0, len(_SKIN_TONES) - 1)
        lo = int(tone)
        hi = min(lo + 1, len(_SKIN_TONES) - 1)
        skin = _SKIN_TONES[lo] + (tone - lo) * (_SKIN_TONES[hi] - _SKIN_TONES[lo])
        skin = skin * rng.uniform(0.95, 1.04) + rng.normal(0.0, 0.012, 3)
        hair = _HAIR_COLORS[rng.integers(len(_HAIR_COLORS))] * rng.uniform(0.85, 1.15)
        # Brows darker than the hair so fair-haired faces still have visible brows.
        brow = np.minimum(hair * 0.8, [0.35, 0.25, 0.17]) + 0.02
        eye = _EYE_COLORS[rng.integers(len(_EYE_COLORS))] * rng.uniform(0.85, 1.15)
        lip = skin * np.array([0.86, 0.62, 0.62]) * rng.uniform(0.85, 1.0)
        style = str(rng.choice(HAIR_STYLES, p=[0.27, 0.12, 0.15, 0.18, 0.2, 0.08]))
        return cls(
            seed=int(seed),
            face_width=round(float(rng.uniform(0.92, 1.08)), 4),
            face_height=round(float(rng.uniform(0.95, 1.05)), 4),
            jaw=round(float(rng.uniform(0.0, 1.0)), 4),
            chin=round(float(rng.uniform(0.0, 1.0)), 4),
            skin=_color(skin),
            hair_style=style,
            hair_color=_color(hair),
            brow_color=_color(brow),
            eye_color=_color(eye),
            lip_color=_color(lip),
            nose_size=round(float(rng.uniform(0.8, 1.2)), 4),
            nose_width=round(float(rng.uniform(0.85, 1.2)), 4),
            brow_thickness=round(float(rng.uniform(0.75, 1.3)), 4),
            brow_arch=round(float(rng.uniform(0.0, 1.0)), 4),
            lip_fullness=round(float(rng.uniform(0.75, 1.25)), 4),
            eye_size=round(float(rng.uniform(0.92, 1.08)), 4),
            eye_spacing=round(float(rng.uniform(0.26, 0.3)), 4),
            ear_size=round(float(rng.uniform(0.9, 1.12)), 4),
            hairline=round(float(rng.uniform(0.62, 0.74)), 4),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pose:
    """Rigid head motion. ``tx``/``ty`` move the head by that fraction of the image's short side
    (ty > 0 is down); ``scale`` multiplies the nominal head size."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0


@dataclass(frozen=True)
class Expression:
    """Non-rigid face motion: ``mouth_open`` and ``blink`` in [0, 1], ``smile`` and
    ``brow_raise`` in [-1, 1] (negative: frown, lowered brows)."""

    mouth_open: float = 0.0
    smile: float = 0.0
    blink: float = 0.0
    brow_raise: float = 0.0


@dataclass(frozen=True)
class Scene:
    """What is not the person: lighting, clothes and the background, drawn from ``seed``."""

    seed: int
    light: tuple[float, float, float]
    key: float
    fill: float
    ambient: float
    shirt: Color
    backdrop: tuple[Color, Color, Color]

    @classmethod
    def from_seed(cls, seed: int) -> Scene:
        rng = np.random.default_rng([int(seed), 0x5C])
        azimuth = rng.uniform(-0.6, 0.6)
        elevation = rng.uniform(0.15, 0.6)
        light = np.array([np.sin(azimuth), np.sin(elevation), np.cos(azimuth) * 1.2])
        light /= np.linalg.norm(light)
        base = rng.uniform(0.15, 0.85, 3)
        backdrop = (
            _color(base),
            _color(base * rng.uniform(0.55, 0.9) + rng.normal(0, 0.05, 3)),
            _color(rng.uniform(0.1, 0.9, 3)),
        )
        return cls(
            seed=int(seed),
            light=(float(light[0]), float(light[1]), float(light[2])),
            key=round(float(rng.uniform(0.62, 0.8)), 4),
            fill=round(float(rng.uniform(0.12, 0.25)), 4),
            ambient=round(float(rng.uniform(0.3, 0.4)), 4),
            shirt=_color(rng.uniform(0.08, 0.8, 3)),
            backdrop=backdrop,
        )
