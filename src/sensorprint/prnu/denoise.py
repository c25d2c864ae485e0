"""Wavelet-domain noise estimate of Mihcak, Kozintsev & Ramchandran (1999).

"Spatially adaptive statistical modeling of wavelet image coefficients and its
application to denoising", ICASSP 1999, as used for PRNU by Lukáš, Fridrich &
Goljan (TIFS 2006): every detail sub-band of a 4-level wavelet decomposition is
modelled as a zero-mean Gaussian with a locally estimated variance (the minimum
over 3×3, 5×5, 7×7 and 9×9 windows); the noise part of each coefficient is its
Wiener complement x·σ₀²/(σ² + σ₀²). The approximation band is dropped, so the
reconstruction *is* the noise residual (image minus denoised image).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pywt

DEFAULT_WINDOWS: tuple[int, ...] = (3, 5, 7, 9)


def local_energy_min(energy: np.ndarray, windows: Sequence[int] = DEFAULT_WINDOWS) -> np.ndarray:
    """Minimum over square windows (odd sides) of the local mean of `energy`, zero padding outside.

    Equals ``min(uniform_filter(energy, w, mode="constant") for w in windows)``.
    The box sums of all windows grow from one another by adding shifted views
    (horizontal half-width r, then vertical), so every sum has at most 81 float32
    terms: no running sums over whole rows, whose float32 rounding would swamp the
    small means of flat regions that follow textured ones, and no float64 copies.
    """
    e = np.asarray(energy, dtype=np.float32)
    h, w = e.shape
    sizes = sorted({int(s) for s in windows})
    if not sizes or any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"window sides must be odd and positive, got {windows}")
    R = sizes[-1] // 2
    padded = np.zeros((h + 2 * R, w + 2 * R), np.float32)
    padded[R : R + h, R : R + w] = e
    rows = padded[:, R : R + w].copy()  # horizontal box sums of half-width r, for all padded rows
    best: np.ndarray | None = None
    for r in range(0, R + 1):
        if r > 0:
            rows += padded[:, R - r : R - r + w]
            rows += padded[:, R + r : R + r + w]
        if 2 * r + 1 not in sizes:
            continue
        box = rows[R : R + h].copy()
        for d in range(1, r + 1):
            box += rows[R - d : R - d + h]
            box += rows[R + d : R + d + h]
        box *= np.float32(1.0 / ((2 * r + 1) ** 2))
        best = box if best is None else np.minimum(best, box, out=best)
    assert best is not None
    return best


def wiener_noise(coefficients: np.ndarray, noise_var: float, windows: Sequence[int] = DEFAULT_WINDOWS) -> np.ndarray:
    """Noise part of `coefficients` under the locally adaptive Wiener model (Mihcak et al. 1999).

    noise_var: σ₀², the variance of the noise to keep, in the squared units of the
    coefficients. Returns x·σ₀² / (max(local mean of x² − σ₀², 0) + σ₀²), float32.
    """
    x = np.asarray(coefficients, dtype=np.float32)
    nv = np.float32(noise_var)
    out = local_energy_min(np.square(x), windows)  # reused in place: no temporaries
    out -= nv
    np.maximum(out, 0.0, out=out)
    out += nv  # σ² + σ₀²
    np.divide(x, out, out=out)
    out *= nv
    return out


def wavelet_noise(
    gray: np.ndarray,
    *,
    sigma: float = 3.0,
    levels: int = 4,
    wavelet: str = "db4",
    mode: str = "symmetric",
) -> np.ndarray:
    """Noise residual of a single-channel image by wavelet Wiener shrinkage (Mihcak et al. 1999).

    gray: H×W float32, grey levels 0..255. sigma: σ₀, standard deviation of the
    noise to extract, in grey levels (3 to 5 in the PRNU literature). levels: number
    of decomposition levels (reduced automatically for small images). Returns an
    H×W float32 residual.
    """
    x = np.asarray(gray, dtype=np.float32)
    h, w = x.shape
    max_levels = pywt.dwt_max_level(min(h, w), pywt.Wavelet(wavelet).dec_len)
    levels = max(1, min(levels, max_levels))
    coeffs = pywt.wavedec2(x, wavelet, mode=mode, level=levels)
    noise_var = float(sigma) ** 2
    shrunk: list = [np.zeros_like(coeffs[0])]
    for detail in coeffs[1:]:
        shrunk.append(tuple(wiener_noise(band, noise_var) for band in detail))
    out = pywt.waverec2(shrunk, wavelet, mode=mode)
    return np.ascontiguousarray(out[:h, :w], dtype=np.float32)
