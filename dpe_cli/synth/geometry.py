"""The synthetic head's meshes in head space, from an identity and an expression.

The head is a triangle mesh (a radial union of a cranium and a jaw ellipsoid, displaced by
nose, brow ridge, eye sockets, cheeks, lips and chin), with ears, a hair shell, optional long
hair, a neck and shoulders. Expressions deform the mesh (jaw drop, mouth corners, brows); the
curves shared with painting (mouth line, hairline) live here so both agree on where they are.

Head space: x to the viewer's right, y up, z towards the camera; the head is about 1.8 units
tall. Rotation conventions are those of :class:`~dpe_cli.synth.params.Pose`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from dpe_cli.synth.params import Expression, Identity

HEAD_CENTRE = np.array([0.0, 0.02, -0.12])  # centre of the head's radial parameterisation
PIVOT = np.array([0.0, -0.45, -0.25])  # rotation centre: top of the neck
MOUTH_Y = -0.4
EYE_Y = 0.12
PART_HEAD, PART_EAR, PART_HAIR, PART_NECK, PART_TORSO = range(5)


def smoothstep(e0: float | np.ndarray, e1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Smoothstep from e0 to e1 (e1 < e0 gives a falling edge)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    """An axis-aligned Gaussian bump at (cx, cy): the profile of most facial features."""
    return np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation (degrees, conventions of :class:`~dpe_cli.synth.params.Pose`)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rp = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rr = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rr @ ry @ rp


class Mesh(NamedTuple):
    """One part of the person in head space; ``part`` tells painting which material it is."""

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


def vertex_normals(pos: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (bincount is much faster than np.add.at here)."""
    p0, p1, p2 = pos[tris[:, 0]], pos[tris[:, 1]], pos[tris[:, 2]]
    fn = np.cross(p1 - p0, p2 - p0)
    idx = tris.ravel()
    n = np.stack([np.bincount(idx, np.repeat(fn[:, k], 3), minlength=len(pos)) for k in range(3)], -1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.astype(np.float32)


def _ellipsoid_radius(d: np.ndarray, centre: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Distance from HEAD_CENTRE along unit directions d to an ellipsoid that contains HEAD_CENTRE."""
    q = d / axes
    m = (HEAD_CENTRE - centre) / axes
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
    ridge_h = ridge_h * smoothstep(0.2, 0.08, y)
    ridge = ridge_h * np.exp(-((x / (nw * (0.04 + 0.03 * along))) ** 2))
    nose = (
        ridge
        + 0.03 * ns * gauss(x, y, 0.0, tip_y, 0.05 * nw, 0.04)
        + 0.045 * ns * gauss(ax, y, 0.068 * nw, bottom_y + 0.02, 0.032, 0.03)
    )
    lips = ident.lip_fullness * (
        0.03 * gauss(x, y, 0.0, MOUTH_Y + 0.022, 0.17, 0.028)
        + 0.034 * gauss(x, y, 0.0, MOUTH_Y - 0.032, 0.15, 0.03)
    )
    return (
        nose
        + lips
        + 0.035 * gauss(x, y, 0.0, 0.27, 0.42, 0.07) * smoothstep(0.56, 0.4, ax)  # brow ridge
        - 0.075 * gauss(ax, y, es, EYE_Y + 0.01, 0.15, 0.085)  # eye sockets
        + 0.045 * gauss(ax, y, es, EYE_Y, 0.1, 0.05)  # eyeballs
        + 0.035 * gauss(ax, y, 0.4, -0.04, 0.14, 0.12)  # cheekbones
        - 0.018 * gauss(x, y, 0.0, MOUTH_Y - 0.1, 0.12, 0.025)  # groove under the lower lip
        + (0.03 + 0.035 * ident.chin) * gauss(x, y, 0.0, -0.62, 0.13, 0.08)  # chin
        - 0.03 * gauss(ax, y, 0.6, 0.3, 0.1, 0.15)  # temples
    )


class Head(NamedTuple):
    """The undeformed head mesh of one identity at one resolution (cached: a clip builds it once)."""

    rest: np.ndarray  # (N, 3)
    relief: np.ndarray  # (N,) outward displacement, to paint nostrils and cavities
    tris: np.ndarray
    landmarks: np.ndarray  # (5,) vertex indices: eyes, nose tip, mouth corners
    face: np.ndarray  # indices of the vertices that make up the face box


@functools.lru_cache(maxsize=64)
def rest_head(ident: Identity, n: int) -> Head:
    d = _sphere_dirs(n, n)
    base = HEAD_CENTRE + _skull(ident, d)[:, None] * d
    front = smoothstep(0.05, 0.5, d[:, 2])
    relief = _face_relief(ident, base[:, 0], base[:, 1]) * front
    rest = base + relief[:, None] * d
    es, corner = ident.eye_spacing, 0.19 * (0.9 + 0.1 * ident.lip_fullness)
    targets = [(-es, EYE_Y), (es, EYE_Y), (0.0, -0.17), (-corner, MOUTH_Y), (corner, MOUTH_Y)]
    front_idx = np.flatnonzero(d[:, 2] > 0.3)
    landmarks = [front_idx[np.argmin(np.hypot(rest[front_idx, 0] - x, rest[front_idx, 1] - y))] for x, y in targets]
    landmarks[2] = front_idx[np.argmax(rest[front_idx, 2] - 5.0 * np.abs(rest[front_idx, 0]))]
    face = np.flatnonzero((d[:, 2] > 0.15) & (rest[:, 1] < 0.45) & (np.abs(rest[:, 0]) < 0.58))
    return Head(rest.astype(np.float32), relief.astype(np.float32), _grid_tris(n, n, wrap=True),
                 np.array(landmarks), face)


def mouth_geometry(ident: Identity, expr: Expression, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mouth half-width coordinate u, mouth line y and opening height at each x (head space)."""
    half = 0.19 * (0.9 + 0.1 * ident.lip_fullness) * (1.0 + 0.12 * max(expr.smile, 0.0))
    u = x / half
    inside = np.clip(1.0 - u * u, 0.0, 1.0)
    line = MOUTH_Y + 0.035 * expr.smile * np.minimum(u * u, 1.0) - 0.008 * expr.smile
    opening = 0.2 * expr.mouth_open * inside**0.6
    return u, inside, line, opening


def deform(ident: Identity, expr: Expression, p: np.ndarray) -> np.ndarray:
    """Expression deformation of rest head vertices: mouth corners, jaw drop, brows."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    front = smoothstep(-0.1, 0.3, z)
    _, _, line, opening = mouth_geometry(ident, expr, x)
    out = p.copy()
    # Smile/frown: move the skin around the corners so the painted mouth line sits on it.
    near = gauss(np.zeros_like(x), y, 0.0, MOUTH_Y, 1.0, 0.1) * smoothstep(0.55, 0.3, np.abs(x)) * front
    out[:, 1] += (line - MOUTH_Y) * near
    smile = max(expr.smile, 0.0)
    out[:, 0] += 0.025 * smile * np.sign(x) * gauss(np.abs(x), y, 0.2, MOUTH_Y, 0.12, 0.1) * front
    out[:, 2] += 0.02 * smile * gauss(np.abs(x), y, 0.3, -0.22, 0.1, 0.08) * front
    # Jaw drop: just under the mouth line the lower lip follows the opening curve, further
    # down the whole jaw moves (less towards the jaw angles).
    if expr.mouth_open > 0:
        below = smoothstep(0.0, 0.012, MOUTH_Y - y)
        jaw = 0.2 * expr.mouth_open * (1.0 - 0.5 * smoothstep(0.2, 0.65, np.abs(x)))
        blend = smoothstep(0.0, 0.14, MOUTH_Y - y)
        drop = below * ((1.0 - blend) * opening + blend * jaw) * smoothstep(-0.4, 0.0, z)
        out[:, 1] -= drop
        out[:, 2] -= 0.3 * drop
    # Brows: lift (or lower) the forehead skin above the eyes.
    lift = expr.brow_raise * 0.045 * smoothstep(0.02, 0.2, y) * smoothstep(0.75, 0.35, y) * smoothstep(0.6, 0.3, np.abs(x))
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


def azimuth(p: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(p[..., 0], p[..., 2] - HEAD_CENTRE[2]))


def _above_hairline(ident: Identity, p: np.ndarray) -> np.ndarray:
    """How far (in y) a head point is inside the hair, negative on bare skin; the hairline
    gets a slight irregular wave."""
    theta = azimuth(p)
    wave = 0.01 * np.sin(np.radians(theta) * 7.0 + ident.seed % 7)
    above = p[:, 1] + wave - _hairline(ident, theta)
    if ident.hair_style == "bald":  # only a fringe of hair round the back and sides
        above = np.minimum(above, 0.38 - p[:, 1])
    return above


def hair_mask(ident: Identity, p: np.ndarray, soft: float) -> np.ndarray:
    """1 where the scalp is covered with hair, with a soft edge of about ``soft`` units."""
    return smoothstep(-soft, soft, _above_hairline(ident, p))


_HAIR = {  # style: (shell thickness, curtain bottom y or None)
    "short": (0.045, None),
    "buzz": (0.012, None),
    "fringe": (0.06, -0.55),
    "bob": (0.06, -0.6),
    "long": (0.055, -1.5),
    "bald": (0.012, None),
}


def _hair_meshes(ident: Identity, n: int) -> list[Mesh]:
    """The hair shell: the skull pushed out where hair grows and sunk under the skin elsewhere,
    so the visible hairline is where the two surfaces cross, resolved per pixel by the z-buffer
    (no stair-steps from cutting the mesh along grid cells)."""
    thick, bottom = _HAIR[ident.hair_style]
    d = _sphere_dirs(n, n)
    base = HEAD_CENTRE + _skull(ident, d)[:, None] * d
    above = _above_hairline(ident, base)
    volume = thick * (0.7 + 0.5 * np.clip(base[:, 1], 0.0, 1.0))
    height = np.where(above > 0, volume * np.clip(above / 0.12, 0.0, 1.0), 0.06 * np.clip(above / 0.03, -1.0, 0.0))
    pos = base + height[:, None] * d
    tris = _grid_tris(n, n, wrap=True)
    tris = tris[(above[tris] > -0.05).any(axis=1)]
    meshes = [_mesh(pos, tris, np.zeros((len(pos), 2)), PART_HAIR)]
    if bottom is not None:
        meshes += _curtain(ident, thick, bottom, max(n // 2, 24))
    return meshes


def _curtain(ident: Identity, thick: float, bottom: float, n: int) -> list[Mesh]:
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
    outer = _mesh(pos, tris, np.zeros((len(pos), 2)), PART_HAIR)
    inner = outer._replace(normal=-outer.normal, tris=tris[:, ::-1])
    return [outer, inner]


def _mesh(pos: np.ndarray, tris: np.ndarray, aux: np.ndarray, part: int) -> Mesh:
    pos = pos.astype(np.float32)
    return Mesh(pos, vertex_normals(pos, tris), aux.astype(np.float32), tris.astype(np.int32), part)


def _ellipsoid_mesh(centre: np.ndarray, axes: np.ndarray, rot: np.ndarray, n: int, part: int) -> Mesh:
    phi = np.linspace(-np.pi / 2, np.pi / 2, n)
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    ph, th = np.meshgrid(phi, theta, indexing="ij")
    local = np.stack([np.cos(ph) * np.sin(th), np.sin(ph), np.cos(ph) * np.cos(th)], -1).reshape(-1, 3)
    pos = centre + (local * axes) @ rot.T
    return _mesh(pos, _grid_tris(n, n, wrap=True), local[:, :2], part)


def _neck(ident: Identity, n: int) -> Mesh:
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    yy, tt = np.meshgrid(np.linspace(-1.35, -0.25, 8), theta, indexing="ij")
    r = 0.36 * ident.face_width
    pos = np.stack([r * np.sin(tt), yy, -0.22 + 0.9 * r * np.cos(tt)], -1).reshape(-1, 3)
    return _mesh(pos, _grid_tris(8, n, wrap=True), np.zeros((len(pos), 2)), PART_NECK)


def _torso(n: int) -> Mesh:
    """Shoulders and chest: elliptic cross-sections that widen from the neck to the arms."""
    theta = np.linspace(-np.pi, np.pi, n + 1)[:-1]
    top = -1.0
    ys = np.concatenate([np.linspace(-6.0, top - 0.46, 6), np.linspace(top - 0.4, top, n // 2)])
    yy, tt = np.meshgrid(ys, theta, indexing="ij")
    t = np.clip((top - yy) / 0.4, 0.0, 1.0)
    half_w = 0.37 + 1.0 * np.sin(0.5 * np.pi * t)
    depth = 0.33 + 0.2 * np.sqrt(t)
    pos = np.stack([half_w * np.sin(tt), yy, -0.22 - 0.1 * t + depth * np.cos(tt)], -1).reshape(-1, 3)
    return _mesh(pos, _grid_tris(len(ys), n, wrap=True), np.zeros((len(pos), 2)), PART_TORSO)


@functools.lru_cache(maxsize=64)
def body(ident: Identity, n: int) -> tuple[list[Mesh], Mesh, Mesh]:
    """Static parts: (moving with the head, the neck, the torso)."""
    ears = []
    for side in (-1.0, 1.0):
        rot = rotation(side * 70.0, 0.0, side * -8.0)
        centre = np.array([side * (0.68 * ident.face_width - 0.02), 0.04, -0.2])
        axes = np.array([0.1, 0.17, 0.035]) * ident.ear_size
        ears.append(_ellipsoid_mesh(centre, axes, rot, 16, PART_EAR))
    return ears + _hair_meshes(ident, n), _neck(ident, 32), _torso(48)


def lod(pixels_per_unit: float) -> int:
    """Mesh resolution so that face triangles stay about two render pixels wide."""
    return int(np.clip(np.ceil(pixels_per_unit / 1.7 / 16.0) * 16, 48, 208))
