"""Stabilised video queries: a similarity transform per frame, found against the fingerprint, then frames combined.

Electronic image stabilisation (EIS) makes every frame a different crop, scale and small
rotation of the sensor, so a video's frames cannot be averaged as they are (their PRNU is
misaligned) and an aggregate matches nothing. Following Mandelli, Bestagini, Verdoliva &
Tubaro ("Facing device attribution problem for stabilized video sequences", TIFS 2020)
each frame's residual W·I is matched on its own, searching the similarity transform
(scale, rotation, translation) that aligns it with the reference fingerprint K; as in
Altinisik & Sencar ("Source camera verification for strongly stabilized videos", TIFS
2021) and GPU-PRNU-SIFT (ICIP 2022: scale ±0.15, rotation ±5°) the search is a grid,
made hierarchical here to run on a CPU:

- K is warped into each candidate's geometry (`warp`: scale and rotation about the
  centres) on the frame's grid plus a border for the translations, whose whole range one
  FFT crop search scores (PCE, Goljan 2009; spectra whitened as in `matching`).
- Coarse to fine: the grid of scales (±15 % around the nominal, one pixel at the frame's
  corner per step) and rotations (±`SearchPlan.rotation_range`) is first scored on 2×2
  block means of the first keyframes together (`prescreened`: a sixteenth of the cost);
  the best candidates are scored at full resolution, the first decisive one is climbed to
  the top of its peak (`_climb`) and each frame refined in half-pixel steps (`_local`).
- Keyframes first (the order given); each frame's search starts at its neighbour's
  transform; a frame that finds nothing there is searched wider around it on the coarse
  level (`_wide`: ±2 % scale, ±0.6°), as when stabilisation zooms or turns between frames.
- Stop early: after each frame the combination is tested; the first frame that makes the
  match certain ends the search (a few more are fitted only to tell whether the transform
  changes: `is_stabilised`). A coarse stage that finds nothing worth refining ends it too.

Measured on benchmarks/video_accuracy.py (simulated 720p H.264, 1600×1200 sensors, frames
a different integer shift of a window at scale 1.0594 of the non-stabilised video's): a
keyframe reaches PCE 100-750 at its transform and ~20-40 elsewhere; without the prescreen
the full-resolution grid (221 scales) cost about 22 s per device, with it about 5.

The decision counts every transform searched. The frames' signed √PCE are combined
(Stouffer: z = Σ wᵢzᵢ / √Σ wᵢ², weights fixed before the search: the frame weights), and
because each zᵢ is a maximum over the Nᵢ positions and transforms searched in frame i, the
false-alarm probability of the combination is bounded by the union over every choice of
one position per frame: p_fa ≤ (Π Nᵢ)·Q(z), i.e. log N = Σ log Nᵢ, whatever the
dependence between frames; the coarse grid counts whole (also the candidates the prescreen
never scored at full resolution), and so do the looks at the growing combination and the
aggregate comparison made before. The threshold for a match is the PCE at which this
bound equals that of the customary threshold at one position (`union_threshold`, which is
`decision.search_threshold` in logarithms), and `decision.decide` is called with that N,
so a report deciding again at another threshold agrees.

Pure functions on float32 arrays: no files, no printing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.fft
from scipy import ndimage, sparse, special

from ..results import Match, Method, PrnuEvidence, Stabilisation, TargetKind
from .decision import FingerprintStrength, decide, with_strength
from .matching import WHITENING_WINDOW, PreparedQuery, whiten_spectrum
from .stats import DEFAULT_PCE_THRESHOLD

# The search space (GPU-PRNU-SIFT, ICIP 2022): scale ±15 % around the nominal, rotation ±5°.
# The coarse stage searches rotation 0 by default (`SearchPlan.rotation_range`): each 0.08°
# of rotation range is another line of 221 scales (±5°: 129 lines, minutes per device on
# a CPU); rotations of up to ±0.6° from a frame's neighbour are found by `_wide`.
SCALE_RANGE = 0.15
ROTATION_RANGE = 5.0
# Translations searched, as a share of the frame's larger side, each way (EIS margins: 5-10 %).
TRANSLATION_SHARE = 0.06
NEIGHBOURHOOD = 11  # the PCE's excluded neighbourhood of the peak (Goljan 2009)
# How far a misalignment may move the frame's corner, in pixels of the level searched:
# half a pixel keeps most of the correlation of a (nearly) white pattern.
TOLERANCE_PX = 0.5


@dataclass(frozen=True)
class Similarity:
    """How one frame maps onto the fingerprint.

    scale: frame pixels per fingerprint pixel (as `Transform.scale`). rotation: degrees,
    counter-clockwise, of the frame relative to the fingerprint. shift: (rows, cols) of the
    frame's centre relative to the fingerprint's centre, in frame pixels.
    """

    scale: float = 1.0
    rotation: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict:
        return {
            "scale": round(float(self.scale), 6),
            "rotation": round(float(self.rotation), 4),
            "shift": [round(float(v), 2) for v in self.shift],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Similarity:
        shift = d.get("shift", (0.0, 0.0))
        return cls(float(d.get("scale", 1.0)), float(d.get("rotation", 0.0)), (float(shift[0]), float(shift[1])))


def block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean of factor×factor blocks (the array cropped to whole blocks); float32. factor 1: a float32 copy."""
    x = np.asarray(a, dtype=np.float32)
    if factor <= 1:
        return x.copy()
    h, w = (x.shape[0] // factor) * factor, (x.shape[1] // factor) * factor
    blocks = x[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def warp_fingerprint(
    k: np.ndarray,
    query_shape: tuple[int, int],
    scale: float,
    rotation: float,
    border: int,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """K resampled onto the grid of a frame of `query_shape` under (scale, rotation), with `border` pixels each side.

    Output pixel g (rows, cols; g = 0 is `border` pixels above/left of the frame's corner)
    holds K at c_K + R(rotation)·(g − border − c_q)/scale (bilinear; 0 outside K, so a
    frame that reaches past the fingerprint's edge still matches on the overlap). c_q,
    c_K: the centres of frame and fingerprint. Frame pixel u then correlates with output
    pixel u + border + t for the translation t (−border..border), which one FFT crop
    search of the frame inside the output scores at every t.
    """
    kk = np.asarray(k, dtype=np.float32)
    hq, wq = int(query_shape[0]), int(query_shape[1])
    theta = math.radians(float(rotation))
    c, s = math.cos(theta), math.sin(theta)
    # rows/cols: a counter-clockwise rotation of the image turns (row, col) by −theta
    matrix = np.array([[c, s], [-s, c]], dtype=np.float64) / float(scale)
    centre_q = np.array([(hq - 1) / 2 + border, (wq - 1) / 2 + border])
    centre_k = np.array([(kk.shape[0] - 1) / 2, (kk.shape[1] - 1) / 2])
    offset = centre_k - matrix @ centre_q
    out = out_shape or (hq + 2 * border, wq + 2 * border)
    return ndimage.affine_transform(kk, matrix, offset=offset, output_shape=out, order=1, mode="constant", cval=0.0)


def scale_step(shape: tuple[int, int], tolerance: float = TOLERANCE_PX) -> float:
    """Relative scale step that moves the corner of a frame of `shape` by `tolerance` pixels."""
    return float(tolerance) / (0.5 * math.hypot(shape[0], shape[1]))


def rotation_step(shape: tuple[int, int], tolerance: float = TOLERANCE_PX) -> float:
    """Rotation step (degrees) that moves the corner of a frame of `shape` by `tolerance` pixels."""
    return math.degrees(float(tolerance) / (0.5 * math.hypot(shape[0], shape[1])))


def centred_grid(centre: float, half_range: float, step: float) -> list[float]:
    """centre, centre ± step, centre ± 2·step, ... within ±half_range, nearest to the centre first."""
    n = int(math.floor(half_range / step + 1e-9))
    out = [centre]
    for i in range(1, n + 1):
        out += [centre + i * step, centre - i * step]
    return out


def _interpolation_matrix(n_out: int, n_in: int, start: float, step: float) -> sparse.csr_matrix:
    """n_out×n_in sparse matrix of linear interpolation at positions start + step·j (rows 0 outside the input)."""
    pos = start + step * np.arange(n_out, dtype=np.float64)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    inside = (i0 >= 0) & (i0 + 1 <= n_in - 1)
    rows = np.nonzero(inside)[0]
    cols = np.concatenate([i0[rows], i0[rows] + 1])
    values = np.concatenate([1.0 - frac[rows], frac[rows]]).astype(np.float32)
    return sparse.csr_matrix((values, (np.concatenate([rows, rows]), cols)), shape=(n_out, n_in))


def warp(
    k: np.ndarray,
    query_shape: tuple[int, int],
    scale: float,
    rotation: float,
    border: int,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """`warp_fingerprint`, by two sparse interpolation products when there is no rotation (several times faster).

    out_shape: the output's shape (at least the frame's plus `border` each side; larger
    outputs extend to the bottom and right, e.g. to a fast FFT size).
    """
    hq, wq = int(query_shape[0]), int(query_shape[1])
    out = out_shape or (hq + 2 * border, wq + 2 * border)
    if abs(float(rotation)) > 1e-9:
        return warp_fingerprint(k, query_shape, scale, rotation, border, out)
    kk = np.asarray(k, dtype=np.float32)
    origin = [(kk.shape[i] - 1) / 2 - ((query_shape[i] - 1) / 2 + border) / float(scale) for i in (0, 1)]
    rows = _interpolation_matrix(out[0], kk.shape[0], origin[0], 1.0 / scale)
    cols = _interpolation_matrix(out[1], kk.shape[1], origin[1], 1.0 / scale)
    return np.asarray((cols @ (rows @ kk).T).T, dtype=np.float32)


@dataclass(frozen=True)
class FrameFit:
    """The transform one frame found: its signed PCE there, and the transforms and positions it searched.

    index: the frame's position in the video; keyframe: an intra-coded frame. candidates:
    (scale, rotation) pairs tried at full resolution; positions: translations per candidate.
    """

    index: int
    keyframe: bool
    pce: float
    transform: Similarity
    candidates: int
    positions: int

    @property
    def z(self) -> float:
        return math.copysign(math.sqrt(abs(self.pce)), self.pce)

    def to_dict(self) -> dict:
        return {"frame": int(self.index), "keyframe": bool(self.keyframe), "pce": round(float(self.pce), 2)} | (
            self.transform.to_dict()
        )


@dataclass(frozen=True)
class StabilisedFrame:
    """One frame of a query video for the per-frame search: its W·I (residual times intensity), index, keyframe flag."""

    wi: np.ndarray
    index: int
    keyframe: bool
    weight: float = 1.0


class _Level:
    """The fingerprint and the frames at one resolution level (1: full; n: n×n block means)."""

    def __init__(self, k: np.ndarray, frames: Sequence[StabilisedFrame], level: int, share: float):
        self.level = level
        self.k = block_mean(k, level) if level > 1 else np.asarray(k, dtype=np.float32)
        self.frames: list[PreparedQuery | None] = [
            PreparedQuery(block_mean(f.wi, level) if level > 1 else f.wi) for f in frames
        ]
        self.shape = self.frames[0].shape
        self.border = max(2, int(round(share * max(self.shape))))
        self.big = tuple(scipy.fft.next_fast_len(n + 2 * self.border, real=True) for n in self.shape)
        self.positions = (2 * self.border + 1) ** 2
        self._conjugates: dict[int, np.ndarray] = {}

    def candidate(self, scale: float, rotation: float) -> np.ndarray:
        """The whitened spectrum of K warped for (scale, rotation) on this level's padded frame grid."""
        warped = warp(self.k, self.shape, scale, rotation, self.border, self.big)
        warped -= np.float32(warped.mean(dtype=np.float64))
        return whiten_spectrum(scipy.fft.rfft2(warped), WHITENING_WINDOW)

    def score(self, spectrum: np.ndarray, i: int) -> tuple[float, tuple[int, int]]:
        """(signed PCE, (row, col) shift in this level's pixels) of frame i against a candidate's spectrum."""
        if i not in self._conjugates:
            self._conjugates[i] = np.conjugate(self.frames[i].spectrum(0, False, self.big))
        x = self._conjugates[i] * spectrum
        surface = scipy.fft.irfft2(x, s=self.big, overwrite_x=True)
        value, (py, px) = surface_pce(surface, 2 * self.border, NEIGHBOURHOOD)
        return value, (py - self.border, px - self.border)

    def release(self, i: int) -> None:
        """Forget frame i's spectra (its search is done)."""
        self._conjugates.pop(i, None)
        self.frames[i] = None


def surface_pce(surface: np.ndarray, extent: int, neighbourhood: int = NEIGHBOURHOOD) -> tuple[float, tuple[int, int]]:
    """Signed PCE (Goljan 2009) of the largest value among shifts 0..extent × 0..extent of a circular surface.

    The energy is the mean square of the whole surface without the neighbourhood×neighbourhood
    square around the peak (float32 products, as `correlation.pce` within rounding).
    """
    window = surface[: extent + 1, : extent + 1]
    py, px = np.unravel_index(int(np.argmax(window)), window.shape)
    peak = float(window[py, px])
    flat = surface.ravel()
    total = float(np.dot(flat, flat))
    r = neighbourhood // 2
    h, w = surface.shape
    near = surface[np.ix_(np.arange(py - r, py + r + 1) % h, np.arange(px - r, px + r + 1) % w)]
    rest = surface.size - near.size
    energy = (total - float(np.sum(near.astype(np.float64) ** 2))) / max(rest, 1)
    if energy <= 0 or not np.isfinite(energy):
        return 0.0, (int(py), int(px))
    return math.copysign(peak * peak / energy, peak), (int(py), int(px))


@dataclass(frozen=True)
class SearchPlan:
    """What the per-frame search covers, and how it stops.

    nominal_scale: the frame's scale expected without stabilisation (frame pixels per
    fingerprint pixel: 1 for a fingerprint from the same video size, the video's own scale
    for a full-sensor fingerprint). scale_range: ± share of it searched. rotation_range: ±
    degrees searched by the coarse (global) stage; every fit also tries its neighbours'
    rotations ± one fine step. coarse_factor: the block side of the coarse level. joint_frames:
    frames scored together by the coarse stage (their transforms assumed close). max_frames:
    frames combined at most. translation_share: translations searched (each way) as a share
    of the frame's larger side. screen_alpha: the coarse stage's bound on the false-alarm
    probability under which its best transform is refined (else: no match, searched counted).
    stop_alpha: the bound at which the coarse stage stops at its candidate (found). describe_frames:
    frames fitted after a match only to tell whether the transform changes (not combined).
    track_factor, track_scale, track_rotation: a frame whose local search finds nothing is
    searched again on a level of this block side over ± this scale share and these degrees
    around its neighbour's transform (0 or 1: never). prescreen_keep: candidates of the coarse
    grid scored at full resolution after a prescreen at half resolution of the first
    prescreen_frames frames (`prescreened`; 0: all).
    """

    nominal_scale: float = 1.0
    scale_range: float = SCALE_RANGE
    rotation_range: float = 0.0
    coarse_factor: int = 1
    joint_frames: int = 1
    max_frames: int = 16
    translation_share: float = TRANSLATION_SHARE
    screen_alpha: float = 1e-3
    stop_alpha: float = 1e-9
    describe_frames: int = 2
    prescreen_keep: int = 16
    prescreen_frames: int = 3
    track_factor: int = 2
    track_scale: float = 0.02
    track_rotation: float = 0.6


@dataclass(frozen=True)
class StabilisedResult:
    """The per-frame search of one video against one fingerprint.

    pce: the combined signed PCE (z², z = Σwᵢzᵢ/√Σwᵢ², zᵢ the signed √PCE of frame i at its
    transform). log_n: natural log of the positions and transforms of the union bound (Σ log
    Nᵢ, the coarse candidates and the looks at the combination). fits: the frames combined,
    in the order searched. frames_decided: how many frames the decision needed (a match) or
    used (otherwise). global_candidates: (scale, rotation) pairs of the coarse stage.
    stabilised: the transforms change from frame to frame (None: too few clear frames to say).
    stage: "frames" (refined and combined) or "coarse" (the coarse stage found nothing to refine).
    """

    pce: float
    log_n: float
    fits: tuple[FrameFit, ...]
    frames_decided: int
    global_candidates: int
    stabilised: bool | None
    stage: str

    @property
    def n_positions(self) -> int:
        """The effective positions searched, exp(log_n) rounded up (what `decision.decide` takes)."""
        return int(math.ceil(math.exp(min(self.log_n, 700.0)) - 1e-9 * math.exp(min(self.log_n, 700.0))))

    @property
    def log10_p_fa(self) -> float:
        return log10_union_p_fa(self.pce, self.log_n)


def _log_tail(pce: float) -> float:
    """ln Q(sign·√|pce|)."""
    z = math.copysign(math.sqrt(abs(pce)), pce)
    return float(special.log_ndtr(-z))


def log10_union_p_fa(pce: float, log_n: float) -> float:
    """log₁₀ of min(1, e^log_n · Q(√pce)): the union bound over e^log_n positions (Goljan 2009)."""
    return min(0.0, (log_n + _log_tail(pce)) / math.log(10.0))


def union_threshold(threshold: float, log_n: float) -> float:
    """The PCE at which e^log_n · Q(√PCE) equals Q(√threshold): `decision.search_threshold` for huge N, in logs."""
    target = _log_tail(threshold) - max(log_n, 0.0)
    z = max(math.sqrt(max(threshold, 1.0)), 1.0)
    for _ in range(60):  # Newton on ln Q(z) = target; d ln Q / dz = −φ(z)/Q(z)
        log_q = float(special.log_ndtr(-z))
        slope = -math.exp(-0.5 * z * z - 0.5 * math.log(2 * math.pi) - log_q)
        step = (log_q - target) / slope
        z -= step
        if abs(step) < 1e-10:
            break
    return max(float(threshold), z * z)


def combine(fits: Sequence[FrameFit], weights: Sequence[float]) -> float:
    """Signed PCE of the frames together: z² with z = Σ wᵢzᵢ / √Σ wᵢ² (Stouffer; weights fixed before searching)."""
    w = np.asarray(weights, dtype=np.float64)
    z = np.asarray([f.z for f in fits], dtype=np.float64)
    norm = math.sqrt(float(np.sum(w * w)))
    value = float(np.sum(w * z)) / norm if norm > 0 else 0.0
    return math.copysign(value * value, value)


def coarse_candidates(plan: SearchPlan, shape: tuple[int, int]) -> list[tuple[float, float]]:
    """(scale, rotation) of the coarse stage on a level of `shape`: rotations nearest 0 first, scales nearest nominal first.

    Steps move the frame's corner by one pixel of that level (`scale_step`, `rotation_step`).
    """
    s_step = scale_step(shape, 1.0)
    scales = [plan.nominal_scale * (1.0 + d) for d in centred_grid(0.0, plan.scale_range, s_step)]
    rotations = centred_grid(0.0, plan.rotation_range, rotation_step(shape, 1.0)) if plan.rotation_range else [0.0]
    return [(s, r) for r in rotations for s in scales]


def _coarse_search(
    coarse: _Level, candidates: Sequence[tuple[float, float]], joint: int, alpha: float, universe: int = 0
) -> tuple[tuple[float, float], list[float], int, float]:
    """The coarse stage: every candidate scored on the first `joint` frames together (each frame its own translation).

    Returns ((scale, rotation) of the best joint PCE, the frames' PCEs there, candidates
    tried, ln of the union bound's false-alarm probability there). Stops at the first
    candidate whose bound (over the candidates tried so far) falls under `alpha`, then
    climbs from it to the top of its peak (`_climb`: a strong peak is wider than a step).
    universe: when `candidates` were picked from a larger grid by a prescreen, that grid's
    size: the bound counts every candidate of it as searched.
    """
    n = min(joint, len(coarse.frames))
    best, best_values, tried = (-math.inf, candidates[0]), [0.0] * n, 0
    log_alpha = math.log(alpha)
    for scale, rotation in candidates:
        tried += 1
        values = _joint(coarse, scale, rotation, n)
        joint_pce = combine([_Fit(v) for v in values], [1.0] * n)
        if joint_pce > best[0]:
            best, best_values = (joint_pce, (scale, rotation)), values
        if math.log(max(tried, universe)) + n * math.log(coarse.positions) + _log_tail(best[0]) < log_alpha:
            best, best_values, climbed = _climb(coarse, best, best_values, n)
            tried += climbed
            break
    counted = max(tried, universe + tried - len(candidates)) if universe else tried
    log_p = min(0.0, math.log(counted) + n * math.log(coarse.positions) + _log_tail(best[0]))
    return best[1], best_values, counted, log_p


def prescreened(k: np.ndarray, frames: Sequence[StabilisedFrame], candidates: list, plan: SearchPlan) -> list:
    """The `plan.prescreen_keep` candidates of `candidates` that score best on 2×2 block means of the first frames.

    A quarter of the pixels cost a sixteenth (FFT and warp) and the peak is twice as wide in
    pixels of that level; the first `plan.prescreen_frames` frames are scored together (their
    PCEs summed, each its own translation), so the true transform ranks near the top while
    the whole grid is scored; only those kept are scored at full resolution. The bound still
    counts the whole grid (`_coarse_search`'s universe).
    """
    if plan.prescreen_keep <= 0 or plan.prescreen_keep >= len(candidates):
        return list(candidates)
    used = list(frames)[: max(1, plan.prescreen_frames)]
    level = _Level(k, used, 2, plan.translation_share)
    values = []
    for scale, rotation in candidates:
        spectrum = level.candidate(scale, rotation)
        values.append(sum(level.score(spectrum, i)[0] for i in range(len(used))))
    order = np.argsort(-np.asarray(values), kind="stable")[: plan.prescreen_keep]
    return [candidates[int(i)] for i in order]


def _joint(coarse: _Level, scale: float, rotation: float, n: int) -> list[float]:
    spectrum = coarse.candidate(scale, rotation)
    return [coarse.score(spectrum, i)[0] for i in range(n)]


def _climb(coarse: _Level, best: tuple, values: list[float], n: int, max_steps: int = 40) -> tuple[tuple, list, int]:
    """Hill-climb from best = (joint PCE, (scale, rotation)) by one coarse step in scale, then rotation, while it rises.

    Returns the top reached, its frames' PCEs and the candidates tried.
    """
    s_step, r_step = scale_step(coarse.shape, 1.0), rotation_step(coarse.shape, 1.0)
    tried = 0
    moves = ((1 + s_step, 0.0), (1 / (1 + s_step), 0.0), (1.0, r_step), (1.0, -r_step))
    improved = True
    while improved and tried < max_steps:
        improved = False
        for factor, turn in moves:
            scale, rotation = best[1][0] * factor, best[1][1] + turn
            tried += 1
            trial = _joint(coarse, scale, rotation, n)
            value = combine([_Fit(v) for v in trial], [1.0] * n)
            if value > best[0]:
                best, values, improved = (value, (scale, rotation)), trial, True
                break
    return best, values, tried


@dataclass(frozen=True)
class _Fit:
    pce: float

    @property
    def z(self) -> float:
        return math.copysign(math.sqrt(abs(self.pce)), self.pce)


def _local(fine: _Level, i: int, start: tuple[float, float]) -> tuple[tuple[float, tuple[int, int], float, float], int]:
    """The local search of frame i around `start`: ((pce, shift, scale, rotation) of the best, candidates tried).

    Scales start·(1 + k·step), k = −2..2, at the start rotation; then rotations ± one step at
    the best scale (steps: half a pixel at the frame's corner).
    """
    s_step, r_step = scale_step(fine.shape), rotation_step(fine.shape)
    scale0, rotation0 = start
    best: tuple[float, tuple[int, int], float, float] = (-math.inf, (0, 0), scale0, rotation0)
    tried = 0
    for stage in ([(scale0 * (1.0 + k * s_step), rotation0) for k in (0, -1, 1, -2, 2)], None):
        if stage is None:
            stage = [(best[2], rotation0 + d * r_step) for d in (-1, 1)]
        for scale, rotation in stage:
            tried += 1
            value, shift = fine.score(fine.candidate(scale, rotation), i)
            if value > best[0]:
                best = (value, shift, scale, rotation)
    return best, tried


def _wide(coarse: _Level, i: int, start: tuple[float, float], plan: SearchPlan) -> tuple[tuple[float, float], int]:
    """Frame i searched on the coarse level over ±plan.track_scale and ±plan.track_rotation around `start`.

    Returns the best (scale, rotation) and the candidates tried (steps: one coarse pixel at the corner).
    """
    s_step, r_step = scale_step(coarse.shape, 1.0), rotation_step(coarse.shape, 1.0)
    scales = [start[0] * (1.0 + d) for d in centred_grid(0.0, plan.track_scale, s_step)]
    rotations = centred_grid(start[1], plan.track_rotation, r_step)
    best, where = -math.inf, start
    for rotation in rotations:
        for scale in scales:
            value, _ = coarse.score(coarse.candidate(scale, rotation), i)
            if value > best:
                best, where = value, (scale, rotation)
    return where, len(scales) * len(rotations)


def fit_frame(
    fine: _Level,
    i: int,
    frame: StabilisedFrame,
    start: tuple[float, float],
    coarse: _Level | None = None,
    plan: SearchPlan | None = None,
) -> FrameFit:
    """Frame i's transform at full resolution: a local search around `start` = (scale, rotation).

    When the local search finds nothing clear (the transform moved more since the frame
    before, as with strong stabilisation) and `coarse` is given, the frame is searched wider
    on the coarse level (`_wide`) and the local search repeated there. Every candidate
    counts: a wide search of n candidates multiplies the local ones by 1 + n.
    """
    best, tried = _local(fine, i, start)
    if coarse is not None and plan is not None and best[0] < _clear_level(tried * fine.positions):
        where, wide = _wide(coarse, i, start, plan)
        again, tried_again = _local(fine, i, where)
        if again[0] > best[0]:
            best = again
        tried = (tried + tried_again) * (1 + wide)
        coarse.release(i)
    value, shift, scale, rotation = best
    transform = Similarity(scale, rotation, (float(shift[0]), float(shift[1])))
    return FrameFit(frame.index, frame.keyframe, value, transform, tried, fine.positions)


def _clear_level(positions: int) -> float:
    """The PCE at which a frame found its transform clearly: one in a thousand by chance over `positions`."""
    return union_threshold(9.55, math.log(max(positions, 1)))


def _log_n(fits: Sequence[FrameFit], coarse_candidates_tried: int, looks: int) -> float:
    """ln of the union bound's count: coarse candidates × Π (candidates × translations of each frame) × looks."""
    total = math.log(max(coarse_candidates_tried, 1)) + math.log(max(looks, 1))
    return total + sum(math.log(max(f.candidates, 1) * max(f.positions, 1)) for f in fits)


def is_stabilised(fits: Sequence[FrameFit], shape: tuple[int, int]) -> bool | None:
    """Whether the transform changes from frame to frame, judged on the frames that found theirs clearly.

    A frame found its transform clearly when its PCE exceeds its own search threshold at one
    in a thousand (its candidates × translations). Transforms differ when their translations
    differ by more than 1.5 pixels, scales by more than two steps or rotations by more than
    two steps. None: fewer than two clear frames.
    """
    clear = [f for f in fits if f.pce >= _clear_level(f.candidates * f.positions)]
    if len(clear) < 2:
        return None
    first = clear[0].transform
    s_tol, r_tol = 2 * scale_step(shape), 2 * rotation_step(shape)
    for f in clear[1:]:
        t = f.transform
        moved = max(abs(t.shift[0] - first.shift[0]), abs(t.shift[1] - first.shift[1])) > 1.5
        if moved or abs(t.scale / first.scale - 1) > s_tol or abs(t.rotation - first.rotation) > r_tol:
            return True
    return False


def search_frames(
    k: np.ndarray,
    frames: Sequence[StabilisedFrame],
    plan: SearchPlan = SearchPlan(),
    threshold: float = DEFAULT_PCE_THRESHOLD,
) -> StabilisedResult:
    """Match the frames of a (possibly stabilised) video with fingerprint K, a similarity transform per frame.

    frames: keyframes first (the order searched), each its W·I at the frame size; weights
    are fixed before the search (frame quality), so they do not select. The coarse stage
    (`_coarse_search`) finds the transform of the first `plan.joint_frames` frames on
    block-averaged arrays; each frame is then fitted at full resolution around the
    transform of the frame before it (`fit_frame`), and after each frame the combination is
    tested against the threshold of everything searched (`union_threshold`): the search
    stops at the first frame that makes the match certain. Returns a `StabilisedResult`.
    """
    frames = list(frames)[: max(1, plan.max_frames)]
    if not frames:
        raise ValueError("no frame to search")
    coarse = _Level(k, frames[: plan.joint_frames], plan.coarse_factor, plan.translation_share)
    grid = coarse_candidates(plan, coarse.shape)
    candidates = prescreened(k, frames, grid, plan) if plan.joint_frames == 1 else grid
    start, values, tried, log_p = _coarse_search(coarse, candidates, plan.joint_frames, plan.stop_alpha, len(grid))
    shape = frames[0].wi.shape
    if log_p > math.log(plan.screen_alpha):  # nothing worth refining: the coarse stage's best, counted as searched
        n = len(values)
        pce = combine([_Fit(v) for v in values], [f.weight for f in frames[:n]])
        log_n = math.log(tried) + n * math.log(coarse.positions)
        return StabilisedResult(pce, log_n, (), n, tried, None, "coarse")
    fine = _Level(k, frames, 1, plan.translation_share)
    tracker = _Level(k, frames, plan.track_factor, plan.translation_share) if plan.track_factor > 1 else None
    fits: list[FrameFit] = []
    pce, log_n, decided = 0.0, 0.0, 0
    for i, frame in enumerate(frames):
        fit = fit_frame(fine, i, frame, start, tracker, plan)
        fits.append(fit)
        start = (fit.transform.scale, fit.transform.rotation)
        fine.release(i)
        if decided:  # after the decision: frames fitted only to describe the motion
            if len(fits) >= decided + plan.describe_frames:
                break
            continue
        pce = combine(fits, [f.weight for f in frames[: len(fits)]])
        log_n = _log_n(fits, tried, len(fits))
        if pce >= union_threshold(threshold, log_n):
            decided = len(fits)
            if plan.describe_frames <= 0:
                break
    used = decided or len(fits)
    # the motion is told only for a match: against another camera the "transforms" are chance peaks
    motion = is_stabilised(fits, shape) if decided else None
    return StabilisedResult(pce, log_n, tuple(fits), used, tried, motion, "frames")


def nominal_scale(query_shape: tuple[int, int], fingerprint_shape: tuple[int, int]) -> float | None:
    """The frame's scale on a fingerprint without stabilisation: the smallest at which it fits (full width or height).

    Frame pixels per fingerprint pixel: 1 for the same size; a 1280×720 frame on a 1600×1200
    sensor: 0.8 (the full width). None when the frame (as stored) cannot be a scaled view of
    the fingerprint's sensor (it is taller than wide where the fingerprint is wider than tall,
    or the reverse).
    """
    (hq, wq), (hk, wk) = query_shape, fingerprint_shape
    if (hq > wq) != (hk > wk) and hq != wq and hk != wk:
        return None
    return max(wq / wk, hq / hk)


def compare_stabilised(
    frames: Sequence[StabilisedFrame],
    k: np.ndarray,
    *,
    target: str = "",
    threshold: float = DEFAULT_PCE_THRESHOLD,
    strength: FingerprintStrength | None = None,
    plan: SearchPlan | None = None,
    earlier_positions: int = 0,
    expected: float | None = None,
) -> Match | None:
    """The per-frame comparison of a video's frames with fingerprint K, as a PRNU `Match` (None: it cannot apply).

    earlier_positions: the positions of the comparison already made with this fingerprint
    (the video's aggregate): counted too, it was a look at the same question. expected: the
    PCE a true pair would at least reach once its frames are aligned (`Calibration.expected`
    of the aggregate's `predicted_video_pce`); None: not predicted, so a PCE under the
    threshold cannot exclude the device (inconclusive: "no match" only where a true pair
    would have shown). The decision is `decision.decide` at the effective positions of the
    union bound, so that a report that decides again at another threshold agrees.
    """
    if not frames:
        return None
    shape = frames[0].wi.shape
    nominal = nominal_scale(shape, tuple(k.shape))
    if nominal is None:
        return None
    plan = plan or SearchPlan()
    if plan.nominal_scale == 1.0 and nominal != 1.0:
        plan = replace(plan, nominal_scale=nominal)
    found = search_frames(k, frames, plan, threshold)
    log_n = float(np.logaddexp(found.log_n, math.log(earlier_positions))) if earlier_positions > 0 else found.log_n
    n_positions = int(math.ceil(math.exp(min(log_n, 700.0))))
    evidence = PrnuEvidence(
        n_positions=n_positions,
        log10_p_fa=log10_union_p_fa(found.pce, log_n),
        threshold_at_search=round(union_threshold(threshold, log_n), 3),
        search_stage=f"per-frame similarity search ({found.stage})",
        transform_text=_describe(found),
        fingerprint_shape=tuple(int(v) for v in k.shape),
        stabilisation=_stabilisation(found.stabilised),
        frame_transforms=tuple(f.to_dict() for f in found.fits),
        frames_decided=int(found.frames_decided),
    )
    evidence = with_strength(evidence, strength)
    decision = decide(found.pce, threshold, n_positions, strength, 0.0 if expected is None else expected)
    p_fa = 10.0**evidence.log10_p_fa
    return Match(Method.PRNU, target, float(found.pce), decision, TargetKind.DEVICE, p_fa=p_fa, evidence=evidence)


def _stabilisation(flag: bool | None) -> Stabilisation:
    return Stabilisation.UNDETERMINED if flag is None else (Stabilisation.STABILISED if flag else Stabilisation.STEADY)


def _describe(found: StabilisedResult) -> str:
    """The transforms found, in words (scale and rotation ranges over the frames)."""
    if not found.fits:
        return f"no transform found by the coarse search ({found.global_candidates} scale/rotation candidates)"
    scales = [f.transform.scale for f in found.fits]
    rotations = [f.transform.rotation for f in found.fits]
    return (
        f"a transform per frame over {len(found.fits)} frames: scale {min(scales):.4f}-{max(scales):.4f}, "
        f"rotation {min(rotations):.2f}° to {max(rotations):.2f}°"
    )


# ---------------------------------------------------------------- stabilised reference videos
#
# A fingerprint from a stabilised reference video: each frame's W·I is aligned to the running
# estimate K̂ = ΣwWI/ΣwI² of the frames aligned before it (the per-frame search above, with K̂
# in the place of K: nominal scale 1, the identity first, then a local search and `_wide`),
# and brought into K̂'s geometry (`warp_to_fingerprint`) before it is summed. The first
# keyframe is the anchor: the fingerprint is in its geometry. Frames that find no clear
# transform (PCE under the level of one in a thousand by chance over what they searched)
# are left out, counted.
#
# The scene: a residual keeps some of the scene (edges), and one frame's scene correlates
# with another's at the scene's displacement far more than one frame's sensor pattern does
# (on simulated 640×360 video of a wall: PCE ~100-350 for the scene against ~10 for the
# sensor). The frame searched is therefore the difference D = WᵢIᵢ − WⱼIⱼ(· + d) with its
# neighbour in time j moved by the scene's displacement d (`scene_displacement`): the scene
# cancels, the sensor's pattern does not where it moved (a stabilised video: +K at frame i's
# transform, −K at frame j's); where it did not move (the video is not stabilised and the
# scene still) it cancels too and nothing aligns: the frames are summed as read. What is
# summed is WᵢIᵢ itself.


@dataclass(frozen=True)
class ReferenceFrame:
    """One frame of a reference video: W·I and I² (H×W float32), its index, keyframe flag, weight and grey image."""

    wi: np.ndarray
    energy: np.ndarray
    index: int
    keyframe: bool
    weight: float = 1.0
    image: np.ndarray | None = None  # the grey frame (H×W), to follow the scene (`scene_displacement`)


@dataclass(frozen=True)
class AlignedReference:
    """The frames of a reference video aligned to the running estimate (`align_reference`).

    frames: the frames to sum: warped into the anchor's geometry when the video is
    stabilised, else all of them as given. fits: the transform found for each frame
    searched (the anchor, at the identity, is not listed). left_out: indices of the frames
    that found no clear transform (only when stabilised). stabilised: the transforms change
    from frame to frame (None: too few frames found theirs to tell). anchor: its frame index.
    """

    frames: tuple[ReferenceFrame, ...]
    fits: tuple[FrameFit, ...]
    left_out: tuple[int, ...]
    stabilised: bool | None
    anchor: int


ALIGN_PLAN = SearchPlan(track_scale=0.03, track_rotation=0.8)
STEADY_FRAMES = 4  # the first frames all found at the identity: not stabilised; none found: undetermined
SCENE_CORRELATION = 0.3  # normalised correlation of two frames' blurred images above which their scene is followed
SCENE_BLUR = (
    2.0  # sigma (pixels) of the blur before the scene's displacement is measured: the sensor's pattern averages out
)


def scene_displacement(a: np.ndarray, b: np.ndarray, share: float = TRANSLATION_SHARE) -> tuple[int, int] | None:
    """The translation d (rows, cols) at which image b's scene lies in image a: b(u) shows what a(u + d) shows.

    Cross-correlation of the band-passed images (the difference of Gaussian blurs of σ =
    SCENE_BLUR and 4·SCENE_BLUR px: the scene's structure, without the sensor's fine pattern
    or smooth shading), Hann-windowed, not whitened; within
    ±share of the larger side. None when the peak's correlation is under SCENE_CORRELATION
    (a flat scene, which leaves nothing to cancel in the residuals either).
    """
    shape = a.shape
    border = max(2, int(round(share * max(shape))))
    window = np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)

    def prepared(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        y = ndimage.gaussian_filter(x, SCENE_BLUR) - ndimage.gaussian_filter(x, 4 * SCENE_BLUR)
        return (y - np.float32(y.mean(dtype=np.float64))) * window

    big = tuple(scipy.fft.next_fast_len(n + 2 * border, real=True) for n in shape)
    padded = np.zeros(big, np.float32)
    pa, pb = prepared(a), prepared(b)
    padded[border : border + shape[0], border : border + shape[1]] = pa
    surface = scipy.fft.irfft2(np.conjugate(scipy.fft.rfft2(pb, s=big)) * scipy.fft.rfft2(padded), s=big)
    window_part = surface[: 2 * border + 1, : 2 * border + 1]
    py, px = np.unravel_index(int(np.argmax(window_part)), window_part.shape)
    norm = float(np.sqrt(np.sum(pa.astype(np.float64) ** 2) * np.sum(pb.astype(np.float64) ** 2)))
    if norm <= 0 or float(window_part[py, px]) / norm < SCENE_CORRELATION:
        return None
    return (int(py) - border, int(px) - border)


def _moved(x: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    """x(u + d) on x's grid (integer d; 0 where it falls outside)."""
    out = np.zeros_like(x)
    h, w = x.shape
    dy, dx = d
    ys, yd = slice(max(dy, 0), min(h + dy, h)), slice(max(-dy, 0), min(h - dy, h))
    xs, xd = slice(max(dx, 0), min(w + dx, w)), slice(max(-dx, 0), min(w - dx, w))
    out[yd, xd] = x[ys, xs]
    return out


class SceneFree:
    """Each frame's W·I less its neighbour's in time moved by the scene's displacement (see above), and scene offsets.

    The neighbour is the frame before in time (the first frame: the one after). `difference(i)`
    is frame i's (its own W·I where the scene could not be followed: a flat scene leaves
    nothing to cancel, or no grey image); `offset(i)` its scene offset c (frame pixel u
    shows scene point u + c; the first frame in time: 0; None where the scene could not be
    followed). Computed when first asked (a steady video is told from its first few frames).
    """

    def __init__(self, frames: Sequence[ReferenceFrame], share: float = TRANSLATION_SHARE):
        self.frames, self.share = list(frames), share
        self.by_time = sorted(range(len(self.frames)), key=lambda i: self.frames[i].index)
        self.rank = {i: r for r, i in enumerate(self.by_time)}
        self._steps: dict[int, tuple[int, int] | None] = {}
        self._offsets: list[tuple[int, int] | None] | None = None

    def _neighbour(self, i: int) -> int | None:
        if len(self.by_time) < 2:
            return None
        r = self.rank[i]
        return self.by_time[r - 1] if r > 0 else self.by_time[1]

    def step(self, i: int) -> tuple[int, int] | None:
        """The scene's displacement from frame i's neighbour to frame i (None: not followed)."""
        if i not in self._steps:
            j = self._neighbour(i)
            a, b = (self.frames[j].image if j is not None else None), self.frames[i].image
            self._steps[i] = scene_displacement(a, b, self.share) if a is not None and b is not None else None
        return self._steps[i]

    def difference(self, i: int) -> np.ndarray:
        d = self.step(i)
        if d is None:
            return self.frames[i].wi
        return self.frames[i].wi - _moved(self.frames[self._neighbour(i)].wi, d)

    def offset(self, i: int) -> tuple[int, int] | None:
        if self._offsets is None:
            self._offsets = [None] * len(self.frames)
            chain = (0, 0)
            for rank, k in enumerate(self.by_time):
                d = self.step(k)
                if rank > 0:
                    chain = (chain[0] + (d or (0, 0))[0], chain[1] + (d or (0, 0))[1])
                self._offsets[k] = chain if d is not None else None
        return self._offsets[i]


def warp_to_fingerprint(a: np.ndarray, transform: Similarity, k_shape: tuple[int, int]) -> np.ndarray:
    """A frame's array (W·I or I²) resampled onto the fingerprint's grid: the inverse of the frame's `Similarity`.

    Frame pixel u corresponds to fingerprint position c_K + R(u + shift − c_q)/scale (as in
    `warp_fingerprint`); fingerprint pixel p takes the frame at c_q − shift + scale·R⁻¹(p − c_K)
    (bilinear; 0 where the frame does not reach, so such pixels add nothing to the sums).
    """
    x = np.asarray(a, dtype=np.float32)
    theta = math.radians(float(transform.rotation))
    c, s = math.cos(theta), math.sin(theta)
    inverse = float(transform.scale) * np.array([[c, -s], [s, c]], dtype=np.float64)
    centre_q = np.array([(x.shape[0] - 1) / 2, (x.shape[1] - 1) / 2]) - np.asarray(transform.shift, dtype=np.float64)
    centre_k = np.array([(k_shape[0] - 1) / 2, (k_shape[1] - 1) / 2])
    offset = centre_q - inverse @ centre_k
    return ndimage.affine_transform(
        x, inverse, offset=offset, output_shape=tuple(k_shape), order=1, mode="constant", cval=0.0
    )


def _running_estimate(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    from .fingerprint import clean_fingerprint

    return clean_fingerprint(num / (den + np.float32(1.0)))


def _pce_at_identity(level: _Level, spectrum: np.ndarray) -> float:
    """Signed PCE of frame 0 of `level` at the identity (translation 0): one position, nothing searched."""
    x = np.conjugate(level.frames[0].spectrum(0, False, level.big)) * spectrum
    surface = scipy.fft.irfft2(x, s=level.big, overwrite_x=True)
    b, r = level.border, NEIGHBOURHOOD // 2
    peak = float(surface[b, b])
    flat = surface.ravel()
    near = surface[b - r : b + r + 1, b - r : b + r + 1]
    rest = surface.size - near.size
    energy = (float(np.dot(flat, flat)) - float(np.sum(near.astype(np.float64) ** 2))) / max(rest, 1)
    return math.copysign(peak * peak / energy, peak) if energy > 0 else 0.0


SCENE_PX = 3.0  # a transform within this many pixels of the identity or of where the scene meets is not trusted


def _near(shift: tuple[float, float], at: tuple[float, float]) -> bool:
    return max(abs(shift[0] - at[0]), abs(shift[1] - at[1])) <= SCENE_PX


def _is_identity(t: Similarity, shape: tuple[int, int]) -> bool:
    """Within SCENE_PX of the identity (what is left of the scene in a difference lies there), scale and rotation at it."""
    return (
        _near(t.shift, (0.0, 0.0))
        and abs(t.scale - 1.0) <= 2 * scale_step(shape)
        and abs(t.rotation) <= 2 * rotation_step(shape)
    )


def _fit_to_estimate(estimate: np.ndarray, frame: ReferenceFrame, searched: np.ndarray, plan: SearchPlan) -> FrameFit:
    """One frame's transform against the running estimate: the identity if clear there, else the local and wide search."""
    single = [StabilisedFrame(searched, frame.index, frame.keyframe, frame.weight)]
    fine = _Level(estimate, single, 1, plan.translation_share)
    at_identity = _pce_at_identity(fine, fine.candidate(1.0, 0.0))
    if at_identity >= _clear_level(1):
        return FrameFit(frame.index, frame.keyframe, at_identity, Similarity(), 1, 1)
    coarse = _Level(estimate, single, plan.track_factor, plan.translation_share)
    return fit_frame(fine, 0, single[0], (1.0, 0.0), coarse, plan)


def align_reference(frames: Sequence[ReferenceFrame], plan: SearchPlan = ALIGN_PLAN) -> AlignedReference:
    """Align the frames of a reference video to the running estimate before they are summed (see above).

    Keyframes first (better quality), in the order given otherwise; the anchor is the first
    keyframe. Each frame's scene-free difference (`SceneFree`) is fitted against the
    estimate of the frames kept before it (`_fit_to_estimate`); frames that find no clear
    transform are tried once more against the final estimate, then left out. When the first
    STEADY_FRAMES frames all find the identity the video is not stabilised, when none of
    them finds a clear transform it is undetermined: either way every frame is returned as
    given (summed as read).
    """
    frames = list(frames)
    if not frames:
        raise ValueError("no frame to align")
    order = sorted(range(len(frames)), key=lambda i: (not frames[i].keyframe, i))
    scene = SceneFree(frames, plan.translation_share)
    anchor = frames[order[0]]
    shape = anchor.wi.shape
    num = anchor.wi * np.float32(anchor.weight)
    den = anchor.energy * np.float32(anchor.weight)
    kept, fits, waiting, tried = [anchor], [], [], 0
    placed = [(order[0], (0.0, 0.0))]  # (frame, translation into the estimate) of the frames summed
    for second_pass in (False, True):
        todo, waiting = (waiting, []) if second_pass else (order[1:], [])
        for i in todo:
            frame = frames[i]
            fit = _fit_to_estimate(_running_estimate(num, den), frame, scene.difference(i), plan)
            tried += 1
            identity = _is_identity(fit.transform, shape)
            clear = fit.pce >= _clear_level(fit.candidates * fit.positions)
            if (
                clear and not identity
            ):  # where the scene of a frame summed meets this frame's (c_i − c_k + s_k): not trusted
                own = scene.offset(i)
                meets = [
                    (own[0] - scene.offset(k)[0] + t[0], own[1] - scene.offset(k)[1] + t[1])
                    for k, t in placed
                    if own is not None and scene.offset(k) is not None
                ]
                clear = not any(_near(fit.transform.shift, at) for at in meets)
            if clear or second_pass:
                fits.append(fit)
            if not clear:
                waiting.append(i)
                if not second_pass and tried >= STEADY_FRAMES and len(fits) == 0:
                    return AlignedReference(tuple(frames), (), (), None, anchor.index)
                continue
            if not second_pass and len(fits) >= STEADY_FRAMES and all(_is_identity(f.transform, shape) for f in fits):
                return AlignedReference(tuple(frames), tuple(fits), (), False, anchor.index)
            t = Similarity() if identity else fit.transform
            wi = frame.wi if identity else warp_to_fingerprint(frame.wi, t, shape)
            energy = frame.energy if identity else warp_to_fingerprint(frame.energy, t, shape)
            num += wi * np.float32(frame.weight)
            den += energy * np.float32(frame.weight)
            kept.append(ReferenceFrame(wi, energy, frame.index, frame.keyframe, frame.weight))
            placed.append((i, (float(t.shift[0]), float(t.shift[1]))))
    moved = [
        f for f in fits if f.pce >= _clear_level(f.candidates * f.positions) and not _is_identity(f.transform, shape)
    ]
    # stabilised: frames found clearly away from the identity, and most frames aligned (else the scene may have led)
    stabilised = bool(moved) and 2 * len(kept) >= len(frames)
    if not stabilised:  # steady or undetermined: every frame as given, none left out
        flag = False if fits and not moved and not waiting else None
        return AlignedReference(tuple(frames), tuple(fits), (), flag, anchor.index)
    # in a stabilised video a frame found at the identity is where what is left of the scene lies: left out too
    at_identity = {f.index for f in fits if _is_identity(f.transform, shape)}
    kept = [f for f in kept if f.index == anchor.index or f.index not in at_identity]
    left_out = tuple(sorted({frames[i].index for i in waiting} | at_identity))
    return AlignedReference(tuple(kept), tuple(fits), left_out, True, anchor.index)
