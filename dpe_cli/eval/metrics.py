"""Pixel metrics: PSNR and SSIM on uint8 RGB frames of the same size.

- PSNR: ``10 log10(255^2 / MSE)`` with the MSE over all pixels and the three channels.
  Identical frames have an infinite PSNR; it is capped at :data:`PSNR_CAP` (100 dB: a single
  grey level of difference in one pixel of a 256x256 frame already reads 101 dB), and the
  caller is told that the cap was hit, so that a mean is never silently infinite.
- SSIM: Wang et al. (2004) with their constants (K1 = 0.01, K2 = 0.03, L = 255), an 11x11
  Gaussian window of sigma 1.5, computed on each RGB channel over the "valid" region (no
  padding; 5 pixels trimmed per border) and averaged over the three channels, as
  scikit-image's ``structural_similarity(..., channel_axis=-1, gaussian_weights=True,
  use_sample_covariance=False)`` does.
"""

from __future__ import annotations

import cv2
import numpy as np

PSNR_CAP = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two HxWx3 frames of one size, got {a.shape} and {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """(PSNR in dB, capped?) between two uint8 RGB frames."""
    _check_pair(a, b)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP, True
    value = 10.0 * np.log10(255.0**2 / mse)
    return (PSNR_CAP, True) if value >= PSNR_CAP else (float(value), False)


def _gaussian_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    out = cv2.sepFilter2D(img, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    r = SSIM_WINDOW // 2
    return out[r:-r, r:-r]


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the three RGB channels (see the module docstring)."""
    return float(np.mean(ssim_map(a, b)))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM, averaged over the channels, on the valid region (5 px trimmed per
    border), for means over a part of the frame."""
    _check_pair(a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F)
    x = a.astype(np.float64)
    y = b.astype(np.float64)
    mu_x, mu_y = _gaussian_valid(x, kernel), _gaussian_valid(y, kernel)
    var_x = _gaussian_valid(x * x, kernel) - mu_x**2
    var_y = _gaussian_valid(y * y, kernel) - mu_y**2
    cov = _gaussian_valid(x * y, kernel) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x**2 + mu_y**2 + _C1) * (var_x + var_y + _C2)
    return (num / den).mean(axis=2)
