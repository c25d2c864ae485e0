"""Compact forms of fingerprints for screening thousands of them: binarised whitened fingerprints.

Why binarised, full resolution: a shortlist must keep every query whose full PCE reaches the
threshold (τ = 60, i.e. a z-score of √τ ≈ 7.75 at one aligned position). Any compact form keeps
part of the correlation's evidence, and the shortlist can only be as sure as that part:

- a digest of the strongest fingerprint values and their positions (Goljan, Fridrich & Filler,
  "Managing a large database of camera fingerprints", SPIE 2010) keeps the share f of K's energy
  those values hold; its correlation with the full statistic is √f. For Gaussian K the largest
  1 % of |K| hold f ≈ 0.08 (correlation 0.28), 10 % hold f ≈ 0.45: a query at PCE 60 then has a
  digest z of about 2.2 or 5.2, and the digest costs 0.2–1 M gathers per fingerprint;
- the signs of every value (Bayram, Sencar & Memon, "Efficient sensor fingerprint matching
  through fingerprint binarization", TIFS 2012) keep 1 bit per pixel, compared 64 pixels per
  machine word (XOR and popcount), at 1/32 of K's float32 size.

For the same bytes read per query the signs carry the most evidence, so the index keeps them.
Both arrays are whitened first exactly as `prnu.matching` does before its PCE (3×3 spectral
RMS, Kang et al. 2012), so the signs are those of the very signals the PCE correlates, and
PCE ≈ n·ρ² for the normalised correlation ρ of the two whitened arrays.

The query keeps more than its signs: its whitened W·I is heavy-tailed (bright, textured
pixels weigh more), and its signs alone lose half the evidence on simulated camera images
(score 3.7 for a pair of PCE 91.5, against 5.9 coded as below). It is coded as its signs and
4 magnitude classes (cut at the 50 %, 80 % and 95 % quantiles of |q|, each weighted by its
mean |q|): one XOR and four AND + popcount passes per fingerprint. The score is the weighted
sign agreement normalised to unit variance, standard normal when the fingerprint is not the
query's source; how it relates to the PCE, and so the shortlist rule and its recall, is in
`shortlist_cuts`. Pure functions on arrays; no files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import special

from .geometry import ALL_ORIENTATIONS, orientations_that_fit
from .matching import SENSOR_ORIENTATIONS, WHITENING_WINDOW, PreparedQuery, whiten_spectrum
from .stats import DEFAULT_PCE_THRESHOLD

# How many standard deviations of the score below its expected value at PCE = τ the shortlist still reaches.
DEFAULT_RECALL_MARGIN = 3.0
# The best-scoring fingerprints of a size are always shortlisted, whatever their score.
DEFAULT_ALWAYS_KEPT = 4
QUERY_QUANTILES = (0.5, 0.8, 0.95)  # edges of the query's magnitude classes (Lloyd-Max-like, 4 classes)
QUANTILE_STRIDE = 8  # the query's class edges come from every 8th |q| (a 1.5 MP query: 190,000 values)
BLOCK_ROWS = 16  # fingerprints scored per step: a block of 1.5 MP rows (3 MB) stays in the CPU cache


def words_for(shape: Sequence[int]) -> int:
    """uint64 words that hold one bit per pixel of an H×W array (the last word padded with zeros)."""
    return (int(shape[0]) * int(shape[1]) + 63) // 64


def pack_bits(mask: np.ndarray) -> np.ndarray:
    """A boolean H×W mask packed into uint64 words (row-major, zero-padded)."""
    flat = np.ascontiguousarray(mask).ravel()
    packed = np.packbits(flat)
    out = np.zeros(words_for(mask.shape) * 8, dtype=np.uint8)
    out[: packed.size] = packed
    return out.view(np.uint64)


def whitened_fingerprint(k: np.ndarray, whitening: int = WHITENING_WINDOW) -> np.ndarray:
    """K with its mean removed and its spectrum whitened as `PreparedFingerprint` does (float32, H×W)."""
    k = np.asarray(k, dtype=np.float32)
    k = k - np.float32(k.mean(dtype=np.float64))
    spectrum = whiten_spectrum(scipy.fft.rfft2(k), whitening)
    return scipy.fft.irfft2(spectrum, s=k.shape).astype(np.float32, copy=False)


def sign_efficiency(values: np.ndarray) -> float:
    """E|x| / √E[x²] of an array: the correlation of its signs with itself (√(2/π) ≈ 0.80 when Gaussian)."""
    v = np.asarray(values, dtype=np.float32).ravel()
    power = float(np.dot(v, v))
    return float(np.abs(v).sum(dtype=np.float64) / np.sqrt(power * v.size)) if power > 0 else 0.0


def fingerprint_code(k: np.ndarray) -> tuple[np.ndarray, float]:
    """What the index keeps of a fingerprint: its whitened signs (Bayram et al. 2012) and their `sign_efficiency`."""
    whitened = whitened_fingerprint(k)
    return pack_bits(whitened > 0), sign_efficiency(whitened)


@dataclass(frozen=True)
class QueryCode:
    """A query's whitened W·I as signs, magnitude classes (disjoint masks) and class weights.

    efficiency: the correlation of the coded query with the query itself, ρ_q = Σ|f||q| / √(Σf²·Σq²).
    """

    signs: np.ndarray
    masks: tuple[np.ndarray, ...]
    weights: tuple[float, ...]
    counts: tuple[int, ...]
    efficiency: float

    @property
    def norm(self) -> float:
        return math.sqrt(sum(w * w * c for w, c in zip(self.weights, self.counts, strict=True)))


def code_query(whitened: np.ndarray, quantiles: Sequence[float] = QUERY_QUANTILES) -> QueryCode:
    """Code a whitened query (H×W): its signs, and |q| in classes cut at `quantiles`, each weighted by its mean.

    The edges are the quantiles of every `QUANTILE_STRIDE`-th |q| (any edges give a valid code:
    the weights, counts and `efficiency` are those of the classes as cut); class c holds the
    values at or above c edges, as `np.digitize` numbers them.
    """
    q = np.asarray(whitened, dtype=np.float32)
    magnitude = np.abs(q)
    flat = magnitude.ravel()
    edges = np.quantile(flat[::QUANTILE_STRIDE], quantiles) if flat.size else np.zeros(len(quantiles))
    above = [flat >= edge for edge in edges]  # nested: each inside the one before
    totals = [float(flat.sum(dtype=np.float64))] + [float(flat.sum(where=a, dtype=np.float64)) for a in above]
    sizes = [flat.size] + [int(np.count_nonzero(a)) for a in above]
    classes = np.zeros(flat.size, dtype=np.uint8)
    for a in above:
        classes += a.view(np.uint8)
    classes = classes.reshape(magnitude.shape)
    masks, weights, counts = [], [], []
    coded_dot = coded_power = 0.0
    for c in range(len(edges) + 1):
        total = totals[c] - (totals[c + 1] if c + 1 < len(totals) else 0.0)
        count = sizes[c] - (sizes[c + 1] if c + 1 < len(sizes) else 0)
        weight = total / count if count else 0.0
        masks.append(pack_bits(classes == c))
        weights.append(weight)
        counts.append(count)
        coded_dot += weight * total
        coded_power += weight * weight * count
    power = float(np.dot(q.ravel(), q.ravel()))
    efficiency = coded_dot / math.sqrt(coded_power * power) if coded_power > 0 and power > 0 else 0.0
    return QueryCode(pack_bits(q > 0), tuple(masks), tuple(weights), tuple(counts), efficiency)


def code_prepared_query(query: PreparedQuery, rotation: int, flip: bool, shape: tuple[int, int]) -> QueryCode:
    """`code_query` of a prepared query's whitened W·I in one orientation, at a fingerprint's shape (an exact fit).

    The whitened spectrum is the matcher's own (`PreparedQuery.spectrum`, cached): a confirmed
    candidate's PCE then reuses it.
    """
    return code_query(scipy.fft.irfft2(query.spectrum(rotation, flip, shape), s=shape))


def aligned_orientations(
    query_shape: tuple[int, int], k_shape: tuple[int, int], orientations: str = "sensor"
) -> list[tuple[int, bool]]:
    """The orientations `prnu.match` tries at zero shift for a query that exactly fits K (empty: it does not).

    orientations: "sensor" or "all", as in `match` (mirrors only with "all").
    """
    allowed = ALL_ORIENTATIONS if orientations == "all" else SENSOR_ORIENTATIONS
    exact = orientations_that_fit(query_shape, k_shape, flips=orientations == "all", exact=True)
    return [o for o in exact if o in allowed]


def screenable(query_shape: tuple[int, int], k_shape: tuple[int, int]) -> bool:
    """Whether the comparison of this query with K is the aligned search only, which the index can screen.

    True when both are the same size once turned to landscape: `match` then tries zero shift in
    each orientation that fits exactly, and no crop or scale stage fits (a query as large as K
    fits no scaled-down K). Any other pair (crops, scaled video frames, roles swapped) is
    compared in full.
    """
    return sorted(query_shape[:2]) == sorted(k_shape[:2])


def cannot_match(query_shape: tuple[int, int], k_shape: tuple[int, int], k_is_video: bool) -> bool:
    """Whether `prnu.compare` answers "no match" without any search: a query larger than a sensor fingerprint.

    Its rule (`prnu.decision.compare`): a query larger than K in either landscape dimension
    cannot come from that sensor unless K was estimated from (downscaled) video frames, when
    the roles are swapped. Such pairs need neither the index nor a full comparison.
    """
    (q_rows, q_cols), (k_rows, k_cols) = sorted(query_shape[:2]), sorted(k_shape[:2])
    return (q_rows > k_rows or q_cols > k_cols) and not k_is_video


def _popcounts(words: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Set bits per row of a (rows × words) uint64 block (counts: a uint8 scratch block of the same shape)."""
    np.bitwise_count(words, out=counts)
    return counts.sum(axis=1, dtype=np.uint32)


