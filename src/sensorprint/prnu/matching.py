"""Matching a query residual against a fingerprint, with the geometric search.

Detector (Goljan 2009; Goljan & Fridrich, SPIE 2008): the cross-correlation of
the query's W·I (residual times intensity, the I·K term of the PRNU model taken
on the query side, where I is known) with the fingerprint K, scored by PCE:

- same size (in some orientation): zero shift only, over every rotation/flip that fits;
- smaller: every offset that keeps the query inside (the offset is reported);
- nothing above the threshold: scale search (the query is a resized, possibly
  cropped view of the sensor, e.g. a video frame): first the scales that make
  the query exactly full-width or full-height, then a grid (coarse to fine).

Both spectra are whitened before they are multiplied: every coefficient is
divided by the root mean power of its 3×3 spectral neighbourhood (a smoothed
version of the phase-only correlation of Kang et al., "Enhancing source camera
identification performance with a camera reference phase sensor pattern noise",
TIFS 2012). Periodic and coloured components that all units of a model share
(JPEG grid, demosaicing, fixed-pattern structure) stand out of a flat spectrum
only by their magnitude, which whitening removes. Measured on dresden-nikon (the
first figures with an earlier, periodic-border variant of the wavelet step):
the largest wrong-pair PCE of a crop search (a D70 query inside a D200
fingerprint) fell from 47 to 33; for same-size pairs it is neutral (smallest
true / largest wrong PCE 69.9 / 21.5 with it, 73.8 / 19.5 without). The NCC
reported is the plain (unwhitened) normalised correlation.

The false-alarm probability counts every position and transform searched.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy import ndimage

from ..errors import MatchError
from .correlation import pce as pce_of_surface
from .fingerprint import Fingerprint
from .geometry import (
    ALL_ORIENTATIONS,
    Transform,
    fits,
    orient,
    orientations_that_fit,
    priority_scales,
    resize,
    scale_grid,
    scaled_shape,
)
from .stats import DEFAULT_PCE_THRESHOLD, false_alarm_probability, log10_false_alarm_probability

Progress = Callable[[int, int], None]
WHITENING_WINDOW = 3  # side of the spectral neighbourhood used for whitening (0: no whitening)


def whiten_spectrum(spectrum: np.ndarray, window: int = WHITENING_WINDOW) -> np.ndarray:
    """Divide each coefficient of a real-FFT spectrum by the RMS magnitude of its window×window neighbourhood.

    The neighbourhood wraps around the array's edges (as ``ndimage.uniform_filter(...,
    mode="wrap")``); sums of shifted float32 views (at most window² terms each), no
    float64 or complex temporaries. Returns a new complex64 array.
    """
    if window <= 1:
        return spectrum
    spectrum = np.asarray(spectrum, dtype=np.complex64)
    pairs = spectrum.view(np.float32).reshape(spectrum.shape[0], -1, 2)
    power = np.multiply(pairs[..., 0], pairs[..., 0])
    power += pairs[..., 1] * pairs[..., 1]
    # the wrap-around mean equals the plain mean: floor against division by ~0
    floor = np.float32(max(float(power.mean(dtype=np.float64)), 1e-30) * 1e-6)
    scale = _wrapped_box_mean(power, window)
    np.maximum(scale, floor, out=scale)
    np.sqrt(scale, out=scale)
    np.divide(np.float32(1.0), scale, out=scale)
    return spectrum * scale


def _wrapped_box_mean(a: np.ndarray, window: int) -> np.ndarray:
    """Mean over a window×window neighbourhood (odd window) with wrap-around edges, float32."""
    r = window // 2
    h, w = a.shape
    if r >= h or r >= w:  # tiny arrays: the general filter handles windows wider than the array
        return ndimage.uniform_filter(a, window, mode="wrap").astype(np.float32, copy=False)
    rows = a.copy()
    for d in range(1, r + 1):  # horizontal sums: a[:, x-d] + a[:, x+d], wrapping
        rows[:, d:] += a[:, :-d]
        rows[:, :d] += a[:, -d:]
        rows[:, :-d] += a[:, d:]
        rows[:, -d:] += a[:, :d]
    out = rows.copy()
    for d in range(1, r + 1):
        out[d:] += rows[:-d]
        out[:d] += rows[-d:]
        out[:-d] += rows[d:]
        out[-d:] += rows[:d]
    out *= np.float32(1.0 / (window * window))
    return out


SEARCH_MODES = ("auto", "aligned", "crop", "scale")
# The orientations in which a camera's own pixels reach storage: as read out, or turned
# to portrait by 90° either way. 180° and mirrors come from software (orientations="all").
SENSOR_ORIENTATIONS = ((0, False), (90, False), (270, False))


@dataclass(frozen=True)
class MatchResult:
    """The outcome of matching one query against one fingerprint.

    pce: the best peak-to-correlation energy found (signed). ncc: the normalised
    correlation at that peak. p_fa: the probability that a wrong camera reaches
    this PCE over all `n_positions` searched (shifts × orientations × scales).
    transform: how the query maps onto the fingerprint. peak_sign: sign of the
    correlation peak. log10_p_fa: log₁₀ of p_fa, finite where p_fa underflows.
    stage: which search found it ("hint", "aligned", "crop", "scale" or "none").
    """

    pce: float
    ncc: float
    p_fa: float
    transform: Transform
    n_positions: int
    peak_sign: int
    log10_p_fa: float = 0.0
    stage: str = "none"

    def to_dict(self) -> dict:
        return {
            "pce": self.pce,
            "ncc": self.ncc,
            "p_fa": self.p_fa,
            "log10_p_fa": self.log10_p_fa,
            "transform": self.transform.to_dict(),
            "n_positions": self.n_positions,
            "peak_sign": self.peak_sign,
            "stage": self.stage,
        }


class PreparedFingerprint:
    """A fingerprint ready for matching: zero-mean K and its real FFT, cached per scale (LRU).

    Build once per device and reuse for every query; `max_scales` bounds how many
    resized copies (and their spectra) are kept. whitening: window of
    `whiten_spectrum` (0: off).
    """

    def __init__(
        self,
        fingerprint: np.ndarray | Fingerprint,
        *,
        max_scales: int = 4,
        whitening: int = WHITENING_WINDOW,
    ):
        k = fingerprint.k if isinstance(fingerprint, Fingerprint) else fingerprint
        k = np.asarray(k, dtype=np.float32)
        if k.ndim != 2:
            raise MatchError(f"a fingerprint must be a 2-D array, got shape {k.shape}")
        self.shape: tuple[int, int] = (int(k.shape[0]), int(k.shape[1]))
        self.max_scales = max(1, int(max_scales))
        self.whitening = int(whitening)
        self._cache: OrderedDict[float, tuple[np.ndarray, np.ndarray, float]] = OrderedDict()
        self._store(1.0, k)
        # parts of K that remembered transforms point at, ready for aligned matches (prnu.decision)
        self.regions: dict[tuple, PreparedFingerprint | None] = {}

    def _store(self, scale: float, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        k = k - np.float32(k.mean(dtype=np.float64))
        spectrum = whiten_spectrum(scipy.fft.rfft2(k), self.whitening)
        entry = (k, spectrum, float(np.sqrt(np.sum(k.astype(np.float64) ** 2))))
        self._cache[scale] = entry
        while len(self._cache) > self.max_scales + 1:
            # keep the native scale (the first entry) for ever
            for key in self._cache:
                if key != 1.0:
                    del self._cache[key]
                    break
        return entry

    @property
    def k(self) -> np.ndarray:
        return self._cache[1.0][0]

    def at_scale(self, scale: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(K resized to `scale`, its whitened rfft2, its norm), from the cache when present."""
        key = round(float(scale), 6)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return self._store(key, resize(self.k, scaled_shape(self.shape, key)))


