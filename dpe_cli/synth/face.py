"""Procedural talking-head renderer: identity, pose and expression parameters in, RGB out.

The head is a triangle mesh (a radial union of a cranium and a jaw ellipsoid, displaced by
nose, brow ridge, eye sockets, cheeks, lips and chin), with ears, a hair shell, optional long
hair, a neck and shoulders. Expressions deform the mesh (jaw drop, mouth corners, brows);
eyes, lids, brows, lips and the mouth interior are painted per pixel from analytic curves in
head space, so they stay sharp whatever the mesh resolution. A small z-buffer rasterizer in
numpy draws everything at twice the output size, shades it (wrapped Lambert + fill + ambient
+ Blinn specular) and the result is area-downsampled, which anti-aliases edges.

Everything is deterministic in the seeds, so a clip can be re-rendered from its labels.

Head space: x to the viewer's right, y up, z towards the camera; the head is about 1.8 units
tall. Pose angles are degrees: yaw > 0 turns the nose to the viewer's right, pitch > 0 tilts
the face up, roll > 0 tilts the top of the head to the viewer's right (clockwise on screen).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

HAIR_STYLES = ("short", "buzz", "fringe", "bob", "long", "bald")

# Screen size of one head unit at pose.scale == 1, as a fraction of the crop side.
CROP_UNIT = 0.31
# Screen size of one head unit at pose.scale == 1 in full frames, as a fraction of min(W, H).
FRAME_UNIT = 0.22

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


class Rendering(NamedTuple):
    """An image and where the face landed in it (output pixel coordinates)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: np.ndarray  # (5, 2): right eye, left eye (viewer's), nose tip, mouth corners


# --------------------------------------------------------------------------- small maths


