"""Procedural talking-head renderer: identity, pose and expression parameters in, RGB out.

Places the head on screen, rasterises the meshes (:mod:`~dpe_cli.synth.geometry`) at twice the
output size, paints and shades the fragments (:mod:`~dpe_cli.synth.paint`), area-downsamples
the result (which anti-aliases edges) and composites it over the scene's backdrop.
Everything is deterministic in the seeds, so a clip can be re-rendered from its labels.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import cv2
import numpy as np

from dpe_cli.synth.geometry import (
    PART_HEAD,
    PIVOT,
    Mesh,
    body,
    deform,
    lod,
    rest_head,
    rotation,
    smoothstep,
    vertex_normals,
)
from dpe_cli.synth.paint import Paint, paint_head, paint_part, shade
from dpe_cli.synth.params import Expression, Identity, Pose, Scene
from dpe_cli.synth.raster import rasterize

# Screen size of one head unit at pose.scale == 1, as a fraction of the crop side.
CROP_UNIT = 0.31
# Screen size of one head unit at pose.scale == 1 in full frames, as a fraction of min(W, H).
FRAME_UNIT = 0.22


class Rendering(NamedTuple):
    """An image and where the face landed in it (output pixel coordinates)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: np.ndarray  # (5, 2): right eye, left eye (viewer's), nose tip, mouth corners


def _placement(pose: Pose, width: int, height: int, unit: float) -> tuple[float, float, float]:
    short = min(width, height)
    return width / 2 + pose.tx * short, height / 2 + pose.ty * short, unit * pose.scale * short


def _to_screen(p: np.ndarray, rot: np.ndarray, cx: float, cy: float, s: float) -> tuple[np.ndarray, np.ndarray]:
    cam = (p - PIVOT) @ rot.T + PIVOT
    xy = np.stack([cx + s * cam[:, 0], cy - s * cam[:, 1]], -1)
    return xy.astype(np.float32), (-s * cam[:, 2]).astype(np.float32)


def _draw_person(
    ident: Identity, pose: Pose, expr: Expression, scene: Scene,
    width: int, height: int, cx: float, cy: float, s: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The person on a (height, width) canvas: rgb (H, W, 3) float, coverage (H, W), the five
    landmarks (5, 2) and the face box, in canvas pixels. (cx, cy) is where the head-space
    origin lands at zero rotation and s is pixels per head unit."""
    n = lod(s)
    head = rest_head(ident, n)
    ride, neck, torso = body(ident, n)
    rot = rotation(pose.yaw, pose.pitch, pose.roll)
    rot_neck = rotation(0.4 * pose.yaw, 0.3 * pose.pitch, 0.5 * pose.roll)
    head_pos = deform(ident, expr, head.rest)
    head_mesh = Mesh(head_pos, vertex_normals(head_pos, head.tris),
                      np.stack([head.relief, np.zeros_like(head.relief)], -1), head.tris, PART_HEAD)
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
    frags = rasterize(np.concatenate(xys), np.concatenate(depths), all_tris, width, height)
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
        if mesh.part == PART_HEAD:
            paint = paint_head(ident, expr, p, aux[:, 0], aa)
            eye = np.flatnonzero(~np.isnan(paint.normal[:, 0]))
            normal[sel[eye]] = paint.normal[eye] @ r.T.astype(np.float32)
        else:
            paint = paint_part(ident, mesh.part, p, aux, scene.shirt)
        albedo[sel], occl[sel], spec[sel], shine[sel] = paint.albedo, paint.occlusion, paint.spec, paint.shine
    rgb = np.zeros((width * height, 3), np.float32)
    alpha = np.zeros(width * height, np.float32)
    rgb[frags.pix] = shade(Paint(albedo, occl, spec, shine, None), normal, scene)
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
            m = smoothstep(1.0, 0.8, np.hypot(u, v))
        else:
            m = smoothstep(1.0, 0.9, np.maximum(np.abs(u), np.abs(v)))
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