def _score_rows(bits: np.ndarray, code: QueryCode, out: np.ndarray, start: int, stop: int) -> None:
    """`scores` of rows start..stop into out[start:stop], block by block."""
    base = code.weights[0]
    agree_all = sum(w * c for w, c in zip(code.weights, code.counts, strict=True))
    shape = (min(BLOCK_ROWS, max(stop - start, 1)), bits.shape[1])
    differ, masked = np.empty(shape, dtype=np.uint64), np.empty(shape, dtype=np.uint64)
    counts = np.empty(shape, dtype=np.uint8)
    for first in range(start, stop, BLOCK_ROWS):
        block = np.asarray(bits[first : min(first + BLOCK_ROWS, stop)])
        n = block.shape[0]
        np.bitwise_xor(block, code.signs, out=differ[:n])
        # Σ_c w_c·pop(X ∧ M_c) = w_0·pop(X) + Σ_{c≥1} (w_c − w_0)·pop(X ∧ M_c): the classes are disjoint
        weighted = base * _popcounts(differ[:n], counts[:n]).astype(np.float64)
        for mask, weight in zip(code.masks[1:], code.weights[1:], strict=True):
            np.bitwise_and(differ[:n], mask, out=masked[:n])
            weighted += (weight - base) * _popcounts(masked[:n], counts[:n])
        out[first : first + n] = (agree_all - 2.0 * weighted) / code.norm