class PreparedQuery:
    """A query ready for matching: zero-mean W·I and its oriented, padded spectra (cached).

    Reuse one across all devices: spectra of a given orientation and size are
    computed once.
    """

    def __init__(
        self,
        residual: np.ndarray,
        intensity: np.ndarray | None = None,
        *,
        max_spectra: int = 8,
        whitening: int = WHITENING_WINDOW,
    ):
        w = np.asarray(residual, dtype=np.float32)
        if w.ndim != 2:
            raise MatchError(f"a residual must be a 2-D array, got shape {w.shape}")
        if intensity is not None:
            inten = np.asarray(intensity, dtype=np.float32)
            if inten.shape != w.shape:
                raise MatchError(f"intensity of shape {inten.shape} does not fit the residual of shape {w.shape}")
            w = w * inten
        self.q = w - np.float32(w.mean(dtype=np.float64))
        self.shape: tuple[int, int] = (int(w.shape[0]), int(w.shape[1]))
        self.norm = float(np.sqrt(np.sum(self.q.astype(np.float64) ** 2)))
        self.max_spectra = max(1, int(max_spectra))
        self.whitening = int(whitening)
        self._spectra: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def oriented_shape(self, rotation: int, flip: bool) -> tuple[int, int]:
        return self.shape if rotation in (0, 180) else (self.shape[1], self.shape[0])

    def spectrum(self, rotation: int, flip: bool, shape: tuple[int, int]) -> np.ndarray:
        key = (rotation, flip, shape)
        if key in self._spectra:
            self._spectra.move_to_end(key)
            return self._spectra[key]
        spec = whiten_spectrum(
            scipy.fft.rfft2(np.ascontiguousarray(orient(self.q, rotation, flip)), s=shape), self.whitening
        )
        self._spectra[key] = spec
        while len(self._spectra) > self.max_spectra:
            self._spectra.popitem(last=False)
        return spec


