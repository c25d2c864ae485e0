"""The in-camera processing of a raw Bayer frame: CFA sampling, demosaicing, white balance,
colour matrix and tone curve. Pure functions on float32 arrays.

Demosaicing: bilinear interpolation, or the gradient-corrected linear interpolation of
Malvar, He & Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned
color images", ICASSP 2004. Both leave the periodic interpolation traces that a camera
model's units share.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
DEMOSAIC_METHODS = ("bilinear", "malvar")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def cfa_channel_map(cfa: str, height: int, width: int) -> np.ndarray:
    """uint8 H×W: the colour channel (0 R, 1 G, 2 B) each photosite of a ``cfa`` mosaic sees.

    ``cfa`` lists the 2×2 tile row by row, e.g. ``"RGGB"`` = R G / G B.
    """
    if cfa not in CFA_PATTERNS:
        raise ValueError(f"unknown CFA {cfa!r}; use one of {', '.join(CFA_PATTERNS)}")
    tile = np.array([[_CHANNEL[cfa[0]], _CHANNEL[cfa[1]]], [_CHANNEL[cfa[2]], _CHANNEL[cfa[3]]]], np.uint8)
    return np.tile(tile, (-(-height // 2), -(-width // 2)))[:height, :width]


def mosaic(rgb: np.ndarray, cfa: str, response: np.ndarray | None = None) -> np.ndarray:
    """Sample an H×W×3 image through the colour filter array: float32 H×W.

    ``response`` (3×3, optional): row c gives how much of the scene's R, G, B the filter of
    colour c passes (the overlapping spectral sensitivities of real filters); only the
    channel each photosite sees is computed.
    """
    h, w = rgb.shape[:2]
    out = np.empty((h, w), np.float32)
    for dy in (0, 1):
        for dx in (0, 1):
            c = _CHANNEL[cfa[2 * dy + dx]]
            if response is None:
                out[dy::2, dx::2] = rgb[dy::2, dx::2, c]
            else:
                sub = rgb[dy::2, dx::2]
                a, b, d = (np.float32(v) for v in response[c])
                site = out[dy::2, dx::2]
                np.multiply(sub[..., 0], a, out=site)
                site += sub[..., 1] * b
                site += sub[..., 2] * d
    return out


def _masks(cfa: str, h: int, w: int) -> list[np.ndarray]:
    cmap = cfa_channel_map(cfa, h, w)
    return [(cmap == c) for c in range(3)]


_K_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4


def demosaic_bilinear(raw: np.ndarray, cfa: str) -> np.ndarray:
    """Bilinear demosaicing of a Bayer frame (float32 H×W) → float32 H×W×3."""
    h, w = raw.shape
    out = np.empty((h, w, 3), np.float32)
    for c, mask in enumerate(_masks(cfa, h, w)):
        plane = np.where(mask, raw, np.float32(0))
        ndimage.correlate(plane, _K_G if c == 1 else _K_RB, output=out[..., c], mode="mirror")
    return out


# Malvar–He–Cutler 5×5 kernels (ICASSP 2004, fig. 2), scaled by 1/8.
_M_G_AT_RB = (
    np.array([[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], np.float32) / 8
)
_M_RB_ROW = (
    np.array(  # R (or B) at a green pixel in an R (or B) row
        [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]], np.float32
    )
    / 8
)
_M_RB_COL = _M_RB_ROW.T.copy()
_M_RB_AT_BR = (
    np.array(
        [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]], np.float32
    )
    / 8
)


def demosaic_malvar(raw: np.ndarray, cfa: str) -> np.ndarray:
    """Gradient-corrected linear demosaicing (Malvar, He & Cutler 2004) → float32 H×W×3."""
    h, w = raw.shape
    cmap = cfa_channel_map(cfa, h, w)
    rows = np.arange(h)[:, None] % 2
    g_at_rb = ndimage.correlate(raw, _M_G_AT_RB, mode="mirror")
    rb_row = ndimage.correlate(raw, _M_RB_ROW, mode="mirror")
    rb_col = ndimage.correlate(raw, _M_RB_COL, mode="mirror")
    rb_at_br = ndimage.correlate(raw, _M_RB_AT_BR, mode="mirror")
    out = np.empty((h, w, 3), np.float32)
    out[..., 1] = np.where(cmap == 1, raw, g_at_rb)
    # Which rows hold red photosites (the rest hold blue).
    red_row = 0 if "R" in cfa[:2] else 1
    is_red_row = rows == red_row
    for c, same_row in ((0, is_red_row), (2, ~is_red_row)):
        other = 2 - c
        val = np.where(cmap == c, raw, 0)
        val = np.where(cmap == other, rb_at_br, val)
        green = cmap == 1
        val = np.where(green & same_row, rb_row, val)
        val = np.where(green & ~same_row, rb_col, val)
        out[..., c] = val
    return out


def demosaic(raw: np.ndarray, cfa: str, method: str = "bilinear") -> np.ndarray:
    """Demosaic a Bayer frame with ``method`` (``"bilinear"`` or ``"malvar"``)."""
    if method == "bilinear":
        return demosaic_bilinear(raw, cfa)
    if method == "malvar":
        return demosaic_malvar(raw, cfa)
    raise ValueError(f"unknown demosaicing method {method!r}; use one of {', '.join(DEMOSAIC_METHODS)}")


def apply_white_balance_and_matrix(
    rgb: np.ndarray, gains: tuple[float, float, float], matrix: tuple[tuple[float, ...], ...] | None
) -> np.ndarray:
    """Per-channel white-balance gains, then an optional 3×3 colour matrix (rows sum to 1), in place."""
    if matrix is None:
        rgb *= np.asarray(gains, np.float32)
        return rgb
    m = np.asarray(matrix, np.float32) * np.asarray(gains, np.float32)[None, :]
    return _mix_channels(rgb, m)


def _mix_channels(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """out[..., i] = Σ_j m[i, j] · rgb[..., j], with elementwise float32 operations.

    (A BLAS matmul of an N×3 array is slower here and spawns threads that fight over a
    loaded machine.)
    """
    out = np.empty_like(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    for i in range(3):
        o = out[..., i]
        np.multiply(r, m[i, 0], out=o)
        o += g * m[i, 1]
        o += b * m[i, 2]
    return out


_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def luma_denoise(rgb: np.ndarray, strength: float) -> np.ndarray:
    """In-camera noise reduction of the luminance, in place: Y ← Y − strength·(Y − box3×3(Y)).

    ``strength`` in 0..1 (0: off). Phones smooth the finest luminance detail, and with it
    the sensor noise and much of the PRNU; the colour ratios are kept.
    """
    if strength <= 0:
        return rgb
    y = rgb[..., 0] * _LUMA[0]
    y += rgb[..., 1] * _LUMA[1]
    y += rgb[..., 2] * _LUMA[2]
    detail = y - ndimage.uniform_filter(y, size=3, mode="mirror")
    detail *= np.float32(-strength)
    rgb += detail[..., None]
    return rgb


@functools.lru_cache(maxsize=8)
def _tone_lut(gamma: float, size: int = 65536) -> np.ndarray:
    x = np.linspace(0.0, 1.0, size, dtype=np.float64)
    # sRGB-like: a short linear toe, then a power law (IEC 61966-2-1 with a free exponent).
    y = np.where(x < 0.0031308, 12.92 * x, 1.055 * x ** (1.0 / gamma) - 0.055)
    return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def tone_map(linear: np.ndarray, gamma: float = 2.4) -> np.ndarray:
    """Linear RGB (float32, 0..1, clipped) → 8-bit display values through an sRGB-like curve."""
    lut = _tone_lut(float(gamma))
    idx = np.clip(linear, 0.0, 1.0)
    idx *= np.float32(len(lut) - 1)
    return lut[idx.astype(np.uint16)]