def _ss(e0: float | np.ndarray, e1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Smoothstep from e0 to e1 (e1 < e0 gives a falling edge)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation (degrees, conventions in the module docstring)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rp = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rr = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rr @ ry @ rp


# --------------------------------------------------------------------------- geometry

_C0 = np.array([0.0, 0.02, -0.12])  # centre of the head's radial parameterisation
_PIVOT = np.array([0.0, -0.45, -0.25])  # rotation centre: top of the neck
_MOUTH_Y = -0.4
_EYE_Y = 0.12
_PART_HEAD, _PART_EAR, _PART_HAIR, _PART_NECK, _PART_TORSO = range(5)


class _Mesh(NamedTuple):
    pos: np.ndarray  # (N, 3) float32
    normal: np.ndarray  # (N, 3) float32
    aux: np.ndarray  # (N, 2) float32: head: (relief, 0); ears: ellipsoid (u, v); else unused
    tris: np.ndarray  # (M, 3) int32
    part: int


def _grid_tris(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Two triangles per grid cell, counter-clockwise seen from outside (+phi up, +theta right)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols if wrap else cols - 1), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    tris = np.stack([np.stack([a, b, e], -1), np.stack([a, e, d], -1)], -2)
    return tris.reshape(-1, 3).astype(np.int32)


def _vertex_normals(pos: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (bincount is much faster than np.add.at here)."""
    p0, p1, p2 = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
    fn = np.cross(p1 - p0, p2 - p0)
    idx = tris.ravel()
    n = np.stack([np.bincount(idx, np.repeat(fn[:, k], 3), minlength=len(pos)) for k in range(3)], -1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


def _ellipsoid_radius(d: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Distance from _C0 along unit directions d to an ellipsoid that contains _C0."""
    q = d / axes
    m = (_C0 - centre) / axes
    qq = np.einsum("ij,ij->i", q, q)
    mq = q @ m
    return (-mq + np.sqrt(mq * mq - qq * (m @ m - 1.0))) / qq


def _warp(n: int, knots_in: list[float], knots_out: list[float]) -> np.ndarray:
    """n samples whose density is concentrated where knots_out is stretched (the face)."""
    return np.interp(np.linspace(0.0, 1.0, n), knots_in, knots_out)


def _sphere_dirs(rows: int, cols: int) -> np.ndarray:
    """Unit directions on a latitude/longitude grid, about 70% of it spent on the face."""
    phi = np.radians(_warp(rows, [0, 0.12, 0.86, 1], [-90, -62, 48, 90]))
    theta = np.radians(_warp(cols + 1, [0, 0.16, 0.84, 1], [-180, -78, 78, 180])[:-1])
    ph, th = np.meshgrid(phi, theta, indexing="ij")
    d = np.stack([np.cos(ph) * np.sin(th), np.sin(ph), np.cos(ph) * np.cos(th)], -1)
    return d.reshape(-1, 3)


def _skull(ident: Identity, d: np.ndarray) -> np.ndarray:
    """Radius of the undisplaced head along directions d: a smooth union of cranium and jaw."""
    fw, fh = ident.face_width, ident.face_height
    cranium = _ellipsoid_radius(d, np.array([0.0, 0.2, -0.2]), np.array([0.7 * fw, 0.86 * fh, 0.86]))
    jaw_w = (0.5 + 0.1 * ident.jaw) * fw
    jaw_h = (0.5 + 0.05 * ident.chin) * fh
    jaw = _ellipsoid_radius(d, np.array([0.0, -0.24, -0.02]), np.array([jaw_w, jaw_h, 0.62]))
    # Polynomial smooth maximum: a rounded crease where the two surfaces meet.
    blend = 0.12
    h = np.maximum(blend - np.abs(cranium - jaw), 0.0) / blend
    return np.maximum(cranium, jaw) + h * h * blend / 4.0


def _face_relief(ident: Identity, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Outward displacement of the face surface over the frontal (x, y) plane."""
    ax = np.abs(x)
    es = ident.eye_spacing
    ns, nw = ident.nose_size, ident.nose_width
    tip_y, bottom_y = -0.16, -0.215
    along = np.clip((0.1 - y) / (0.1 - tip_y), 0.0, 1.0)
    ridge_h = ns * (0.025 + 0.13 * along**1.4)
    ridge_h = np.where(y < tip_y, ridge_h * np.exp(-(((y - tip_y) / 0.038) ** 2)), ridge_h)
    ridge_h = ridge_h * _ss(0.2, 0.08, y)
    ridge = ridge_h * np.exp(-((x / (nw * (0.04 + 0.03 * along))) ** 2))
    nose = (
        ridge
        + 0.03 * ns * _gauss(x, y, 0.0, tip_y, 0.05 * nw, 0.04)
        + 0.045 * ns * _gauss(ax, y, 0.068 * nw, bottom_y + 0.02, 0.032, 0.03)
    )
    lips = ident.lip_fullness * (
        0.03 * _gauss(x, y, 0.0, _MOUTH_Y + 0.022, 0.17, 0.028)
        + 0.034 * _gauss(x, y, 0.0, _MOUTH_Y - 0.032, 0.15, 0.03)
    )
    return (
        nose
        + lips
        + 0.035 * _gauss(x, y, 0.0, 0.27, 0.42, 0.07) * _ss(0.56, 0.4, ax)  # brow ridge
        - 0.075 * _gauss(ax, y, es, _EYE_Y + 0.01, 0.15, 0.085)  # eye sockets
        + 0.045 * _gauss(ax, y, es, _EYE_Y, 0.1, 0.05)  # eyeballs
        + 0.035 * _gauss(ax, y, 0.4, -0.04, 0.14, 0.12)  # cheekbones
        - 0.018 * _gauss(x, y, 0.0, _MOUTH_Y - 0.1, 0.12, 0.025)  # groove under the lower lip
        + (0.03 + 0.035 * ident.chin) * _gauss(x, y, 0.0, -0.62, 0.13, 0.08)  # chin
        - 0.03 * _gauss(ax, y, 0.6, 0.3, 0.1, 0.15)  # temples
    )


class _Head(NamedTuple):
    rest: np.ndarray  # (N, 3)
    relief: np.ndarray  # (N,) outward displacement, to paint nostrils and cavities
    tris: np.ndarray
    landmarks: np.ndarray  # (5,) vertex indices: eyes, nose tip, mouth corners
    face: np.ndarray  # indices of the vertices that make up the face box


@functools.lru_cache(maxsize=64)
def _head(ident: Identity, n: int) -> _Head:
    d = _sphere_dirs(n, n)
    base = _C0 + _skull(ident, d)[:, None] * d
    front = _ss(0.05, 0.5, d[:, 2])
    relief = _face_relief(ident, base[:, 0], base[:, 1]) * front
    rest = base + relief[:, None] * d
    es, corner = ident.eye_spacing, 0.19 * (0.9 + 0.1 * ident.lip_fullness)
    targets = [(-es, _EYE_Y), (es, _EYE_Y), (0.0, -0.17), (-corner, _MOUTH_Y), (corner, _MOUTH_Y)]
    front_idx = np.flatnonzero(d[:, 2] > 0.3)
    landmarks = [front_idx[np.argmin(np.hypot(rest[front_idx, 0] - x, rest[front_idx, 1] - y))] for x, y in targets]
    landmarks[2] = front_idx[np.argmax(rest[front_idx, 2] - 5.0 * np.abs(rest[front_idx, 0]))]
    face = np.flatnonzero((d[:, 2] > 0.15) & (rest[:, 1] < 0.45) & (np.abs(rest[:, 0]) < 0.58))
    return _Head(rest.astype(np.float32), relief.astype(np.float32), _grid_tris(n, n, wrap=True),
                 np.array(landmarks), face)


def _mouth_geometry(ident: Identity, expr: Expression, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mouth half-width coordinate u, mouth line y and opening height at each x (head space)."""
    half = 0.19 * (0.9 + 0.1 * ident.lip_fullness) * (1.0 + 0.12 * max(expr.smile, 0.0))
    u = x / half
    inside = np.clip(1.0 - u * u, 0.0, 1.0)
    line = _MOUTH_Y + 0.035 * expr.smile * np.minimum(u * u, 1.0) - 0.008 * expr.smile
    opening = 0.2 * expr.mouth_open * inside**0.6
    return u, inside, line, opening


def _deform(ident: Identity, expr: Expression, p: np.ndarray) -> np.ndarray:
    """Expression deformation of rest head vertices: mouth corners, jaw drop, brows."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    front = _ss(-0.1, 0.3, z)
    _, _, line, opening = _mouth_geometry(ident, expr, x)
    out = p.copy()
    # Smile/frown: move the skin around the corners so the painted mouth line sits on it.
    near = _gauss(np.zeros_like(x), y, 0.0, _MOUTH_Y, 1.0, 0.1) * _ss(0.55, 0.3, np.abs(x)) * front
    out[:, 1] += (line - _MOUTH_Y) * near
    smile = max(expr.smile, 0.0)
    out[:, 0] += 0.025 * smile * np.sign(x) * _gauss(np.abs(x), y, 0.2, _MOUTH_Y, 0.12, 0.1) * front
    out[:, 2] += 0.02 * smile * _gauss(np.abs(x), y, 0.3, -0.22, 0.1, 0.08) * front
    # Jaw drop: just under the mouth line the lower lip follows the opening curve, further
    # down the whole jaw moves (less towards the jaw angles).
    if expr.mouth_open > 0:
        below = _ss(0.0, 0.012, _MOUTH_Y - y)
        jaw = 0.2 * expr.mouth_open * (1.0 - 0.5 * _ss(0.2, 0.65, np.abs(x)))
        blend = _ss(0.0, 0.14, _MOUTH_Y - y)
        drop = below * ((1.0 - blend) * opening + blend * jaw) * _ss(-0.4, 0.0, z)
        out[:, 1] -= drop
        out[:, 2] -= 0.3 * drop
    # Brows: lift (or lower) the forehead skin above the eyes.
    lift = expr.brow_raise * 0.045 * _ss(0.02, 0.2, y) * _ss(0.75, 0.35, y) * _ss(0.6, 0.3, np.abs(x))
    out[:, 1] += lift * front
    return out


def _hairline(ident: Identity, theta_deg: np.ndarray) -> np.ndarray:
    """Height above which the scalp is hair, by azimuth around the head (0 = front)."""
    knots = [0, 50, 75, 88, 100, 125, 180]  # front, temple, sideburn, ear, behind ear, nape
    hl = ident.hairline
    if ident.hair_style == "fringe":
        heights = [0.4, 0.43, 0.3, 0.05, 0.32, -0.4, -0.45]
    elif ident.hair_style == "bald":  # above the top of the head in front: no hair there
        heights = [2.0, 2.0, 2.0, 0.1, 0.3, -0.35, -0.4]
    else:
        heights = [hl, hl + 0.08, 0.36, 0.05, 0.32, -0.4, -0.45]
    return np.interp(np.abs(theta_deg), knots, heights)


def _azimuth(p: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(p[..., 0], p[..., 2] - _C0[2]))


def _above_hairline(ident: Identity, p: np.ndarray) -> np.ndarray:
    """How far (in y) a head point is inside the hair, negative on bare skin; the hairline
    gets a slight irregular wave."""
    theta = _azimuth(p)
    wave = 0.01 * np.sin(np.radians(theta) * 7.0 + ident.seed % 7)
    above = p[:, 1] + wave - _hairline(ident, theta)
    if ident.hair_style == "bald":  # only a fringe of hair round the back and sides
        above = np.minimum(above, 0.38 - p[:, 1])
    return above


def _hair_mask(ident: Identity, p: np.ndarray, soft: float) -> np.ndarray:
    """1 where the scalp is covered with hair, with a soft edge of about ``soft`` units."""
    return _ss(-soft, soft, _above_hairline(ident, p))


_HAIR = {  # style: (shell thickness, curtain bottom y or None)
    "short": (0.045, None),
    "buzz": (0.012, None),
    "fringe": (0.06, -0.55),
    "bob": (0.06, -0.6),
    "long": (0.055, -1.5),
    "bald": (0.012, None),
}


def _hair_meshes(ident: Identity, n: int) -> list[_Mesh]:
    """The hair shell: the skull pushed out where hair grows and sunk under the skin elsewhere,
    so the visible hairline is where the two surfaces cross, resolved per pixel by the z-buffer
    (no stair-steps from cutting the mesh along grid cells)."""
    thick, bottom = _HAIR[ident.hair_style]
    d = _sphere_dirs(n, n)
    base = _C0 + _skull(ident, d)[:, None] * d
    above = _above_hairline(ident, base)
    volume = thick * (0.7 + 0.5 * np.clip(base[:, 1], 0.0, 1.0))
    height = np.where(above > 0, volume * np.clip(above / 0.12, 0.0, 1.0), 0.06 * np.clip(above / 0.03, -1.0, 0.0))
    pos = base + height[:, None] * d
    tris = _grid_tris(n, n, wrap=True)
    tris = tris[(above[tris] > -0.05).any(axis=1)]
    meshes = [_mesh(pos, tris, np.zeros((len(pos), 2)), _PART_HAIR)]
    if bottom is not None:
        meshes += _curtain(ident, thick, bottom, max(n // 2, 24))
    return meshes


def _curtain(ident: Identity, thick: float, bottom: float, n: int) -> list[_Mesh]:
    """Hair hanging round the back of the head, following the cranium above its widest line
    and falling straight (slightly flared) below it; drawn from both sides."""
    theta = np.radians(np.linspace(80.0, 280.0, n))
    top, equator = 0.8, 0.2
    yy, tt = np.meshgrid(np.linspace(bottom, top, n), theta, indexing="ij")
    above = np.sqrt(np.clip(1.0 - ((yy - equator) / 0.86) ** 2, 0.0, 1.0))
    shape = np.where(yy > equator, above, 1.0)
    flare = 0.12 * np.clip((equator - yy) / (equator - bottom), 0.0, 1.0) ** 2
    hem = 0.04 * np.sin(tt * 9.0) * (yy < bottom + 1e-6)
    rx = (0.7 * ident.face_width + 0.8 * thick) * shape + flare
    rz = (0.86 + 0.8 * thick) * shape + flare
    pos = np.stack([rx * np.sin(tt), yy + hem, -0.2 + rz * np.cos(tt)], -1).reshape(-1, 3)
    tris = _grid_tris(n, n, wrap=False)
    outer = _mesh(pos, tris, np.zeros((len(pos), 2)), _PART_HAIR)
    inner = outer._replace(normal=-outer.normal, tris=tris[:, ::-1])
    return [outer, inner]


def _mesh(pos: np.ndarray, tris: np.ndarray, aux: np.ndarray, part: int) -> _Mesh:
    pos = pos.astype(np.float32)
    return _Mesh(pos, _vertex_normals(pos, tris), aux.astype(np.float32), tris.astype(np.int32), part)


def _ellipsoid_mesh(centre: np.ndarray, axes: np.ndarray, rot: np.ndarray, n: int, part: int) -> _Mesh:
    phi = np.linspace(-np.pi / 2, np.pi / 2, n)
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    ph, th = np.meshgrid(phi, theta, indexing="ij")
    local = np.stack([np.cos(ph) * np.sin(th), np.sin(ph), np.cos(ph) * np.cos(th)], -1).reshape(-1, 3)
    pos = centre + (local * axes) @ rot.T
    return _mesh(pos, _grid_tris(n, n, wrap=True), local[:, :2], part)


def _neck(ident: Identity, n: int) -> _Mesh:
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    yy, tt = np.meshgrid(np.linspace(-1.35, -0.25, 8), theta, indexing="ij")
    r = 0.36 * ident.face_width
    pos = np.stack([r * np.sin(tt), yy, -0.22 + 0.9 * r * np.cos(tt)], -1).reshape(-1, 3)
    return _mesh(pos, _grid_tris(8, n, wrap=True), np.zeros((len(pos), 2)), _PART_NECK)


def _torso(n: int) -> _Mesh:
    """Shoulders and chest: elliptic cross-sections that widen from the neck to the arms."""
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    top = -1.0
    ys = np.concatenate([np.linspace(-6.0, top - 0.46, 6), np.linspace(top - 0.4, top, n // 2)])
    yy, tt = np.meshgrid(ys, theta, indexing="ij")
    t = np.clip((top - yy) / 0.4, 0.0, 1.0)
    half_w = 0.37 + 1.0 * np.sin(0.5 * np.pi * t)
    depth = 0.33 + 0.2 * np.sqrt(t)
    pos = np.stack([half_w * np.sin(tt), yy, -0.22 - 0.1 * t + depth * np.cos(tt)], -1).reshape(-1, 3)
    return _mesh(pos, _grid_tris(len(ys), n, wrap=True), np.zeros((len(pos), 2)), _PART_TORSO)


@functools.lru_cache(maxsize=64)
def _body(ident: Identity, n: int) -> tuple[list[_Mesh], _Mesh, _Mesh]:
    """Static parts: (moving with the head, the neck, the torso)."""
    ears = []
    for side in (-1.0, 1.0):
        rot = rotation(side * 70.0, 0.0, side * -8.0)
        centre = np.array([side * (0.68 * ident.face_width - 0.02), 0.04, -0.2])
        axes = np.array([0.1, 0.17, 0.035]) * ident.ear_size
        ears.append(_ellipsoid_mesh(centre, axes, rot, 16, _PART_EAR))
    return ears + _hair_meshes(ident, n), _neck(ident, 32), _torso(48)


def _lod(pixels_per_unit: float) -> int:
    """Mesh resolution so that face triangles stay about two render pixels wide."""
    return int(np.clip(np.ceil(pixels_per_unit / 1.7 / 16.0) * 16, 48, 208))


# --------------------------------------------------------------------------- rasterizer


class _Fragments(NamedTuple):
    pix: np.ndarray  # (K,) flat pixel index of each covered pixel
    tri: np.ndarray  # (K,) triangle index
    bary: np.ndarray  # (K, 3) barycentric weights


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i repeated counts[i] times: (i, 0..counts[i]-1)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - start[owner]


def _rasterize(xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, w: int, h: int) -> _Fragments:
    """Z-buffered, back-face-culled scan conversion of all triangles at once.

    Barycentric weights and depth are affine in the pixel centre, so each (triangle, row) pair
    gets its exact covered x-range from the three edge inequalities and only covered pixels
    are generated; np.minimum.at then keeps the nearest fragment per pixel.
    """
    v0, v1, v2 = xy[tris[:, 0]], xy[tris[:, 1]], xy[tris[:, 2]]
    e1, e2 = v1 - v0, v2 - v0
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # < 0: front-facing (image y points down)
    y0 = np.ceil(np.minimum(np.minimum(v0[:, 1], v1[:, 1]), v2[:, 1]) - 0.5)
    y1 = np.floor(np.maximum(np.maximum(v0[:, 1], v1[:, 1]), v2[:, 1]) - 0.5)
    y0, y1 = np.maximum(y0, 0).astype(np.int32), np.minimum(y1, h - 1).astype(np.int32)
    keep = np.flatnonzero((area < -1e-6) & (y1 >= y0))
    a = area[keep]
    ax, ay = v0[keep, 0], v0[keep, 1]
    e1x, e1y, e2x, e2y = e1[keep, 0], e1[keep, 1], e2[keep, 0], e2[keep, 1]
    d0 = depth[tris[keep, 0]]
    dz1, dz2 = depth[tris[keep, 1]] - d0, depth[tris[keep, 2]] - d0
    # Plane equations in pixel-centre coordinates (b = kx * xc + ky * yc + k0) for b1, b2, z.
    b1k = [e2y / a, -e2x / a, (ay * e2x - ax * e2y) / a]
    b2k = [-e1y / a, e1x / a, (ax * e1y - ay * e1x) / a]
    zk = [b1k[i] * dz1 + b2k[i] * dz2 for i in range(3)]
    zk[2] = zk[2] + d0
    planes = np.stack(b1k + b2k + zk, -1).astype(np.float32)
    tri, row = _expand(y1[keep] - y0[keep] + 1)
    py = y0[keep][tri] + row
    yc = py.astype(np.float32) + 0.5
    k = planes[tri]
    # Along the row each weight is alpha * xc + beta; all three must be >= 0 (b0 = 1 - b1 - b2).
    b1a, b1b = k[:, 0], k[:, 1] * yc + k[:, 2]
    b2a, b2b = k[:, 3], k[:, 4] * yc + k[:, 5]
    lo = np.zeros(len(tri), np.float32)
    hi = np.full(len(tri), w, np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for alpha, beta in ((b1a, b1b), (b2a, b2b), (-b1a - b2a, 1.0 - b1b - b2b)):
            bound = -beta / alpha
            lo = np.where(alpha > 0, np.maximum(lo, bound), lo)
            hi = np.where(alpha < 0, np.minimum(hi, bound), hi)
            hi = np.where((alpha == 0) & (beta < 0), -1.0, hi)
    xl = np.ceil(lo - 0.501).astype(np.int32)
    xr = np.minimum(np.floor(hi - 0.499), w - 1).astype(np.int32)
    span, off = _expand(np.maximum(xr - xl + 1, 0))
    px = xl[span] + off
    xc = px.astype(np.float32) + 0.5
    z = k[span, 6] * xc + (k[:, 7] * yc + k[:, 8])[span]
    pix = py[span] * w + px
    zbuf = np.full(w * h, np.inf, np.float32)
    np.minimum.at(zbuf, pix, z)
    win = np.flatnonzero(z <= zbuf[pix])
    # Exact depth ties leave several winners per pixel: the last one written counts.
    frag = np.full(w * h, -1, np.int32)
    frag[pix[win]] = win
    uniq = np.flatnonzero(frag >= 0)
    win = frag[uniq]
    # Weights only for the visible fragments.
    row, xc = span[win], xc[win]
    b1 = np.clip(b1a[row] * xc + b1b[row], 0.0, 1.0)
    b2 = np.clip(b2a[row] * xc + b2b[row], 0.0, 1.0)
    bary = np.stack([np.clip(1.0 - b1 - b2, 0.0, 1.0), b1, b2], -1)
    return _Fragments(uniq, keep[tri[row]], bary)


# --------------------------------------------------------------------------- painting


class _Paint(NamedTuple):
    albedo: np.ndarray  # (K, 3)
    occlusion: np.ndarray  # (K,) multiplies all light
    spec: np.ndarray  # (K,) specular strength
    shine: np.ndarray  # (K,) Blinn exponent
    normal: np.ndarray | None  # (K, 3) head-space normal override (eyeballs), NaN where unused


def _paint_head(ident: Identity, expr: Expression, p: np.ndarray, relief: np.ndarray, aa: float) -> _Paint:
    """Skin, eyes, brows, lips, mouth and scalp hair, from deformed head-space points."""
    n = len(p)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    skin = np.asarray(ident.skin, np.float32)
    # Low-frequency skin variation and warmer cheeks/nose keep the face from looking flat.
    mottle = 1.0 + 0.025 * np.sin(x * 23.0 + 1.3) * np.sin(y * 19.0 + 0.7)
    albedo = skin * mottle[:, None]
    warm = 0.5 * _gauss(ax, y, 0.36, -0.12, 0.13, 0.1) + 0.35 * _gauss(x, y, 0.0, -0.15, 0.06, 0.06)
    albedo = albedo * (1.0 - 0.1 * warm[:, None] * np.array([0.0, 1.0, 0.8], np.float32))
    occl = np.ones(n, np.float32)
    spec = np.full(n, 0.08, np.float32)
    shine = np.full(n, 12.0, np.float32)
    normal = np.full((n, 3), np.nan, np.float32)
    # Cavities (eye sockets, under the brow) get less ambient light.
    occl *= 1.0 - 0.35 * _gauss(ax, y, ident.eye_spacing, _EYE_Y + 0.03, 0.14, 0.07) * (z > 0)
    # Nostrils: dark holes on the underside of the nose.
    nostril = _gauss(ax, y, 0.04 * ident.nose_width, -0.215, 0.022, 0.011) * _ss(0.04, 0.08, relief)
    albedo *= 1.0 - 0.85 * nostril[:, None]
    front = z > -0.05

    def sub(mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask & front)

    paint = _Paint(albedo, occl, spec, shine, normal)
    # Features are evaluated only where they can appear: cheap, and no stray tails elsewhere.
    _paint_eyes(ident, expr, p, aa, sub((np.abs(ax - ident.eye_spacing) < 0.17) & (np.abs(y - _EYE_Y) < 0.11)), paint)
    _paint_brows(ident, expr, p, aa, sub((ax < 0.52) & (y > 0.12) & (y < 0.5)), paint)
    _paint_mouth(ident, expr, p, aa, sub((ax < 0.35) & (y < _MOUTH_Y + 0.12) & (y > _MOUTH_Y - 0.35)), paint)
    hair = _hair_mask(ident, p, 2 * aa)
    albedo = albedo * (1 - hair[:, None]) + _hair_albedo(ident, p) * hair[:, None]
    return paint._replace(albedo=albedo, spec=spec * (1 - hair) + 0.1 * hair)


def _paint_eyes(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: _Paint) -> None:
    """Almond eye openings whose upper lid drops with ``blink``, over a shiny eyeball."""
    x, y = p[idx, 0], p[idx, 1]
    side = np.sign(x)
    es, size = ident.eye_spacing, ident.eye_size
    half_w = 0.12 * size
    u = (np.abs(x) - es) / half_w  # -1 inner corner, +1 outer corner
    inside = np.clip(1.0 - u * u, 0.0, 1.0)
    centre = _EYE_Y + 0.012 * u
    upper = centre + 0.055 * size * inside**0.6
    lower = centre - 0.036 * size * inside**0.8
    lid = lower + (upper - lower) * (1.0 - expr.blink)
    open_ = _ss(-aa, aa, lid - y) * _ss(-aa, aa, y - lower) * _ss(1.0, 0.97, np.abs(u))
    # Eyeball: sclera, iris, pupil, shaded under the upper lid and towards the corners.
    ex = side * es
    r = np.hypot(x - ex, y - _EYE_Y)
    iris_r = 0.05 * size
    sclera = np.array([0.93, 0.9, 0.86]) * (1.0 - 0.25 * np.abs(u)[:, None] ** 2)
    streak = 1.0 + 0.18 * np.sin(np.arctan2(y - _EYE_Y, x - ex) * 14.0)
    iris = np.asarray(ident.eye_color) * streak[:, None] * (1.0 - 0.55 * _ss(0.7, 1.0, r / iris_r))[:, None]
    iris_m = _ss(iris_r + aa, iris_r - aa, r)
    pupil_m = _ss(0.42 * iris_r + aa, 0.42 * iris_r - aa, r)
    ball = sclera * (1 - iris_m[:, None]) + iris * iris_m[:, None]
    ball = ball * (1 - pupil_m[:, None]) + 0.03 * pupil_m[:, None]
    ball = ball * (1.0 - 0.45 * _ss(0.025, 0.0, lid - y))[:, None]
    # Eyelid skin, the crease above it and dark lash lines.
    skin = paint.albedo[idx]
    crease = _gauss(np.zeros_like(y), y - upper - 0.03, 0.0, 0.0, 1.0, 0.008) * inside
    on_lid = _ss(-aa, aa, y - lid) * _ss(aa, -aa, y - upper - 0.035) * inside
    lidskin = skin * (1.0 - 0.2 * crease - 0.08 * on_lid)[:, None]
    lash_w = 0.005 + 0.005 * (0.5 + 0.5 * u) + 0.004 * expr.blink
    lash = _ss(lash_w + aa, lash_w - aa, np.abs(y - lid)) * _ss(1.08, 0.95, np.abs(u))
    lower_lash = 0.5 * _ss(0.004 + aa, 0.004 - aa, np.abs(y - lower)) * _ss(1.0, 0.9, np.abs(u))
    out = lidskin * (1 - open_[:, None]) + ball * open_[:, None]
    out = out * (1 - lash[:, None]) + 0.05 * lash[:, None]
    out = out * (1 - 0.5 * lower_lash[:, None])
    paint.albedo[idx] = out
    paint.spec[idx] = paint.spec[idx] * (1 - open_) + 0.7 * open_
    paint.shine[idx] = paint.shine[idx] * (1 - open_) + 80.0 * open_
    paint.occlusion[idx] = paint.occlusion[idx] * (1 - open_) + open_ * 1.1
    # The eyeball is rounder than the lid skin: its own normals give the catchlight.
    nb = np.stack([(x - ex) / 0.16, (y - _EYE_Y) / 0.16, np.ones_like(x)], -1)
    nb /= np.linalg.norm(nb, axis=1, keepdims=True)
    use = open_ > 0.01
    paint.normal[idx[use]] = nb[use]


def _paint_brows(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: _Paint) -> None:
    """Tapered, arched brows with a hint of hair strokes; raised, or lowered and knitted."""
    x, y = p[idx, 0], p[idx, 1]
    ax = np.abs(x)
    v = (ax - 0.07) / 0.4  # 0 at the inner end, 1 at the tail
    raise_ = expr.brow_raise
    inner = 1.0 - np.clip(v, 0.0, 1.0)
    centre = (
        _EYE_Y + 0.135
        + ident.brow_arch * 0.045 * np.sin(np.pi * np.clip(v, 0, 1) * 0.85)
        - 0.03 * np.clip(v, 0, 1) ** 2
        + 0.05 * raise_
        + 0.02 * min(raise_, 0.0) * inner
    )
    half = ident.brow_thickness * (0.017 * inner + 0.007)
    band = _ss(half + aa, half - aa, np.abs(y - centre)) * _ss(-0.03, 0.0, v) * _ss(1.02, 0.96, v)
    strokes = 0.8 + 0.2 * np.sin(ax * 260.0 + y * 120.0)
    m = (band * strokes)[:, None]
    paint.albedo[idx] = paint.albedo[idx] * (1 - m) + np.asarray(ident.brow_color) * m


def _paint_mouth(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: _Paint) -> None:
    """Lips around the mouth line, and the opening between them: dark inside, upper teeth,
    tongue; smiling adds nasolabial folds."""
    x, y = p[idx, 0], p[idx, 1]
    u, inside, line, opening = _mouth_geometry(ident, expr, x)
    full = ident.lip_fullness
    bow = 1.0 - 0.35 * np.exp(-((x / 0.035) ** 2))
    upper_top = line + 0.042 * full * inside**0.5 * bow
    lower_top = line - opening
    lower_bot = lower_top - 0.05 * full * inside**0.45
    in_x = _ss(1.0, 0.985, np.abs(u))
    upper = _ss(-aa, aa, upper_top - y) * _ss(-aa, aa, y - line) * in_x
    lower = _ss(-aa, aa, lower_top - y) * _ss(-aa, aa, y - lower_bot) * in_x
    hole = _ss(-aa, aa, line - y) * _ss(-aa, aa, y - lower_top) * in_x
    lip_col = np.asarray(ident.lip_color)
    # Lips: the upper one darker towards the meeting line.
    shade_u = 0.85 + 0.15 * np.clip((y - line) / np.maximum(upper_top - line, 1e-4), 0.0, 1.0)
    lips = (upper * shade_u + lower)[:, None] * lip_col
    # Mouth interior: dark, upper teeth below the upper lip, tongue at the bottom.
    depth = np.clip((line - y) / np.maximum(opening, 1e-4), 0.0, 1.0)
    teeth_h = np.minimum(0.04, opening * 0.6)
    teeth = _ss(teeth_h + aa, teeth_h - aa, line - y) * (opening > 0.02) * _ss(0.85, 0.6, np.abs(u))
    gaps = 1.0 - 0.15 * _ss(0.8, 1.0, np.cos(x * 95.0) ** 16)
    tongue = _ss(0.55, 0.95, depth) * _ss(0.8, 0.3, np.abs(u))
    interior = np.array([0.12, 0.03, 0.04]) * (1.0 - 0.5 * inside)[:, None]
    interior = interior * (1 - tongue[:, None]) + np.array([0.45, 0.16, 0.16]) * tongue[:, None]
    interior = interior * (1 - teeth[:, None]) + (np.array([0.86, 0.83, 0.76]) * gaps[:, None]) * teeth[:, None]
    seam = _ss(0.006 + aa, 0.0, np.abs(y - line)) * in_x * (1 - hole)
    cover = np.clip(upper + lower, 0.0, 1.0)
    out = paint.albedo[idx] * (1 - cover - hole)[:, None] + lips + interior * hole[:, None]
    out *= (1.0 - 0.6 * seam)[:, None]
    # Shadowed corners and, when smiling, folds from the nose to the corners.
    corners = _gauss(np.abs(u), y - line, 1.0, 0.0, 0.08, 0.015)
    fold_x = 0.1 + 0.6 * (-0.2 - y)
    fold = max(expr.smile, 0.0) * np.exp(-(((np.abs(x) - fold_x) / 0.014) ** 2)) * _ss(-0.17, -0.24, y) * _ss(
        _MOUTH_Y - 0.08, _MOUTH_Y - 0.01, y)
    out *= (1.0 - 0.35 * corners - 0.25 * fold)[:, None]
    paint.albedo[idx] = out
    paint.occlusion[idx] = paint.occlusion[idx] * (1 - hole) + hole * 0.7
    paint.spec[idx] = paint.spec[idx] * (1 - cover) + 0.25 * cover
    paint.shine[idx] = paint.shine[idx] * (1 - cover) + 30.0 * cover


def _hair_albedo(ident: Identity, p: np.ndarray) -> np.ndarray:
    """Hair colour with fine streaks running down from the crown."""
    theta = np.radians(_azimuth(p))
    streak = 0.88 + 0.12 * np.sin(theta * 90.0 + np.sin(p[:, 1] * 7.0) * 2.0)
    return np.asarray(ident.hair_color, np.float32) * streak[:, None]


def _paint_part(ident: Identity, part: int, p: np.ndarray, aux: np.ndarray, shirt: Color) -> _Paint:
    """Ears, hair, neck (shadowed under the jaw) and the shirt."""
    n = len(p)
    skin = np.asarray(ident.skin, np.float32)
    occl = np.ones(n, np.float32)
    spec = np.full(n, 0.06, np.float32)
    shine = np.full(n, 10.0, np.float32)
    if part == _PART_EAR:
        r = np.hypot(aux[:, 0] / 0.7, aux[:, 1] / 0.75)
        albedo = skin * (1.0 - 0.3 * _ss(0.9, 0.5, r))[:, None] * np.array([1.0, 0.93, 0.92])
    elif part == _PART_HAIR:
        albedo = _hair_albedo(ident, p)
        spec[:] = 0.1
    elif part == _PART_NECK:
        under_jaw = _ss(-0.8, -0.4, p[:, 1])
        albedo = skin * 0.95
        occl = 1.0 - 0.5 * under_jaw
    else:
        # A darker collar band where the shirt meets the neck.
        collar = _ss(0.5, 0.44, np.hypot(p[:, 0], p[:, 2] + 0.22)) * _ss(-1.2, -1.1, p[:, 1])
        albedo = np.asarray(shirt, np.float32) * (1.0 - 0.3 * collar)[:, None]
        spec[:] = 0.02
    return _Paint(np.broadcast_to(albedo, (n, 3)), occl, spec, shine, None)


# --------------------------------------------------------------------------- rendering


def _shade(paint: _Paint, normal: np.ndarray, scene: Scene) -> np.ndarray:
    """Wrapped Lambert key light (soft, skin-like falloff), a fill from the other side,
    ambient scaled by occlusion, and a Blinn highlight (Schlick's rational form of the power,
    which avoids a transcendental per pixel)."""
    normal = normal / np.sqrt(np.maximum(np.einsum("ij,ij->i", normal, normal), 1e-12))[:, None]
    light = np.asarray(scene.light, np.float32)
    fill = np.array([-light[0], 0.1, 1.0], np.float32)
    fill /= np.linalg.norm(fill)
    half = light + np.array([0.0, 0.0, 1.0], np.float32)
    half /= np.linalg.norm(half)
    wrap = 0.25
    key = np.clip((normal @ light + wrap) / (1 + wrap), 0.0, None)
    fil = np.clip(normal @ fill, 0.0, None)
    cos_h = np.clip(normal @ half, 0.0, 1.0)
    spec = paint.spec * cos_h / (paint.shine - paint.shine * cos_h + cos_h)
    diffuse = (scene.ambient + scene.key * key + scene.fill * fil) * paint.occlusion
    return paint.albedo * diffuse[:, None] + (spec * scene.key)[:, None]


def _placement(pose: Pose, width: int, height: int, unit: float) -> tuple[float, float, float]:
    short = min(width, height)
    return width / 2 + pose.tx * short, height / 2 + pose.ty * short, unit * pose.scale * short


def _to_screen(p: np.ndarray, rot: np.ndarray, cx: float, cy: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    cam = (p - _PIVOT) @ rot.T + _PIVOT
    xy = np.stack([cx + s * cam[:, 0], cy - s * cam[:, 1]], -1)
    return xy.astype(np.float32), (-s * cam[:, 2]).astype(np.float32)


def _draw_person(
    ident: Identity, pose: Pose, expr: Expression, scene: Scene,
    width: int, height: int, cx: float, cy: float, s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The person on a (height, width) canvas: rgb (H, W, 3) float, coverage (H, W), the five
    landmarks (5, 2) and the face box, in canvas pixels. (cx, cy) is where the head-space
    origin lands at zero rotation and s is pixels per head unit."""
    n = _lod(s)
    head = _head(ident, n)
    ride, neck, torso = _body(ident, n)
    rot = rotation(pose.yaw, pose.pitch, pose.roll)
    rot_neck = rotation(0.4 * pose.yaw, 0.3 * pose.pitch, 0.5 * pose.roll)
    head_pos = _deform(ident, expr, head.rest)
    head_mesh = _Mesh(head_pos, _vertex_normals(head_pos, head.tris),
                      np.stack([head.relief, np.zeros_like(head.relief)], -1), head.tris, _PART_HEAD)
    parts = [(head_mesh, rot)] + [(m, rot) for m in ride] + [(neck, rot_neck), (torso, np.eye(3))]
    xys, depths, tris, owners, attrs = [], [], [], [], []
    offset = 0
    for i, (mesh, r) in enumerate(parts):
        xy, depth = _to_screen(mesh.pos, r, cx, cy, s)
        xys.append(xy)
        depths.append(depth)
        tris.append(mesh.tris + offset)
        owners.append(np.full(len(mesh.tris), i, np.int16))
        attrs.append(np.concatenate([mesh.pos, mesh.normal @ r.T.astype(np.float32), mesh.aux], 1))
        offset += len(mesh.pos)
    all_tris = np.concatenate(tris)
    frags = _rasterize(np.concatenate(xys), np.concatenate(depths), all_tris, width, height)
    attr = np.concatenate(attrs)
    a = np.einsum("kj,kjc->kc", frags.bary, attr[all_tris[frags.tri]])
    owner = np.concatenate(owners)[frags.tri]
    order = np.argsort(owner, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=len(parts)))])
    k = len(owner)
    albedo = np.empty((k, 3), np.float32)
    occl, spec, shine = (np.empty(k, np.float32) for _ in range(3))
    normal = a[:, 3:6]
    aa = 0.75 / s
    for i, (mesh, r) in enumerate(parts):
        sel = order[bounds[i]:bounds[i + 1]]
        p, aux = a[sel, 0:3], a[sel, 6:8]
        if mesh.part == _PART_HEAD:
            paint = _paint_head(ident, expr, p, aux[:, 0], aa)
            eye = np.flatnonzero(~np.isnan(paint.normal[:, 0]))
            normal[sel[eye]] = paint.normal[eye] @ r.T.astype(np.float32)
        else:
            paint = _paint_part(ident, mesh.part, p, aux, scene.shirt)
        albedo[sel], occl[sel], spec[sel], shine[sel] = paint.albedo, paint.occlusion, paint.spec, paint.shine
    rgb = np.zeros((width * height, 3), np.float32)
    alpha = np.zeros(width * height, np.float32)
    rgb[frags.pix] = _shade(_Paint(albedo, occl, spec, shine, None), normal, scene)
    alpha[frags.pix] = 1.0
    fxy, _ = _to_screen(head_pos[head.face], rot, cx, cy, s)
    box = (float(fxy[:, 0].min()), float(fxy[:, 1].min()), float(fxy[:, 0].max()), float(fxy[:, 1].max()))
    lm, _ = _to_screen(head_pos[head.landmarks], rot, cx, cy, s)
    return rgb.reshape(height, width, 3), alpha.reshape(height, width), lm, box