@dataclass
class _Best:
    pce: float = -np.inf
    ncc: float = 0.0
    sign: int = 0
    transform: Transform = field(default_factory=Transform)
    stage: str = "none"


def _aligned_score(x: np.ndarray, shape: tuple[int, int], neighbourhood: int) -> tuple[float, float]:
    """(PCE, peak) at zero shift from the cross-spectrum X, without an inverse FFT.

    The surface energy comes from Parseval (Σ c² = Σ|X|²/N over the full
    spectrum) and the 11×11 neighbourhood of the zero shift from a direct
    evaluation of the inverse DFT at those shifts (two small matrix products),
    so the result equals `pce(irfft2(X), shift_range=(0, 0))`.
    """
    h, w = shape
    n_cols = x.shape[1]
    weights = np.full(n_cols, 2.0, dtype=np.float32)
    weights[0] = 1.0
    if w % 2 == 0:
        weights[-1] = 1.0
    pairs = np.ascontiguousarray(x).view(x.real.dtype).reshape(x.shape[0], -1, 2)
    power = np.multiply(pairs[..., 0], pairs[..., 0])
    power += pairs[..., 1] * pairs[..., 1]
    total = float(np.dot(power.sum(axis=0, dtype=np.float64), weights.astype(np.float64))) / (h * w)
    r = neighbourhood // 2
    shifts_c = np.arange(-r, r + 1) if w > 2 * r else np.arange(w)
    shifts_r = np.arange(-r, r + 1) if h > 2 * r else np.arange(h)
    e_cols = np.exp(2j * np.pi * np.outer(np.arange(n_cols), shifts_c) / w).astype(np.complex64)
    e_cols *= weights[:, None]
    e_rows = np.exp(2j * np.pi * np.outer(shifts_r, np.arange(h)) / h).astype(np.complex64)
    near = (e_rows @ (x @ e_cols)).real.astype(np.float64) / (h * w)
    peak = float(near[list(shifts_r).index(0), list(shifts_c).index(0)])
    rest = h * w - near.size
    energy = (total - float(np.sum(near * near))) / max(rest, 1)
    if energy <= 0 or not np.isfinite(energy):
        return 0.0, peak
    return float(np.sign(peak) * peak * peak / energy), peak


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Σ a·b of two same-shape float32 arrays, accumulated in float64 (float32 product, no float64 copies)."""
    return float(np.multiply(a, b).sum(dtype=np.float64))


def _evaluate(
    query: PreparedQuery,
    prepared: PreparedFingerprint,
    rotation: int,
    flip: bool,
    scale: float,
    neighbourhood: int,
) -> tuple[float, float, int, tuple[int, int], int]:
    """Score one orientation at one scale: (pce, ncc, sign, offset, positions searched)."""
    k, k_spec, k_norm = prepared.at_scale(scale)
    big = k.shape
    h, w = query.oriented_shape(rotation, flip)
    spec = query.spectrum(rotation, flip, big)
    x = np.conjugate(spec)
    x *= k_spec
    if (h, w) == big:
        value, peak = _aligned_score(x, big, neighbourhood)
        dot = _dot(orient(query.q, rotation, flip), k)
        ncc = dot / (query.norm * k_norm) if query.norm > 0 and k_norm > 0 else 0.0
        return value, ncc, int(np.sign(peak)), (0, 0), 1
    surface = scipy.fft.irfft2(x, s=big, overwrite_x=True)  # x is ours: no copy
    rows, cols = big[0] - h, big[1] - w
    value, (py, px), sign = pce_of_surface(surface, shift_range=(rows, cols), neighbourhood=neighbourhood)
    region = k[py : py + h, px : px + w]
    # the NCC with the region's mean removed, from float64 sums of float32 products
    # (q is zero-mean, so Σ q·(region − m) = Σ q·region − m·Σ q)
    oriented = orient(query.q, rotation, flip)
    n = region.size
    region_sum = float(region.sum(dtype=np.float64))
    region_norm = float(np.sqrt(max(_dot(region, region) - region_sum * region_sum / n, 0.0)))
    dot = _dot(oriented, region) - region_sum / n * float(oriented.sum(dtype=np.float64))
    ncc = dot / (query.norm * region_norm) if query.norm > 0 and region_norm > 0 else 0.0
    return value, ncc, sign, (int(py), int(px)), (rows + 1) * (cols + 1)


def match(
    residual: np.ndarray | PreparedQuery,
    intensity: np.ndarray | None,
    fingerprint: np.ndarray | Fingerprint | PreparedFingerprint,
    *,
    search: str = "auto",
    hint: Transform | None = None,
    scales: Sequence[float] | None = None,
    progress: Progress | None = None,
    threshold: float = DEFAULT_PCE_THRESHOLD,
    flips: bool | None = None,
    orientations: str = "sensor",
    neighbourhood: int = 11,
    scale_step: float = 0.005,
    min_scale: float = 0.3,
) -> MatchResult:
    """Match a query residual against a fingerprint (PCE, Goljan 2009; geometric search, Goljan & Fridrich 2008).

    residual: the query's H×W float32 residual (`extract_residual`), or a
    `PreparedQuery` (reused across devices). intensity: the query's grey image
    (`intensity` or `to_gray`, 0..255) for the I·K term; None when `residual` is
    itself a fingerprint estimate. fingerprint: K (H×W), a `Fingerprint` or a
    `PreparedFingerprint` (recommended: caches K's FFT).

    search: "auto" (below), "aligned" (same size only, zero shift), "crop"
    (native scale, every offset), "scale" (crop search over `scales`, by default
    the full grid from 1.0 down to `min_scale` in relative steps of `scale_step`).
    "auto": the hint first; then zero shift for every orientation of equal size;
    then, for a smaller query, every offset at native scale; then, while nothing
    reaches `threshold`, the scales that make the query full-width or
    full-height, and the scales in `scales` when given (the full grid is costly:
    ask for it with search="scale"). Stops at the first stage that reaches
    `threshold`; otherwise reports the best PCE found over everything searched.

    hint: a transform found earlier for this device, tried first.
    orientations: "sensor" (default) tries the query as stored and, when its pixels
    are stored in portrait, turned by 90° and 270°: the orientations in which a
    camera's own pixels reach storage. "all" also tries 180° and mirrored copies
    (software-rotated or selfie-mirrored media). Why not always "all": units of one
    model share a fingerprint component that survives artefact removal and lines up
    under a 180° turn; on dresden-nikon it lifts the largest wrong-pair PCE from 9.2
    (as stored) to 21.5 (smallest true pair: 69.9).
    flips (with orientations="all"): also try mirrored queries (None: in the aligned
    search only, where they cost little; True: in every search; False: never). neighbourhood: side of the square
    left out of the PCE energy. scales: only scales below 1 are searched.
    progress: called with (done, total) after each orientation × scale tried.
    A query that fits the fingerprint under no orientation and scale is "no
    match": PCE 0, p_fa 1, n_positions 0.
    """
    if search not in SEARCH_MODES:
        raise MatchError(f"unknown search mode {search!r}: use one of {', '.join(SEARCH_MODES)}")
    query = residual if isinstance(residual, PreparedQuery) else PreparedQuery(residual, intensity)
    prepared = fingerprint if isinstance(fingerprint, PreparedFingerprint) else PreparedFingerprint(fingerprint)
    stages = _plan_stages(
        query,
        prepared.shape,
        search=search,
        hint=hint,
        scales=scales,
        flips=flips,
        orientations=orientations,
        scale_step=scale_step,
        min_scale=min_scale,
    )
    best, n_positions = _run_stages(
        query,
        prepared,
        stages,
        refine=search == "scale",
        threshold=threshold,
        neighbourhood=neighbourhood,
        scale_step=scale_step,
        progress=progress,
    )
    return _match_result(best, n_positions)


Orientation = tuple[int, bool]  # (rotation in degrees counter-clockwise, mirrored)
Stage = tuple[str, float, list[Orientation]]  # (stage name, scale, orientations tried at that scale)


def _orientation_rules(orientations: str, flips: bool | None) -> tuple[Sequence[Orientation], bool, bool]:
    """(orientations allowed, mirrored in the aligned search, mirrored in the crop and scale searches).

    `orientations` and `flips` as in `match`.
    """
    if orientations not in ("sensor", "all"):
        raise MatchError(f"unknown orientations {orientations!r}: use sensor or all")
    allowed = ALL_ORIENTATIONS if orientations == "all" else SENSOR_ORIENTATIONS
    flips_aligned = orientations == "all" and (True if flips is None else bool(flips))
    flips_search = orientations == "all" and bool(flips)
    return allowed, flips_aligned, flips_search


def _candidate_scales(
    query_shape: tuple[int, int],
    big: tuple[int, int],
    search: str,
    scales: Sequence[float] | None,
    scale_step: float,
    min_scale: float,
) -> list[float]:
    """Scales of the scale search, rounded to 6 decimals, each once, all in (0, 1).

    First those that make the query exactly full-width or full-height of the
    fingerprint of shape `big`, then `scales`; with search="scale" and no
    `scales`, the grid from 1.0 down to `min_scale` in relative steps of `scale_step`.
    """
    if search == "scale" and scales is None:
        wanted = scale_grid(min_scale, 1.0, scale_step)
    else:
        wanted = list(scales) if scales is not None else []
    out: list[float] = []
    seen: set[float] = set()
    for s in priority_scales(query_shape, big) + wanted:
        key = round(float(s), 6)
        if key not in seen and 0.0 < key < 1.0:
            seen.add(key)
            out.append(key)
    return out


def _plan_stages(
    query: PreparedQuery,
    big: tuple[int, int],
    *,
    search: str,
    hint: Transform | None,
    scales: Sequence[float] | None,
    flips: bool | None,
    orientations: str,
    scale_step: float,
    min_scale: float,
) -> list[Stage]:
    """The stages `match` tries, in order: hint, aligned, crop, then one per scale (arguments as in `match`)."""
    stages: list[Stage] = []
    if hint is not None:
        hint_scale = round(float(hint.scale), 6)
        if (hint.rotation, hint.flip) in orientations_that_fit(query.shape, scaled_shape(big, hint_scale)):
            stages.append(("hint", hint_scale, [(hint.rotation, hint.flip)]))
    allowed, flips_aligned, flips_search = _orientation_rules(orientations, flips)

    def fitting(shape: tuple[int, int], *, flips: bool, exact: bool = False) -> list[Orientation]:
        return [o for o in orientations_that_fit(query.shape, shape, flips=flips, exact=exact) if o in allowed]

    exact = fitting(big, flips=flips_aligned, exact=True)
    inside = [o for o in fitting(big, flips=flips_search) if o not in exact]
    if search in ("auto", "aligned") and exact:
        stages.append(("aligned", 1.0, exact))
    if search in ("auto", "crop") and inside:
        stages.append(("crop", 1.0, inside))
    if search in ("auto", "scale"):
        for scale in _candidate_scales(query.shape, big, search, scales, scale_step, min_scale):
            fits_here = fitting(scaled_shape(big, scale), flips=flips_search)
            if fits_here:
                stages.append(("scale", scale, fits_here))
    return stages


def _run_stages(
    query: PreparedQuery,
    prepared: PreparedFingerprint,
    stages: list[Stage],
    *,
    refine: bool,
    threshold: float,
    neighbourhood: int,
    scale_step: float,
    progress: Progress | None,
) -> tuple[_Best, int]:
    """Try `stages` in order; stop at the first that reaches `threshold`. Returns (best, positions searched).

    Every orientation × scale counts once towards the positions (the hint may repeat
    one). refine: a hit in the scale search is refined by `_refine` (search="scale").
    """
    total = sum(len(candidates) for _, _, candidates in stages)
    done = 0
    n_positions = 0
    best = _Best()
    tried: set[tuple[float, int, bool]] = set()
    for stage, scale, candidates in stages:
        for rotation, flip in candidates:
            done += 1
            if (scale, rotation, flip) in tried and stage != "hint":
                if progress is not None:
                    progress(done, total)
                continue
            tried.add((scale, rotation, flip))
            value, ncc, sign, offset, positions = _evaluate(query, prepared, rotation, flip, scale, neighbourhood)
            n_positions += positions
            if value > best.pce:
                best = _Best(value, ncc, sign, Transform(rotation, flip, scale, offset), stage)
            if progress is not None:
                progress(done, total)
            if stage != "aligned" and best.pce >= threshold:
                break  # a costly search stops at its first hit (aligned: all orientations, cheap)
        if best.pce >= threshold:
            if stage == "scale" and refine:
                best, n_positions = _refine(query, prepared, best, n_positions, scale_step, neighbourhood)
            break
    return best, n_positions


def _match_result(best: _Best, n_positions: int) -> MatchResult:
    """The `MatchResult` of a search, with p_fa over all `n_positions`; "no match" where nothing fitted."""
    if n_positions == 0:
        return MatchResult(0.0, 0.0, 1.0, Transform(), 0, 0, 0.0, "none")
    return MatchResult(
        pce=float(best.pce),
        ncc=float(best.ncc),
        p_fa=false_alarm_probability(best.pce, n_positions),
        transform=best.transform,
        n_positions=int(n_positions),
        peak_sign=int(best.sign),
        log10_p_fa=log10_false_alarm_probability(best.pce, n_positions),
        stage=best.stage,
    )


def _refine(
    query: PreparedQuery,
    prepared: PreparedFingerprint,
    best: _Best,
    n_positions: int,
    step: float,
    neighbourhood: int,
) -> tuple[_Best, int]:
    """Fine scale steps (a quarter of the grid step) on both sides of the best grid scale."""
    s0 = best.transform.scale
    rotation, flip = best.transform.rotation, best.transform.flip
    for j in (-3, -2, -1, 1, 2, 3):
        s = round(s0 * (1.0 + step) ** (j / 4), 6)
        if s >= 1.0 or not fits(query.oriented_shape(rotation, flip), scaled_shape(prepared.shape, s)):
            continue
        value, ncc, sign, offset, positions = _evaluate(query, prepared, rotation, flip, s, neighbourhood)
        n_positions += positions
        if value > best.pce:
            best = _Best(value, ncc, sign, Transform(rotation, flip, s, offset), "scale")
    return best, n_positions
