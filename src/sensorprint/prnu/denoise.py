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


# Rows processed at a time: a block and its helpers (about 5 arrays of this many float32
# values) stay in a core's L2 cache through the ~40 passes of the box sums.
BLOCK_VALUES = 1 << 16


def _check_windows(windows: Sequence[int]) -> tuple[list[int], int]:
    sizes = sorted({int(s) for s in windows})
    if not sizes or any(s < 1 or s % 2 == 0 for s in sizes):
        raise ValueError(f"window sides must be odd and positive, got {windows}")
    return sizes, sizes[-1] // 2


def _block_rows(width: int, reach: int) -> int:
    return max(4 * reach + 1, BLOCK_VALUES // max(width, 1))


def _box_min(padded: np.ndarray, n_rows: int, width: int, reach: int, sizes: list[int], out: np.ndarray) -> None:
    """Minimum box mean over `sizes` for the central rows of a zero-padded slab, written to `out`.

    padded: (n_rows + 2·reach) × (width + 2·reach) float32 with the neighbours (or
    zeros) around the n_rows × width block. The box sums of all windows grow from one
    another by adding shifted views (horizontal half-width r, then vertical), so every
    sum has at most 81 float32 terms: no running sums over whole rows, whose float32
    rounding would swamp the small means of flat regions that follow textured ones.
    """
    R = reach
    rows = padded[:, R : R + width].copy()  # horizontal box sums of half-width r, for all slab rows
    first = True
    for r in range(0, R + 1):
        if r > 0:
            rows += padded[:, R - r : R - r + width]
            rows += padded[:, R + r : R + r + width]
        if 2 * r + 1 not in sizes:
            continue
        box = rows[R : R + n_rows].copy()
        for d in range(1, r + 1):
            box += rows[R - d : R - d + n_rows]
            box += rows[R + d : R + d + n_rows]
        box *= np.float32(1.0 / ((2 * r + 1) ** 2))
        if first:
            out[...] = box
            first = False
        else:
            np.minimum(out, box, out=out)


def _blockwise_min(
    values: np.ndarray, sizes: list[int], reach: int, square: bool, noise_var: float | None = None
) -> np.ndarray:
    """Local minimum box mean of `values` (or of its square), block of rows by block of rows.

    noise_var: when given, each block is turned at once (while in cache) into the Wiener
    complement values·σ₀² / (max(local − σ₀², 0) + σ₀²) of `wiener_noise`.
    """
    h, w = values.shape
    R = reach
    out = np.empty((h, w), np.float32)
    block = _block_rows(w, R)
    slab = np.zeros((min(block, h) + 2 * R, w + 2 * R), np.float32)
    for y0 in range(0, h, block):
        y1 = min(h, y0 + block)
        lo, hi = max(0, y0 - R), min(h, y1 + R)
        top = R - (y0 - lo)  # slab row of image row lo
        used = slab[: (y1 - y0) + 2 * R]
        used[:top] = 0.0
        used[top + (hi - lo) :] = 0.0
        target = used[top : top + (hi - lo), R : R + w]
        if square:
            np.square(values[lo:hi], out=target)
        else:
            target[...] = values[lo:hi]
        block_out = out[y0:y1]
        _box_min(used, y1 - y0, w, R, sizes, block_out)
        if noise_var is not None:
            nv = np.float32(noise_var)
            block_out -= nv
            np.maximum(block_out, 0.0, out=block_out)
            block_out += nv  # σ² + σ₀²
            np.divide(values[y0:y1], block_out, out=block_out)
            block_out *= nv
    return out


def local_energy_min(energy: np.ndarray, windows: Sequence[int] = DEFAULT_WINDOWS) -> np.ndarray:
    """Minimum over square windows (odd sides) of the local mean of `energy`, zero padding outside.

    Equals ``min(uniform_filter(energy, w, mode="constant") for w in windows)``,
    in float32, computed in blocks of rows that stay in cache.
    """
    sizes, R = _check_windows(windows)
    return _blockwise_min(np.asarray(energy, dtype=np.float32), sizes, R, square=False)


def wiener_noise(coefficients: np.ndarray, noise_var: float, windows: Sequence[int] = DEFAULT_WINDOWS) -> np.ndarray:
    """Noise part of `coefficients` under the locally adaptive Wiener model (Mihcak et al. 1999).

    noise_var: σ₀², the variance of the noise to keep, in the squared units of the
    coefficients. Returns x·σ₀² / (max(local mean of x² − σ₀², 0) + σ₀²), float32.
    """
    x = np.asarray(coefficients, dtype=np.float32)
    sizes, R = _check_windows(windows)
    return _blockwise_min(x, sizes, R, square=True, noise_var=float(noise_var))


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
    noise_var = float(sigma) ** 2

    # pywt.wavedec2/waverec2, done as 1-D transforms along rows only, with a transposed copy
    # between them: a transform down the columns walks memory with a stride and costs about
    # 5× one along the rows (8 MP: 0.67 -> 0.43 CPU s for the whole denoiser, same result to
    # float32 rounding). The detail bands stay transposed: the square windows of the Wiener
    # step do not care.
    def rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return pywt.dwt(a, wavelet, mode=mode, axis=-1)

    def rows_inverse(approximation: np.ndarray | None, detail: np.ndarray) -> np.ndarray:
        return pywt.idwt(approximation, detail, wavelet, mode=mode, axis=-1)

    shrunk: list[tuple[np.ndarray, ...]] = []
    approximation = x
    for _ in range(levels):
        low, high = rows(approximation)
        low_low_t, low_high_t = rows(_transposed(low))
        high_low_t, high_high_t = rows(_transposed(high))
        shrunk.append(tuple(wiener_noise(band, noise_var) for band in (low_high_t, high_low_t, high_high_t)))
        approximation = _transposed(low_low_t)
    out = None  # the approximation band is dropped: the reconstruction is the residual
    for low_high_t, high_low_t, high_high_t in reversed(shrunk):
        # a coarser reconstruction can be one pixel larger than this level's bands (as in waverec2)
        coarse_t = None if out is None else _transposed(out[: low_high_t.shape[1], : low_high_t.shape[0]])
        low = _transposed(rows_inverse(coarse_t, low_high_t))
        high = _transposed(rows_inverse(high_low_t, high_high_t))
        out = rows_inverse(low, high)
    return np.ascontiguousarray(out[:h, :w], dtype=np.float32)


def _transposed(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.T)
