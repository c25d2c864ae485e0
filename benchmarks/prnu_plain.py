"""A plain, unoptimised implementation of the residual steps, to check the fast one against.

Follows prnu-python's ``extract_single`` step by step (Binghamton reference,
Goljan & Fridrich; Mihcak et al. 1999): every colour channel denoised on its own
(db4, 4 levels, symmetric borders), local variances with
``scipy.ndimage.uniform_filter`` in float64, Wiener shrinkage, approximation
dropped; to grey; zero-mean of rows and columns on each CFA sub-lattice with
loops; Wiener filtering on the full complex FFT. Slow on purpose: no shared work.
"""

from __future__ import annotations

import numpy as np
import pywt
from scipy import ndimage

GRAY = np.array([0.29893602, 0.58704307, 0.11402090])


def _wiener_adaptive(x: np.ndarray, noise_var: float) -> np.ndarray:
    energy = np.square(x.astype(np.float64))
    local = np.stack([ndimage.uniform_filter(energy, size, mode="constant") for size in (3, 5, 7, 9)], axis=2)
    variance = np.maximum(local - noise_var, 0.0).min(axis=2)
    return x * noise_var / (variance + noise_var)


def plain_noise(channel: np.ndarray, sigma: float = 3.0, levels: int = 4) -> np.ndarray:
    coeffs = pywt.wavedec2(channel.astype(np.float64), "db4", level=levels)
    filtered = [np.zeros_like(coeffs[0])]
    for detail in coeffs[1:]:
        filtered.append(tuple(_wiener_adaptive(band, sigma**2) for band in detail))
    out = pywt.waverec2(filtered, "db4")
    return out[: channel.shape[0], : channel.shape[1]]


def plain_zero_mean(x: np.ndarray) -> np.ndarray:
    out = x.astype(np.float64).copy()
    for dr in (0, 1):
        for dc in (0, 1):
            sub = out[dr::2, dc::2]
            sub -= sub.mean()
            sub -= sub.mean(axis=1, keepdims=True)
            sub -= sub.mean(axis=0, keepdims=True)
    return out


def plain_wiener_dft(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    noise_var = x.std(ddof=1) ** 2
    spectrum = np.fft.fft2(x)
    magnitude = np.abs(spectrum / np.sqrt(h * w))
    filtered = _wiener_adaptive(magnitude, noise_var)
    zero = magnitude == 0
    magnitude[zero] = 1.0
    filtered[zero] = 0.0
    return np.real(np.fft.ifft2(spectrum * filtered / magnitude))


def plain_residual(image: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """The residual of an H×W×3 image (0..255) by the plain steps; float64 H×W."""
    noise = np.stack([plain_noise(image[:, :, c], sigma) for c in range(3)], axis=2)
    gray = noise @ GRAY
    return plain_wiener_dft(plain_zero_mean(gray))