@functools.lru_cache(maxsize=2)
def _backdrop(scene: Scene, width: int, height: int) -> np.ndarray:
    """A soft backdrop: vertical gradient, a few blurred shapes and light grain (cached: a
    clip draws it once)."""
    rng = np.random.default_rng([scene.seed, 0xB6])
    top, bottom, accent = (np.asarray(c, np.float32) for c in scene.backdrop)
    short = min(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / short
    t = np.clip(yy * short / height, 0, 1)[..., None]
    img = top * (1 - t) + bottom * t
    for _ in range(4):
        c = rng.uniform(-0.2, 1.2, 2) * [width / short, height / short]
        r = rng.uniform(0.15, 0.5, 2)
        ang = rng.uniform(0, np.pi)
        dx, dy = xx - c[0], yy - c[1]
        u = (dx * np.cos(ang) + dy * np.sin(ang)) / r[0]
        v = (-dx * np.sin(ang) + dy * np.cos(ang)) / r[1]
        if rng.random() < 0.5:
            m = _ss(1.0, 0.8, np.hypot(u, v))
        else:
            m = _ss(1.0, 0.9, np.maximum(np.abs(u), np.abs(v)))
        col = np.clip(accent * rng.uniform(0.6, 1.2) + rng.normal(0, 0.08, 3), 0, 1)
        a = rng.uniform(0.25, 0.6) * m[..., None]
        img = img * (1 - a) + col * a
    img = np.clip(img + rng.normal(0.0, 0.012, (height, width, 1)), 0.0, 1.0).astype(np.float32)
    img.flags.writeable = False
    return img


def _background(scene: Scene, width: int, height: int, drift: tuple[float, float]) -> np.ndarray:
    """The scene's backdrop shifted by ``drift`` (fractions of the short side)."""
    base = _backdrop(scene, width, height)
    if drift == (0.0, 0.0):
        return base.copy()
    short = min(width, height)
    shift = np.float32([[1, 0, drift[0] * short], [0, 1, drift[1] * short]])
    return cv2.warpAffine(base, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def render(
    identity: Identity,
    pose: Pose,
    expression: Expression,
    size: tuple[int, int],
    kind: str = "crop",
    scene: Scene | None = None,
    drift: tuple[float, float] = (0.0, 0.0),
) -> Rendering:
    """Render the person on a ``size = (width, height)`` backdrop.

    ``kind`` sets the framing: "crop" is a VoxCeleb-like face crop, "full" a wider shot in which
    the head is smaller (see CROP_UNIT, FRAME_UNIT). ``drift`` shifts the backdrop by that
    fraction of the short side, so it can move slowly during a clip. The scene defaults to
    one drawn from the identity's seed.
    """
    if kind not in ("crop", "full"):
        raise ValueError(f"kind must be 'crop' or 'full', not {kind!r}")
    width, height = size
    scene = scene if scene is not None else Scene.from_seed(identity.seed)
    cx, cy, s = _placement(pose, width, height, CROP_UNIT if kind == "crop" else FRAME_UNIT)
    image = _background(scene, width, height, drift)
    # Draw the person's region at 2x and area-downsample it: that is the anti-aliasing.
    x0, y0 = max(int(np.floor(cx - 1.8 * s)), 0), max(int(np.floor(cy - 1.4 * s)), 0)
    x1, y1 = min(int(np.ceil(cx + 1.8 * s)), width), height
    lm = np.zeros((5, 2))
    box = (0.0, 0.0, 0.0, 0.0)
    if x1 > x0 and y1 > y0:
        rgb, alpha, lm2, box2 = _draw_person(
            identity, pose, expression, scene,
            2 * (x1 - x0), 2 * (y1 - y0), 2 * (cx - x0), 2 * (cy - y0), 2 * s,
        )
        rgb = cv2.resize(rgb, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
        image[y0:y1, x0:x1] = image[y0:y1, x0:x1] * (1 - alpha) + rgb * alpha
        lm = lm2 / 2 + [x0, y0]
        box = (box2[0] / 2 + x0, box2[1] / 2 + y0, box2[2] / 2 + x0, box2[3] / 2 + y0)
    out = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Rendering(out, box, lm)


def render_crop(identity: Identity, pose: Pose, expression: Expression, size: int = 256,
                scene: Scene | None = None) -> np.ndarray:
    """A square face crop (VoxCeleb-like framing), ``size`` x ``size`` RGB uint8."""
    return render(identity, pose, expression, (size, size), "crop", scene).image


def render_frame(identity: Identity, pose: Pose, expression: Expression,
                 size: tuple[int, int] = (640, 360), scene: Scene | None = None,
                 drift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A full frame (width, height) with the head somewhere inside it, RGB uint8."""
    return render(identity, pose, expression, size, "full", scene, drift).image