def scores(bits: np.ndarray, code: QueryCode, *, threads: int = 1) -> np.ndarray:
    """The normalised weighted sign agreement of a coded query with every row of `bits` (float64, one per row).

    score = Σ_c w_c·(n_c − 2·popcount((q ⊕ k) ∧ M_c)) / √(Σ_c w_c²·n_c): standard normal when the
    fingerprint's signs are independent of the query's (not its source). bits: (fingerprints ×
    words) uint64, e.g. memory-mapped, read in blocks of `BLOCK_ROWS` (memory stays bounded).
    threads: share the rows among this many threads (numpy's bit operations release the GIL).
    """
    rows = bits.shape[0]
    out = np.zeros(rows, dtype=np.float64)
    if code.norm == 0 or rows == 0:
        return out
    threads = max(1, min(int(threads), rows))
    if threads == 1:
        _score_rows(bits, code, out, 0, rows)
        return out
    from concurrent.futures import ThreadPoolExecutor

    edges = np.linspace(0, rows, threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: _score_rows(bits, code, out, edges[i], edges[i + 1]), range(threads)))
    return out


def shortlist_cuts(
    efficiency: np.ndarray | float,
    threshold: float = DEFAULT_PCE_THRESHOLD,
    margin: float = DEFAULT_RECALL_MARGIN,
) -> np.ndarray:
    """The score at or above which each fingerprint is shortlisted for the full PCE.

    efficiency: c = ρ_q·e_K per fingerprint, the query code's `efficiency` times the
    fingerprint's `sign_efficiency`. The argument (small correlations, many pixels, whitened
    signals: the PCE at zero shift is z² with z the normalised correlation): the score and
    z = √PCE are jointly normal with correlation c (the covariance of Σ f·sign k with Σ q·k is
    Σ|f||q|·E|k|), so given z = t the score is N(c·t, 1 − c²). A query whose PCE reaches τ
    therefore scores under c·√τ − margin·√(1 − c²) with probability at most Φ(−margin):
    1.3e-3 at PCE exactly τ for margin 3, and far less above (`miss_probability`). A wrong
    fingerprint passes the cut with probability Q(cut): the price, paid in full PCEs.
    """
    c = np.clip(np.asarray(efficiency, dtype=np.float64), 0.0, 1.0)
    return c * math.sqrt(max(threshold, 0.0)) - margin * np.sqrt(1.0 - c * c)


def miss_probability(
    pce: float, efficiency: float, threshold: float = DEFAULT_PCE_THRESHOLD, margin: float = DEFAULT_RECALL_MARGIN
) -> float:
    """Model probability that a query whose full PCE is `pce` scores under its cut (see `shortlist_cuts`)."""
    c = min(max(efficiency, 0.0), 1.0)
    cut = float(shortlist_cuts(c, threshold, margin))
    return float(special.ndtr((cut - c * math.sqrt(max(pce, 0.0))) / math.sqrt(max(1.0 - c * c, 1e-12))))


def shortlist(values: np.ndarray, cuts: np.ndarray | float, always_kept: int = DEFAULT_ALWAYS_KEPT) -> np.ndarray:
    """Indices (ascending) of the scores at or above their cuts, plus the `always_kept` best of all."""
    keep = np.asarray(values >= cuts)
    if always_kept > 0 and values.size:
        keep[np.argsort(-values, kind="stable")[:always_kept]] = True
    return np.flatnonzero(keep)
