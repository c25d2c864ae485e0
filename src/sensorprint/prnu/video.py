"""Video frames: their cheaper noise residuals, and their weights in an aggregate or a fingerprint.

A query video is reduced to one aggregated residual, the maximum-likelihood estimate
Q = Σ wᵢWᵢIᵢ / Σ wᵢIᵢ² over its frames (Chen et al., TIFS 2008; for video, e.g. Mandelli
et al. 2019). The steps of the image residual that are (nearly) linear — zero-mean of rows
and columns on the CFA sub-lattices and Wiener filtering in the DFT domain (Goljan &
Fridrich, Binghamton reference) — commute with that weighted sum closely enough that they
are applied once to the aggregate instead of to every frame; on twelve simulated 720p H.264
clips (5 frames each) the PCEs stayed the same (median 100.1 both ways) while the per-frame
time fell from 74 to 28 ms.

The per-frame denoiser is the only step left per frame. Two choices:

- ``"wavelet"``: the wavelet Wiener shrinkage of Mihcak, Kozintsev & Ramchandran (1999),
  as for images, with a configurable number of levels;
- ``"spatial"``: its spatial-domain counterpart, a locally adaptive Wiener filter on the
  high-pass x − mean₃ₓ₃(x) (the noise part d·σ₀²/max(var₃ₓ₃(d), σ₀²)). Video frames are
  already low-passed by the codec (in-loop deblocking, quantisation of high frequencies),
  so the coarse wavelet levels carry little PRNU; this keeps the finest scale only. On
  1080p H.264 clips (benchmarks/video_throughput.py, 5 frames, 10 devices) it kept 97 % of
  the median true-pair PCE of the 4-level wavelet (24,166 vs 24,879; wrong pairs ≤ 7.9
  vs ≤ 7.1) for a third of the CPU time per video (0.105 s vs 0.313 s); a 1-level
  wavelet was slower (0.253 s) and weaker (16,406). Hence the default. Its 3×3 sums are
  taken in reused arrays (`_box_sum3`: the same additions as on a padded copy, so the
  result is bit-identical): about 5 instead of 10 ms per 1080p frame.

The sums of the aggregate are kept by `FingerprintAccumulator(shape, halves=1)`: one
estimator for fingerprints and for query videos.

Pure functions on float32 arrays: no files, no state.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .denoise import wavelet_noise
from .residual import SATURATION_LEVEL

VIDEO_DENOISERS = ("spatial", "wavelet")


def box_mean(image: np.ndarray, window: int = 3) -> np.ndarray:
    """Mean over a window×window square (odd side, in pixels), edges mirrored; float32.

    Equals ``scipy.ndimage.uniform_filter(image, window, mode="reflect")``; the 3×3 case
    is done with four shifted additions (about five times faster on a 1080p frame).
    """
    x = np.asarray(image, dtype=np.float32)
    if window != 3 or min(x.shape) < 2:
        return ndimage.uniform_filter(x, window, mode="reflect")
    out = _box_sum3(x, np.empty_like(x), np.empty_like(x))
    out *= np.float32(1.0 / 9.0)
    return out


def _box_sum3(x: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """3×3 sums of a float32 H×W array (H, W >= 2), edges mirrored as scipy's "reflect", into `out` (which may be `x`).

    Written into preallocated arrays (`work` holds the row sums) instead of padding a copy:
    the same additions in the same order as on a padded copy (edge: x0 + x0 + x1), so the
    sums are bit-identical, for two passes fewer and no temporary arrays.
    """
    np.add(x[:, :-2], x[:, 1:-1], out=work[:, 1:-1])
    work[:, 1:-1] += x[:, 2:]
    np.add(x[:, 0], x[:, 0], out=work[:, 0])
    work[:, 0] += x[:, 1]
    np.add(x[:, -2], x[:, -1], out=work[:, -1])
    work[:, -1] += x[:, -1]
    np.add(work[:-2], work[1:-1], out=out[1:-1])
    out[1:-1] += work[2:]
    np.add(work[0], work[0], out=out[0])
    out[0] += work[1]
    np.add(work[-2], work[-1], out=out[-1])
    out[-1] += work[-1]
    return out


def spatial_wiener_noise(gray: np.ndarray, *, sigma: float = 3.0, window: int = 3) -> np.ndarray:
    """Noise residual of one grey frame by a local (spatial) Wiener filter.

    gray: H×W float32 grey levels 0..255. sigma: σ₀, the standard deviation of the noise
    to keep, in grey levels (as for the wavelet denoiser of Mihcak et al. 1999). window:
    side in pixels of the square over which the local mean and variance are taken.
    Returns H×W float32: d·σ₀² / max(local mean of d², σ₀²) with d = x − local mean of x.
    """
    x = np.asarray(gray, dtype=np.float32)
    noise_var = np.float32(float(sigma) ** 2)
    if window != 3 or min(x.shape) < 2:
        detail = x - box_mean(x, window)
        local_power = box_mean(detail * detail, window)
    else:  # the same operations in three reused arrays (a 1080p frame is 8 MB: fewer passes, no temporaries)
        local_power, work, detail = np.empty_like(x), np.empty_like(x), np.empty_like(x)  # `work` holds row sums
        _box_sum3(x, local_power, work)
        local_power *= np.float32(1.0 / 9.0)
        np.subtract(x, local_power, out=detail)
        np.multiply(detail, detail, out=local_power)
        _box_sum3(local_power, local_power, work)
        local_power *= np.float32(1.0 / 9.0)
    np.maximum(local_power, noise_var, out=local_power)
    detail *= noise_var
    detail /= local_power
    return detail


def frame_noise(gray: np.ndarray, *, method: str = "spatial", sigma: float = 3.0, levels: int = 4) -> np.ndarray:
    """The per-frame noise residual of one grey video frame, before aggregation and cleaning.

    method: "spatial" (`spatial_wiener_noise`) or "wavelet" (Mihcak et al. 1999 with
    `levels` decomposition levels). sigma: σ₀ in grey levels. Returns H×W float32.
    """
    if method == "spatial":
        return spatial_wiener_noise(gray, sigma=sigma)
    if method == "wavelet":
        return wavelet_noise(np.asarray(gray, dtype=np.float32), sigma=sigma, levels=levels)
    raise ValueError(f"unknown video denoiser {method!r}; use one of {', '.join(VIDEO_DENOISERS)}")


# Mean grey level under which a frame is considered dark, and over which it is fully usable.
DARK_LEVEL = 16.0
BRIGHT_ENOUGH = 64.0
# Mean absolute difference to the previous frame (grey levels) from which a frame counts as new.
NEW_FRAME_DIFFERENCE = 2.0


def frame_weight(gray: np.ndarray, previous_gray: np.ndarray | None = None) -> float:
    """Weight in 0..1 of a video frame (H×W float32 grey levels 0..255).

    Product of three factors: brightness (0 at a mean under 16 grey levels, 1 from
    64), the fraction of unsaturated pixels (under 250), and novelty (mean absolute
    difference to `previous_gray`, 1 from 2 grey levels; 1 when there is no
    previous frame or its size differs).
    """
    g = np.asarray(gray, dtype=np.float32)
    mean = float(g.mean(dtype=np.float64))
    brightness = float(np.clip((mean - DARK_LEVEL) / (BRIGHT_ENOUGH - DARK_LEVEL), 0.0, 1.0))
    unsaturated = 1.0 - float(np.count_nonzero(g >= SATURATION_LEVEL)) / max(g.size, 1)
    novelty = 1.0
    if previous_gray is not None:
        p = np.asarray(previous_gray, dtype=np.float32)
        if p.shape == g.shape:
            difference = float(np.abs(g - p).mean(dtype=np.float64))
            novelty = float(np.clip(difference / NEW_FRAME_DIFFERENCE, 0.0, 1.0))
    return float(np.clip(brightness * unsaturated * novelty, 0.0, 1.0))
