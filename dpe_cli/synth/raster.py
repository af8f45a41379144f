"""A z-buffered triangle rasteriser in numpy: screen-space triangles in, visible fragments out."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Fragments(NamedTuple):
    """The nearest front-facing triangle at each covered pixel, where painting reads it."""

    pix: np.ndarray  # (K,) flat pixel index of each covered pixel
    tri: np.ndarray  # (K,) triangle index
    bary: np.ndarray  # (K, 3) barycentric weights


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i repeated counts[i] times: (i, 0..counts[i]-1)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - start[owner]


def rasterize(xy: np.ndarray, depth: np.ndarray, tris: np.ndarray, w: int, h: int) -> Fragments:
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
    return Fragments(uniq, keep[tri[row]], bary)
