"""What each visible point of the person looks like: albedo, occlusion and gloss, then light.

Eyes, lids, brows, lips and the mouth interior are painted per fragment from analytic curves
in head space, so they stay sharp whatever the mesh resolution; :func:`shade` lights the result
(wrapped Lambert + fill + ambient + Blinn specular) with the scene's lights.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dpe_cli.synth.geometry import (
    EYE_Y,
    MOUTH_Y,
    PART_EAR,
    PART_HAIR,
    PART_NECK,
    azimuth,
    gauss,
    hair_mask,
    mouth_geometry,
    smoothstep,
)
from dpe_cli.synth.params import Color, Expression, Identity, Scene


class Paint(NamedTuple):
    """The surface of a set of fragments, before light: what :func:`shade` needs."""

    albedo: np.ndarray  # (K, 3)
    occlusion: np.ndarray  # (K,) multiplies all light
    spec: np.ndarray  # (K,) specular strength
    shine: np.ndarray  # (K,) Blinn exponent
    normal: np.ndarray | None  # (K, 3) head-space normal override (eyeballs), NaN where unused


def paint_head(ident: Identity, expr: Expression, p: np.ndarray, relief: np.ndarray, aa: float) -> Paint:
    """Skin, eyes, brows, lips, mouth and scalp hair, from deformed head-space points."""
    n = len(p)
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    skin = np.asarray(ident.skin, np.float32)
    # Low-frequency skin variation and warmer cheeks/nose keep the face from looking flat.
    mottle = 1.0 + 0.025 * np.sin(x * 23.0 + 1.3) * np.sin(y * 19.0 + 0.7)
    albedo = skin * mottle[:, None]
    warm = 0.5 * gauss(ax, y, 0.36, -0.12, 0.13, 0.1) + 0.35 * gauss(x, y, 0.0, -0.15, 0.06, 0.06)
    albedo = albedo * (1.0 - 0.1 * warm[:, None] * np.array([0.0, 1.0, 0.8], np.float32))
    occl = np.ones(n, np.float32)
    spec = np.full(n, 0.08, np.float32)
    shine = np.full(n, 12.0, np.float32)
    normal = np.full((n, 3), np.nan, np.float32)
    # Cavities (eye sockets, under the brow) get less ambient light.
    occl *= 1.0 - 0.35 * gauss(ax, y, ident.eye_spacing, EYE_Y + 0.03, 0.14, 0.07) * (z > 0)
    # Nostrils: dark holes on the underside of the nose.
    nostril = gauss(ax, y, 0.04 * ident.nose_width, -0.215, 0.022, 0.011) * smoothstep(0.04, 0.08, relief)
    albedo *= 1.0 - 0.85 * nostril[:, None]
    front = z > -0.05

    def sub(mask: np.ndarray) -> np.ndarray:
        return np.flatnonzero(mask & front)

    paint = Paint(albedo, occl, spec, shine, normal)
    # Features are evaluated only where they can appear: cheap, and no stray tails elsewhere.
    _paint_eyes(ident, expr, p, aa, sub((np.abs(ax - ident.eye_spacing) < 0.17) & (np.abs(y - EYE_Y) < 0.11)), paint)
    _paint_brows(ident, expr, p, aa, sub((ax < 0.52) & (y > 0.12) & (y < 0.5)), paint)
    _paint_mouth(ident, expr, p, aa, sub((ax < 0.35) & (y < MOUTH_Y + 0.12) & (y > MOUTH_Y - 0.35)), paint)
    hair = hair_mask(ident, p, 2 * aa)
    albedo = albedo * (1 - hair[:, None]) + _hair_albedo(ident, p) * hair[:, None]
    return paint._replace(albedo=albedo, spec=spec * (1 - hair) + 0.1 * hair)


def _paint_eyes(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: Paint) -> None:
    """Almond eye openings whose upper lid drops with ``blink``, over a shiny eyeball."""
    x, y = p[idx, 0], p[idx, 1]
    side = np.sign(x)
    es, size = ident.eye_spacing, ident.eye_size
    half_w = 0.12 * size
    u = (np.abs(x) - es) / half_w  # -1 inner corner, +1 outer corner
    inside = np.clip(1.0 - u * u, 0.0, 1.0)
    centre = EYE_Y + 0.012 * u
    upper = centre + 0.055 * size * inside**0.6
    lower = centre - 0.036 * size * inside**0.8
    lid = lower + (upper - lower) * (1.0 - expr.blink)
    open_ = smoothstep(-aa, aa, lid - y) * smoothstep(-aa, aa, y - lower) * smoothstep(1.0, 0.97, np.abs(u))
    # Eyeball: sclera, iris, pupil, shaded under the upper lid and towards the corners.
    ex = side * es
    r = np.hypot(x - ex, y - EYE_Y)
    iris_r = 0.05 * size
    sclera = np.array([0.93, 0.9, 0.86]) * (1.0 - 0.25 * np.abs(u)[:, None] ** 2)
    streak = 1.0 + 0.18 * np.sin(np.arctan2(y - EYE_Y, x - ex) * 14.0)
    iris = np.asarray(ident.eye_color) * streak[:, None] * (1.0 - 0.55 * smoothstep(0.7, 1.0, r / iris_r))[:, None]
    iris_m = smoothstep(iris_r + aa, iris_r - aa, r)
    pupil_m = smoothstep(0.42 * iris_r + aa, 0.42 * iris_r - aa, r)
    ball = sclera * (1 - iris_m[:, None]) + iris * iris_m[:, None]
    ball = ball * (1 - pupil_m[:, None]) + 0.03 * pupil_m[:, None]
    ball = ball * (1.0 - 0.45 * smoothstep(0.025, 0.0, lid - y))[:, None]
    # Eyelid skin, the crease above it and dark lash lines.
    skin = paint.albedo[idx]
    crease = gauss(np.zeros_like(y), y - upper - 0.03, 0.0, 0.0, 1.0, 0.008) * inside
    on_lid = smoothstep(-aa, aa, y - lid) * smoothstep(aa, -aa, y - upper - 0.035) * inside
    lidskin = skin * (1.0 - 0.2 * crease - 0.08 * on_lid)[:, None]
    lash_w = 0.005 + 0.005 * (0.5 + 0.5 * u) + 0.004 * expr.blink
    lash = smoothstep(lash_w + aa, lash_w - aa, np.abs(y - lid)) * smoothstep(1.08, 0.95, np.abs(u))
    lower_lash = 0.5 * smoothstep(0.004 + aa, 0.004 - aa, np.abs(y - lower)) * smoothstep(1.0, 0.9, np.abs(u))
    out = lidskin * (1 - open_[:, None]) + ball * open_[:, None]
    out = out * (1 - lash[:, None]) + 0.05 * lash[:, None]
    out = out * (1 - 0.5 * lower_lash[:, None])
    paint.albedo[idx] = out
    paint.spec[idx] = paint.spec[idx] * (1 - open_) + 0.7 * open_
    paint.shine[idx] = paint.shine[idx] * (1 - open_) + 80.0 * open_
    paint.occlusion[idx] = paint.occlusion[idx] * (1 - open_) + open_ * 1.1
    # The eyeball is rounder than the lid skin: its own normals give the catchlight.
    nb = np.stack([(x - ex) / 0.16, (y - EYE_Y) / 0.16, np.ones_like(x)], -1)
    nb /= np.linalg.norm(nb, axis=1, keepdims=True)
    use = open_ > 0.01
    paint.normal[idx[use]] = nb[use]


def _paint_brows(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: Paint) -> None:
    """Tapered, arched brows with a hint of hair strokes; raised, or lowered and knitted."""
    x, y = p[idx, 0], p[idx, 1]
    ax = np.abs(x)
    v = (ax - 0.07) / 0.4  # 0 at the inner end, 1 at the tail
    raise_ = expr.brow_raise
    inner = 1.0 - np.clip(v, 0.0, 1.0)
    centre = (
        EYE_Y + 0.135
        + ident.brow_arch * 0.045 * np.sin(np.pi * np.clip(v, 0, 1) * 0.85)
        - 0.03 * np.clip(v, 0, 1) ** 2
        + 0.05 * raise_
        + 0.02 * min(raise_, 0.0) * inner
    )
    half = ident.brow_thickness * (0.017 * inner + 0.007)
    band = smoothstep(half + aa, half - aa, np.abs(y - centre)) * smoothstep(-0.03, 0.0, v) * smoothstep(1.02, 0.96, v)
    strokes = 0.8 + 0.2 * np.sin(ax * 260.0 + y * 120.0)
    m = (band * strokes)[:, None]
    paint.albedo[idx] = paint.albedo[idx] * (1 - m) + np.asarray(ident.brow_color) * m


def _paint_mouth(ident: Identity, expr: Expression, p: np.ndarray, aa: float, idx: np.ndarray, paint: Paint) -> None:
    """Lips around the mouth line, and the opening between them: dark inside, upper teeth,
    tongue; smiling adds nasolabial folds."""
    x, y = p[idx, 0], p[idx, 1]
    u, inside, line, opening = mouth_geometry(ident, expr, x)
    full = ident.lip_fullness
    bow = 1.0 - 0.35 * np.exp(-((x / 0.035) ** 2))
    upper_top = line + 0.042 * full * inside**0.5 * bow
    lower_top = line - opening
    lower_bot = lower_top - 0.05 * full * inside**0.45
    in_x = smoothstep(1.0, 0.985, np.abs(u))
    upper = smoothstep(-aa, aa, upper_top - y) * smoothstep(-aa, aa, y - line) * in_x
    lower = smoothstep(-aa, aa, lower_top - y) * smoothstep(-aa, aa, y - lower_bot) * in_x
    hole = smoothstep(-aa, aa, line - y) * smoothstep(-aa, aa, y - lower_top) * in_x
    lip_col = np.asarray(ident.lip_color)
    # Lips: the upper one darker towards the meeting line.
    shade_u = 0.85 + 0.15 * np.clip((y - line) / np.maximum(upper_top - line, 1e-4), 0.0, 1.0)
    lips = (upper * shade_u + lower)[:, None] * lip_col
    # Mouth interior: dark, upper teeth below the upper lip, tongue at the bottom.
    depth = np.clip((line - y) / np.maximum(opening, 1e-4), 0.0, 1.0)
    teeth_h = np.minimum(0.04, opening * 0.6)
    teeth = smoothstep(teeth_h + aa, teeth_h - aa, line - y) * (opening > 0.02) * smoothstep(0.85, 0.6, np.abs(u))
    gaps = 1.0 - 0.15 * smoothstep(0.8, 1.0, np.cos(x * 95.0) ** 16)
    tongue = smoothstep(0.55, 0.95, depth) * smoothstep(0.8, 0.3, np.abs(u))
    interior = np.array([0.12, 0.03, 0.04]) * (1.0 - 0.5 * inside)[:, None]
    interior = interior * (1 - tongue[:, None]) + np.array([0.45, 0.16, 0.16]) * tongue[:, None]
    interior = interior * (1 - teeth[:, None]) + (np.array([0.86, 0.83, 0.76]) * gaps[:, None]) * teeth[:, None]
    seam = smoothstep(0.006 + aa, 0.0, np.abs(y - line)) * in_x * (1 - hole)
    cover = np.clip(upper + lower, 0.0, 1.0)
    out = paint.albedo[idx] * (1 - cover - hole)[:, None] + lips + interior * hole[:, None]
    out *= (1.0 - 0.6 * seam)[:, None]
    # Shadowed corners and, when smiling, folds from the nose to the corners.
    corners = gauss(np.abs(u), y - line, 1.0, 0.0, 0.08, 0.015)
    fold_x = 0.1 + 0.6 * (-0.2 - y)
    fold = max(expr.smile, 0.0) * np.exp(-(((np.abs(x) - fold_x) / 0.014) ** 2)) * smoothstep(-0.17, -0.24, y) * smoothstep(
        MOUTH_Y - 0.08, MOUTH_Y - 0.01, y)
    out *= (1.0 - 0.35 * corners - 0.25 * fold)[:, None]
    paint.albedo[idx] = out
    paint.occlusion[idx] = paint.occlusion[idx] * (1 - hole) + hole * 0.7
    paint.spec[idx] = paint.spec[idx] * (1 - cover) + 0.25 * cover
    paint.shine[idx] = paint.shine[idx] * (1 - cover) + 30.0 * cover


def _hair_albedo(ident: Identity, p: np.ndarray) -> np.ndarray:
    """Hair colour with fine streaks running down from the crown."""
    theta = np.radians(azimuth(p))
    streak = 0.88 + 0.12 * np.sin(theta * 90.0 + np.sin(p[:, 1] * 7.0) * 2.0)
    return np.asarray(ident.hair_color, np.float32) * streak[:, None]


def paint_part(ident: Identity, part: int, p: np.ndarray, aux: np.ndarray, shirt: Color) -> Paint:
    """Ears, hair, neck (shadowed under the jaw) and the shirt."""
    n = len(p)
    skin = np.asarray(ident.skin, np.float32)
    occl = np.ones(n, np.float32)
    spec = np.full(n, 0.06, np.float32)
    shine = np.full(n, 10.0, np.float32)
    if part == PART_EAR:
        r = np.hypot(aux[:, 0] / 0.7, aux[:, 1] / 0.75)
        albedo = skin * (1.0 - 0.3 * smoothstep(0.9, 0.5, r))[:, None] * np.array([1.0, 0.93, 0.92])
    elif part == PART_HAIR:
        albedo = _hair_albedo(ident, p)
        spec[:] = 0.1
    elif part == PART_NECK:
        under_jaw = smoothstep(-0.8, -0.4, p[:, 1])
        albedo = skin * 0.95
        occl = 1.0 - 0.5 * under_jaw
    else:
        # A darker collar band where the shirt meets the neck.
        collar = smoothstep(0.5, 0.44, np.hypot(p[:, 0], p[:, 2] + 0.22)) * smoothstep(-1.2, -1.1, p[:, 1])
        albedo = np.asarray(shirt, np.float32) * (1.0 - 0.3 * collar)[:, None]
        spec[:] = 0.02
    return Paint(np.broadcast_to(albedo, (n, 3)), occl, spec, shine, None)



def shade(paint: Paint, normal: np.ndarray, scene: Scene) -> np.ndarray:
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
