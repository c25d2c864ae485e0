"""Circular cross-correlation, peak-to-correlation energy (PCE) and normalised correlation.

PCE as defined by Goljan ("Digital camera identification from images — estimating
false acceptance probability", IWDW 2008; also Goljan, Fridrich & Filler, SPIE
2009): the squared correlation peak, searched only inside the allowed range of
shifts, divided by the mean square of the correlation surface outside a small
neighbourhood (11×11) of the peak; the sign of the peak is kept.

FFTs use ``scipy.fft`` with its default worker count; wrap calls in
``scipy.fft.set_workers(n)`` to use several threads.
"""

from __future__ import annotations

import numpy as np
import scipy.fft


def cross_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular cross-correlation c[s] = Σₓ a(x)·b(x+s) of two same-shape 2-D arrays (real FFTs, float32).

    With b a copy of a shifted by (dy, dx) (``np.roll(a, (dy, dx), (0, 1))``) the
    peak is at (dy, dx). Inputs are used as given (subtract means beforehand).
    """
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"cross_correlation needs two 2-D arrays of one shape, got {a.shape} and {b.shape}")
    fa = scipy.fft.rfft2(a)
    fb = scipy.fft.rfft2(b)
    return correlate_spectra(fa, fb, a.shape)


def correlate_spectra(fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Cross-correlation from the real-FFT spectra of a and b (see `cross_correlation`)."""
    prod = np.conjugate(fa)
    prod *= fb
    return scipy.fft.irfft2(prod, s=shape, overwrite_x=True).astype(np.float32, copy=False)


def pce(
    xcorr: np.ndarray,
    *,
    shift_range: tuple[int, int] = (0, 0),
    neighbourhood: int = 11,
) -> tuple[float, tuple[int, int], int]:
    """Peak-to-correlation energy of a correlation surface (Goljan 2009).

    xcorr: H×W circular cross-correlation (index = shift). shift_range: (rows, cols);
    the peak is searched among shifts 0..rows × 0..cols only ((0, 0): aligned
    images, zero shift). neighbourhood: side, in pixels, of the square around the
    peak left out of the energy (circularly). The peak is the largest *signed*
    value in the range, so a negative correlation gives a negative PCE.
    Returns (pce, (row, col) of the peak, sign of the peak).
    """
    c = np.asarray(xcorr, dtype=np.float32)
    h, w = c.shape
    rows = min(max(int(shift_range[0]), 0), h - 1)
    cols = min(max(int(shift_range[1]), 0), w - 1)
    window = c[: rows + 1, : cols + 1]
    flat_index = int(np.argmax(window))
    py, px = np.unravel_index(flat_index, window.shape)
    peak = float(window[py, px])
    total = _sum_squares(c)
    r = neighbourhood // 2
    ys = np.arange(py - r, py + r + 1) % h
    xs = np.arange(px - r, px + r + 1) % w
    ys = np.unique(ys)
    xs = np.unique(xs)
    near = c[np.ix_(ys, xs)].astype(np.float64)
    n_rest = c.size - near.size
    energy = (total - float(np.sum(near * near))) / max(n_rest, 1)
    if energy <= 0.0 or not np.isfinite(energy):
        return 0.0, (int(py), int(px)), int(np.sign(peak))
    sign = 1 if peak > 0 else (-1 if peak < 0 else 0)
    return sign * peak * peak / energy, (int(py), int(px)), sign


def _sum_squares(c: np.ndarray) -> float:
    """Σ c² in float64 accumulation without a float64 copy of the whole array."""
    flat = c.ravel()
    total = 0.0
    step = 1 << 20
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step].astype(np.float64)
        total += float(np.dot(chunk, chunk))
    return total


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two same-shape arrays (means removed), in −1..1."""
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x = x - x.mean()
    y = y - y.mean()
    denom = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y) / denom) if denom > 0 else 0.0
