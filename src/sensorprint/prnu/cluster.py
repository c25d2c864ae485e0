"""Grouping media by unknown source camera: pair scores, compact signatures, decision thresholds, groups.

Pure functions on arrays; the workflow (`workflow.cluster`) reads the files and runs them.

The method, after the published common-source tools:

- Pair score (`pair_score`): the PCE test of `verify` (Goljan 2009; Goljan & Fridrich 2008):
  the larger medium's one-medium fingerprint estimate (Chen et al. 2008) plays K, the
  smaller medium is the query, searched over the orientations a camera writes, crops and
  the scales that make it full-width or full-height (resized copies, video frames).
- Candidate pairs (`signature`, `candidate_pairs`): all pairs of a large collection cannot
  get a full PCE, so each medium also gets a compact signature, the zero-mean, unit-norm
  centre window of its W·I (Lin & Li, TIFS 2017 and Marra et al., TIFS 2017 cluster on
  centre crops of residuals); the normalised correlations of all pairs are one matrix
  product, and only pairs whose correlation is unlikely under "different cameras" are
  given the full score. The candidate level expects one chance candidate per medium.
- Decision (`decision_threshold`): a pair or a medium-to-group test links when its PCE
  reaches the PCE at which the false-alarm probability over the positions searched
  (`prnu.stats`) equals `family_alarm` shared among all the tests of the run (Bonferroni),
  and never under the customary PCE 60 (Goljan, Fridrich & Filler 2009).
- Groups (`components`, `GroupFingerprint`): linked pairs form the first groups (the
  Netherlands Forensic Institute's tools cut a hierarchical clustering at PCE 60); then
  each group's maximum-likelihood fingerprint, far stronger than one residual, is matched
  against every medium outside it: media join and groups merge until nothing changes
  (the split-and-merge refinement of Lin & Li 2017, with the fingerprint as the group's
  centroid, as in Marra et al. 2017).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
from scipy import sparse, special

from ..results import Decision, Match, Method, PrnuEvidence, TargetKind
from .decision import FingerprintStrength, Query, compare, landscape, search_threshold
from .fingerprint import FingerprintAccumulator
from .geometry import ALL_ORIENTATIONS, Transform, priority_scales, scaled_shape
from .matching import SENSOR_ORIENTATIONS, PreparedFingerprint, _evaluate
from .stats import (
    DEFAULT_PCE_THRESHOLD,
    false_alarm_probability,
    log10_false_alarm_probability,
    pce_threshold_for,
)

SIGNATURE_SIDE = 512  # pixels: the centre window of each medium's W·I kept for candidate search
FAMILY_ALARM = 0.01  # probability that any link of a whole run is a false alarm (shared among its tests)
QUANTISATION_CLIP = 4.0  # residuals are stored as int8 up to ±4 standard deviations
NEIGHBOURHOOD = 11  # pixels: the side of the square around the peak left out of the PCE energy (as in `match`)
CHANCE_CANDIDATES_PER_MEDIUM = 1.0  # expected candidate pairs per medium under "different cameras"
WINDOW_PIXELS = 1 << 20  # pixels of the centre window a pair of large images is first scored on


# ---------------------------------------------------------------- compact residual cache


def quantise(residual: np.ndarray) -> tuple[np.ndarray, float]:
    """A residual as int8 with one scale (grey levels per step), clipped at ±4 standard deviations.

    Why int8: residuals are near-Gaussian, and steps of σ/32 keep the correlation with
    the float32 residual above 0.999 at a quarter of the bytes. A video's aggregate
    ΣwWI/ΣwI² is heavy-tailed (dark pixels give values of many σ): the clip removes those,
    which helps it (a simulated 5-frame video scored PCE 100 against its group's
    fingerprint from this cache, 19 from a float16 copy keeping every value).
    """
    a = np.asarray(residual, dtype=np.float32)
    sigma = float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) if a.size else 0.0
    step = max(QUANTISATION_CLIP * sigma / 127.0, 1e-12)
    q = np.clip(np.rint(a / np.float32(step)), -127, 127).astype(np.int8)
    return q, step


def dequantise(q: np.ndarray, step: float) -> np.ndarray:
    """The float32 residual of `quantise`."""
    return np.asarray(q, dtype=np.float32) * np.float32(step)


# ---------------------------------------------------------------- pair score (shared with verify)


def one_medium_fingerprint(query: Query) -> np.ndarray:
    """The K that a single medium gives: a video's aggregate already estimates it; an image's one-medium ML estimate."""
    if query.intensity is None:
        return query.residual
    accumulator = FingerprintAccumulator(query.residual.shape)
    accumulator.add(query.intensity, residual=query.residual)
    return accumulator.result().k


def pair_order(a: Query, b: Query) -> tuple[Query, Query, bool]:
    """(query, reference, swapped): the larger medium plays the reference (the smaller may be its crop or scaled copy)."""
    if a.residual.size > b.residual.size:
        return b, a, True
    return a, b, False


def pair_score(
    a: Query,
    b: Query,
    *,
    threshold: float = DEFAULT_PCE_THRESHOLD,
    orientations: str = "sensor",
    target: str = "B",
    reference: np.ndarray | None = None,
    strength: FingerprintStrength | None = None,
    looks: int = 1,
) -> Match:
    """Do two media share a source? The PCE `Match` of the smaller against the larger's one-medium K.

    reference: the one-medium fingerprint of the reference side when already computed
    (or a `PreparedFingerprint` of it; a worker reuses it for every pair it meets).
    looks: how many times this pair, its videos growing frame by frame, has been decided
    (`decision.compare`). The same function answers `verify A B` for two files.
    """
    query, ref, _ = pair_order(a, b)
    k = one_medium_fingerprint(ref) if reference is None else reference
    return compare(
        query,
        k,
        target=target,
        k_is_video=ref.intensity is None,
        threshold=threshold,
        orientations=orientations,
        strength=strength,  # `verify` passes ONE_MEDIUM: one file cannot exclude, nor match by a search
        looks=looks,
    )


def centre_windows(a: Query, b: Query, pixels: int = WINDOW_PIXELS) -> tuple[Query, Query] | None:
    """Two images of one shape cut to the centre window of `pixels` pixels and their aspect, or None.

    None for videos, for media of different shapes, and for images under 4·`pixels` (the
    window would save little). A true pair's PCE grows with the pixels compared (Goljan
    2009: the PCE is about the pixels times the squared correlation), so where the whole
    image's PCE is in the thousands, the window already links at a quarter of the pixels or
    fewer, at a fraction of the cost (two FFTs of the window instead of the whole image).
    """
    shape = a.residual.shape
    if a.intensity is None or b.intensity is None or shape != b.residual.shape or a.residual.size < 4 * pixels:
        return None
    factor = float(np.sqrt(pixels / a.residual.size))
    rows, cols = int(shape[0] * factor), int(shape[1] * factor)
    top, left = (shape[0] - rows) // 2, (shape[1] - cols) // 2

    def cut(q: Query) -> Query:  # the same window of either medium
        window = (slice(top, top + rows), slice(left, left + cols))
        return Query(
            np.ascontiguousarray(q.residual[window]), np.ascontiguousarray(q.intensity[window]), cleaned=q.cleaned
        )

    return cut(a), cut(b)


def with_extra_positions(match: Match, extra: int, threshold: float) -> Match:
    """`match` with `extra` more positions counted as searched (another look at the same pair), decision redone.

    Two looks at one pair (its centre window, then the whole images) are a false alarm when
    either is: by the union bound, the positions of both are counted for each (Goljan 2009).
    """
    evidence = match.evidence
    if evidence is None or not evidence.n_positions or match.score is None:
        return match
    n = int(evidence.n_positions) + int(extra)
    needed = search_threshold(threshold, n)
    evidence = replace(
        evidence,
        n_positions=n,
        threshold_at_search=round(needed, 3),
        log10_p_fa=float(log10_false_alarm_probability(match.score, n)),
    )
    decision = match.decision
    if decision is Decision.MATCH and match.score < needed:
        decision = Decision.INCONCLUSIVE
    return replace(match, decision=decision, p_fa=float(false_alarm_probability(match.score, n)), evidence=evidence)


def windowed_pair_score(a: Query, b: Query, *, threshold: float, orientations: str = "sensor", reference=None) -> Match:
    """`pair_score` of two images, first on their centre windows (`centre_windows`), on the whole only when the
    window does not link; the positions of both looks are counted in each result (`with_extra_positions`).

    reference: a callable giving the larger side's prepared one-medium K, made only when
    the whole images are compared.
    """
    windows = centre_windows(a, b)
    looked = 0  # positions of the window's look
    if windows is not None:
        first = pair_score(*windows, threshold=threshold, orientations=orientations)
        looked = first.evidence.n_positions if first.evidence is not None else 0
        if first.decision is Decision.MATCH and looked:
            first = with_extra_positions(first, looked, threshold)
            if first.decision is Decision.MATCH:
                stage = f"centre window, {first.evidence.search_stage}"
                return replace(first, evidence=replace(first.evidence, search_stage=stage))
    found = pair_score(a, b, threshold=threshold, orientations=orientations, reference=reference and reference())
    return with_extra_positions(found, looked, threshold) if looked else found


# ---------------------------------------------------------------- signatures and candidate pairs


def view_count(shape: tuple[int, ...]) -> int:
    """How many landscape views (`landscape_views`), and so signature rows, a medium of this shape has."""
    return 1 if shape[0] <= shape[1] else 2


def landscape_views(a: np.ndarray) -> list[np.ndarray]:
    """The array turned to landscape: itself, or for portrait both ways of turning it (90° and 270°)."""
    if view_count(a.shape) == 1:
        return [a]
    return [np.rot90(a, 1), np.rot90(a, 3)]


def centre_window(a: np.ndarray, side: int = SIGNATURE_SIDE) -> tuple[np.ndarray, int]:
    """The zero-mean, unit-norm centre side×side window of a landscape array (zero-padded when smaller), flat.

    Returns (float32 vector of side² values, pixels in the window).
    """
    h, w = a.shape
    ch, cw = min(side, h), min(side, w)
    top, left = (h - ch) // 2, (w - cw) // 2
    window = np.asarray(a[top : top + ch, left : left + cw], dtype=np.float32)
    window = window - np.float32(window.mean(dtype=np.float64))
    norm = float(np.sqrt(np.sum(window.astype(np.float64) ** 2)))
    out = np.zeros((side, side), np.float32)
    pt, pl = (side - ch) // 2, (side - cw) // 2
    if norm > 0:
        out[pt : pt + ch, pl : pl + cw] = window / np.float32(norm)
    return out.ravel(), ch * cw


def signature(reference_form: np.ndarray, side: int = SIGNATURE_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """A medium's signature: its centre windows (one per landscape view, float16 rows) and their pixel counts.

    reference_form: W·I of an image, or a video's aggregate K (`Query.as_reference`).
    """
    rows, counts = zip(*(centre_window(view, side) for view in landscape_views(reference_form)), strict=True)
    return np.stack(rows).astype(np.float16), np.asarray(counts, np.int64)


def resample_matrix(n_in: int, n_out: int) -> sparse.csr_matrix:
    """The n_out × n_in matrix of antialiased linear resampling along one axis (sparse, float32 weights).

    Output pixel u sees input position c = (u + ½)·n_in/n_out − ½ through a triangle of
    half-width max(1, n_in/n_out) input pixels, weights renormalised at the borders: the
    antialiased bilinear of image editors (Pillow's `resize`, MATLAB's `imresize`), which
    low-pass filter before they sample when they shrink. Downscaling K by point sampling
    (`prnu.geometry.resize`) instead keeps the aliased high frequencies: against a photo
    shrunk to 50% by an editor, its correlation with the true scaled K is 0.93 (PCE ×0.87),
    0.99 with this matrix (white K, Pillow bicubic).
    """
    ratio = n_in / n_out
    support = max(1.0, ratio)
    centre = (np.arange(n_out) + 0.5) * ratio - 0.5
    reach = int(np.ceil(support)) + 1
    first = np.floor(centre).astype(np.int64)
    cols = first[:, None] + np.arange(-reach, reach + 1)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs(cols - centre[:, None]) / support)
    weights[(cols < 0) | (cols >= n_in)] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    keep = weights > 0
    rows = np.broadcast_to(np.arange(n_out)[:, None], cols.shape)
    return sparse.csr_matrix(
        (weights[keep].astype(np.float32), (rows[keep], cols[keep])), shape=(n_out, n_in), dtype=np.float32
    )


def resize_antialiased(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D array resized to `shape` as an editor shrinks a photo (`resample_matrix` on both axes), float32."""
    a = np.asarray(a, dtype=np.float32)
    if tuple(shape) == a.shape:
        return a.copy()
    along_rows = resample_matrix(a.shape[0], int(shape[0])) @ a
    return np.ascontiguousarray((resample_matrix(a.shape[1], int(shape[1])) @ along_rows.T).T, dtype=np.float32)


def full_view_scales(query_shape: tuple[int, int], k_shape: tuple[int, int]) -> list[float]:
    """The scales (query pixels per K pixel, under 1) at which the query is K's full width or full height.

    A smaller medium of a camera is the whole sensor resized (an edited copy) or its width
    resized and cropped to another aspect (video frames); a crop at native scale is never
    looked for (it never links, see `workflow.cluster`).
    """
    return [s for s in priority_scales(tuple(query_shape), tuple(k_shape)) if s < 1.0]


def full_view_orientations(
    query_shape: tuple[int, int], k_shape: tuple[int, int], allowed: Sequence[tuple[int, bool]]
) -> list[tuple[int, bool]]:
    """The orientations in `allowed` under which the query fits K (of `k_shape`) at its full width or full height."""
    out = []
    for rotation, flip in allowed:
        h, w = query_shape if rotation in (0, 180) else query_shape[::-1]
        if h <= k_shape[0] and w <= k_shape[1] and (h == k_shape[0] or w == k_shape[1]):
            out.append((rotation, flip))
    return out


def scaled_fingerprints(k: np.ndarray, query_shape: tuple[int, int]) -> dict[float, PreparedFingerprint]:
    """{scale: K resized to it (`resize_antialiased`), prepared}: what `join_score` searches for a medium of this size.

    K's spectrum is left as it is (whitening 0); only the medium's is whitened. The
    detector that correlates the whitened observation with the unwhitened signal weighs each
    frequency by the PRNU power it carries (the matched filter); whitening K as well
    equalises the frequencies that shrinking emptied of PRNU with those that keep it. On
    the simulated set (benchmarks/cluster_accuracy.py, 8 cameras with twins) the median PCE
    of true resized media and videos against their group rose from 115 to 193, the largest
    of other cameras' (twins included) stayed at 20–27.
    """
    return {
        s: PreparedFingerprint(resize_antialiased(k, scaled_shape(k.shape, s)), whitening=0)
        for s in full_view_scales(query_shape, k.shape)
    }


def join_score(
    query: Query,
    k: np.ndarray,
    *,
    k_is_video: bool,
    threshold: float,
    orientations: str = "sensor",
    target: str = "",
    scaled: dict[float, PreparedFingerprint] | None = None,
    prepared: PreparedFingerprint | None = None,
) -> Match:
    """A medium against a fingerprint K: aligned when of K's size, else at the scales that make it K's full
    width or height (Goljan & Fridrich 2008; the resized-media step of Lin & Li, TIFS 2017).

    A smaller medium is searched, in each orientation that fits, only at `full_view_scales`,
    against K shrunk by an editor's antialiased resampling (`resize_antialiased`), over the
    few offsets left (none for a copy of the sensor's aspect; the rows cropped away for a
    16:9 video of a 4:3 sensor). Every position of every scale and orientation is counted in
    n_positions, so the run's false-alarm threshold (`decision_threshold`) covers the whole
    search. The native-scale crop search, whose chance peaks over 10⁵–10⁶ offsets exceed the
    Gaussian null, is not made. Media of K's size or larger: `compare` (aligned; a larger
    medium against video-estimated K with the roles swapped). scaled: `scaled_fingerprints`
    of K for this query's size, when already made (a worker reuses them). prepared: K itself with its FFT, for
    the aligned comparison (made once for all the media tested against one K).
    """
    (q_rows, q_cols), (k_rows, k_cols) = landscape(query.residual.shape), landscape(k.shape)
    if (q_rows, q_cols) == (k_rows, k_cols) or q_rows > k_rows or q_cols > k_cols:
        aligned = prepared if prepared is not None else k
        return compare(
            query, aligned, target=target, k_is_video=k_is_video, threshold=threshold, orientations=orientations
        )
    if scaled is None:
        scaled = scaled_fingerprints(k, query.residual.shape)
    prepared_query = query.prepared()
    allowed = [o for o in ALL_ORIENTATIONS if not o[1]] if orientations == "all" else list(SENSOR_ORIENTATIONS)
    best, n_positions = None, 0
    for s, prepared in scaled.items():
        for rotation, flip in full_view_orientations(prepared_query.shape, prepared.shape, allowed):
            pce, ncc, _, offset, positions = _evaluate(prepared_query, prepared, rotation, flip, 1.0, NEIGHBOURHOOD)
            n_positions += positions
            if best is None or pce > best[0]:
                best = (pce, ncc, Transform(rotation, flip, s, offset))
    evidence = PrnuEvidence(fingerprint_shape=tuple(int(v) for v in k.shape))
    if best is None:
        reason = f"the medium ({q_cols}x{q_rows}) is no full-width or full-height view of K ({k_cols}x{k_rows})"
        return Match(
            Method.PRNU, target, 0.0, Decision.INCONCLUSIVE, p_fa=1.0, evidence=replace(evidence, reason=reason)
        )
    pce, ncc, transform = best
    p_fa = false_alarm_probability(pce, n_positions)
    needed = search_threshold(threshold, n_positions)
    evidence = PrnuEvidence(
        fingerprint_shape=tuple(int(v) for v in k.shape),
        threshold_at_search=round(needed, 3),
        n_positions=int(n_positions),
        log10_p_fa=float(log10_false_alarm_probability(pce, n_positions)),
        search_stage="scale",
        transform_text=transform.describe(),
    )
    decision = Decision.MATCH if pce >= needed else Decision.INCONCLUSIVE
    return Match(
        Method.PRNU,
        target,
        float(pce),
        decision,
        TargetKind.DEVICE,
        ncc=float(ncc),
        p_fa=float(p_fa),
        transform=transform.to_dict(),
        evidence=evidence,
    )


def scaled_signature(k: np.ndarray, shape: tuple[int, int], side: int = SIGNATURE_SIDE) -> tuple[np.ndarray, int]:
    """The centre window of a group fingerprint K (landscape) resized as a medium of `shape` would see it.

    A smaller medium is taken for the whole sensor resized (full width, else full height:
    resized copies and video frames); the window is then at that medium's scale.
    """
    rows, cols = landscape(shape)
    scale = min(1.0, cols / k.shape[1])
    if round(k.shape[0] * scale) < rows:
        scale = min(1.0, rows / k.shape[0])
    target = scaled_shape(k.shape, scale)
    scaled = k if tuple(target) == tuple(k.shape) else resize_antialiased(k, target)
    vector, n = centre_window(scaled, side)
    return vector.astype(np.float16), n


def candidate_z(n_tests_per_medium: int, chance_per_medium: float = CHANCE_CANDIDATES_PER_MEDIUM) -> float:
    """The correlation z-score above which a pair is a candidate: `chance_per_medium` expected by chance per medium.

    Under "different cameras" a centre-window correlation times √(pixels) is standard normal.
    """
    p = min(0.5, chance_per_medium / max(int(n_tests_per_medium), 1))
    return float(-special.ndtri(p))


def single_candidate_z(n_groups: int, chance_per_medium: float = CHANCE_CANDIDATES_PER_MEDIUM) -> float:
    """The z-score above which a single medium is tested against a group fingerprint: `chance_per_medium`
    expected by chance over the `n_groups` group fingerprints it is screened against."""
    return candidate_z(n_groups, chance_per_medium)


def correlation_z(
    rows: np.ndarray, row_counts: np.ndarray, cols: np.ndarray, col_counts: np.ndarray, block: int = 512
) -> np.ndarray:
    """z-scores (correlation × √(pixels in common)) of every row signature against every column signature.

    rows, cols: float16 signatures (one per line); counts: pixels behind each. The rows are
    converted to float32 once, the columns `block` at a time, each once (a conversion costs
    about a third of its product with 256 rows), so a collection's signatures stay float16
    in memory (10,000 media of 512² windows: 5 GB, and 1 MB more per row and per column of
    a block while a product runs).
    """
    out = np.empty((rows.shape[0], cols.shape[0]), np.float32)
    left = np.asarray(rows, dtype=np.float32)
    for c0 in range(0, cols.shape[0], block):
        product = left @ np.asarray(cols[c0 : c0 + block], dtype=np.float32).T
        common = np.minimum(row_counts[:, None], col_counts[None, c0 : c0 + block])
        out[:, c0 : c0 + block] = product * np.sqrt(common).astype(np.float32)
    return out


def stack_signatures(
    signatures: Iterable[tuple[np.ndarray, np.ndarray]], n_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, pixel counts, owner of each row) of many media's signatures stacked (float16 rows).

    n_rows: the rows of all of them, when known beforehand: each signature is then copied into
    place as it comes, so the collection is held once (10,000 landscape media of 512² windows:
    5.2 GB), not twice while a list of them is joined.
    """
    if n_rows is None:
        signatures = list(signatures)
        n_rows = sum(len(s[0]) for s in signatures)
    rows: np.ndarray | None = None
    counts, owners = np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64)
    at = 0
    for i, (signature_rows, pixels) in enumerate(signatures):
        if rows is None:
            rows = np.empty((n_rows, signature_rows.shape[1]), np.float16)
        end = at + len(signature_rows)
        if end > n_rows:
            raise ValueError(f"more signature rows than the {n_rows} announced")
        rows[at:end], counts[at:end], owners[at:end] = signature_rows, pixels, i
        at = end
    if at != n_rows:
        raise ValueError(f"{at} signature rows, not the {n_rows} announced")
    if rows is None:
        return np.zeros((0, 0), np.float16), counts, owners
    return rows, counts, owners


def candidate_pairs(
    stacked: tuple[np.ndarray, np.ndarray, np.ndarray], z_min: float | None = None, block: int = 512
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, z) with i < j whose best centre-window z-score over their views reaches `z_min`.

    stacked: the media's signatures, `stack_signatures` of one `signature` per medium. z_min:
    default `candidate_z` for this many views. Computed in blocks of `block` rows (memory
    O(block × views), not O(views²)). Sorted by (i, j).
    """
    rows, counts, owners = stacked
    if len(set(owners.tolist())) < 2:
        return []
    if z_min is None:
        z_min = candidate_z(len(owners))
    best: dict[tuple[int, int], float] = {}
    for start in range(0, len(owners), block):
        # views are stacked in medium order, so every pair of views is met once, in the block of the
        # first of them: only the columns from the block's start on (half of the products)
        z = correlation_z(rows[start : start + block], counts[start : start + block], rows[start:], counts[start:])
        r, c = np.nonzero(z >= z_min)
        i, j = owners[start + r], owners[start + c]
        for a, b, value in zip(i.tolist(), j.tolist(), z[r, c].tolist(), strict=True):
            if a < b and value > best.get((a, b), -np.inf):
                best[(a, b)] = value
    return [(a, b, float(best[(a, b)])) for a, b in sorted(best)]


# ---------------------------------------------------------------- decisions


def decision_threshold(
    n_tests: int, n_positions: int, *, family_alarm: float = FAMILY_ALARM, floor: float = DEFAULT_PCE_THRESHOLD
) -> float:
    """The PCE a test must reach to link: false-alarm probability `family_alarm` / `n_tests` over its positions.

    n_tests: the tests of the run (pairs scored plus media-to-group tests); n_positions:
    the positions this test searched. Never under `floor` (the customary PCE 60).
    """
    per_test = family_alarm / max(int(n_tests), 1)
    return max(float(floor), pce_threshold_for(per_test, max(int(n_positions), 1)))


@dataclass(frozen=True)
class LinkRule:
    """When a score of a clustering run links its two sides (`decision_threshold` over its positions).

    n_tests: the tests of the run. A score found by the native-scale crop search never links:
    over 10⁵–10⁶ offsets, residuals of two JPEG images reach PCE 40–117 by chance, and a
    resized photo reached PCE 61 against the fingerprint of another camera's group (simulated
    cameras of different sensor sizes, same processing: benchmarks/cluster_accuracy.py), far
    above what the Gaussian null of the false-alarm probability predicts. Crops (not resized)
    are therefore left as single media; resized copies, portrait turns and video frames link
    by the aligned and scale searches.
    """

    n_tests: int
    family_alarm: float = FAMILY_ALARM
    floor: float = DEFAULT_PCE_THRESHOLD

    def links(self, score: float | None, n_positions: int | None, stage: str | None = None) -> bool:
        if stage == "crop" or score is None or not n_positions:
            return False
        return score >= decision_threshold(self.n_tests, n_positions, family_alarm=self.family_alarm, floor=self.floor)

    def links_match(self, match: Match) -> bool:
        evidence = match.evidence
        if evidence is None:
            return False
        return self.links(match.score, evidence.n_positions, evidence.search_stage)


# ---------------------------------------------------------------- groups


class UnionFind:
    """Disjoint sets of media 0..n-1 (path halving; the smaller root wins, so results do not depend on order)."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def root(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def copy(self) -> UnionFind:
        other = UnionFind(0)
        other.parent = list(self.parent)
        return other


def components(n: int, edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of media 0..n-1 under `edges` (union-find), each sorted, ordered by first member."""
    sets = UnionFind(n)
    for a, b in edges:
        sets.union(a, b)
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(sets.root(x), []).append(x)
    return sorted(groups.values(), key=lambda g: g[0])


def component_sizes(sets: UnionFind) -> dict[int, int]:
    """{root: members} of the disjoint sets."""
    sizes: dict[int, int] = {}
    for x in range(len(sets.parent)):
        root = sets.root(x)
        sizes[root] = sizes.get(root, 0) + 1
    return sizes


def pair_waves(
    candidates: Sequence[tuple[int, int, float]], linked: UnionFind
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]]]:
    """(the next wave of candidate pairs to score, the candidates left for later waves).

    candidates: (i, j, z) in the order to try them (strongest signature first). linked: the
    media joined so far by pairs that linked. A pair whose media are already linked is
    dropped: its score could not change the groups (connected components). So is a pair
    whose media both lie in linked groups of two or more: whether those groups are one
    camera is the group stage's question, answered by their fingerprints, far stronger than
    one medium's residual (the split-and-merge of Lin & Li, TIFS 2017); one-medium scores
    between groups were mostly chance candidates and same-model twins, half of all full
    scores of a collection of 10 photos per camera. A pair is put in the wave unless the
    wave's pairs, were they all to link, would already join its media, or would put both of
    them in groups of two or more; then it waits for a later wave (it is needed only if
    some of them fail). The wave is a forest, so its pairs can be scored at once, and it
    depends on `linked` alone.
    """
    tentative = linked.copy()
    linked_sizes = component_sizes(linked)
    tentative_sizes = dict(linked_sizes)
    wave, later = [], []
    for pair in candidates:
        i, j = pair[0], pair[1]
        li, lj = linked.root(i), linked.root(j)
        if li == lj or (linked_sizes[li] >= 2 and linked_sizes[lj] >= 2):
            continue
        ti, tj = tentative.root(i), tentative.root(j)
        if ti == tj or (tentative_sizes[ti] >= 2 and tentative_sizes[tj] >= 2):
            later.append(pair)
            continue
        tentative.union(i, j)
        tentative_sizes[tentative.root(i)] = tentative_sizes[ti] + tentative_sizes[tj]
        wave.append(pair)
    return wave, later


@dataclass(frozen=True)
class GroupFingerprint:
    """A group's fingerprint: K (landscape, cleaned), the members it was estimated from, and their kind.

    k_is_video: estimated from video aggregates (a larger image is then matched with the
    roles swapped, as against a video-enrolled device).
    """

    k: np.ndarray
    members: tuple[int, ...]
    k_is_video: bool

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.k.shape[0]), int(self.k.shape[1]))

    @cached_property
    def prepared(self) -> PreparedFingerprint:
        """K with its FFT (`PreparedFingerprint`), made once for all the media tested against the group."""
        return PreparedFingerprint(self.k)


def reference_members(shapes: Sequence[tuple[int, int]], is_video: Sequence[bool]) -> list[int]:
    """Which members a group's fingerprint is estimated from: the images of its largest landscape size (else videos).

    Media of one size are views of the sensor in one geometry, so their maximum-likelihood
    sums align (portrait ones turned); resized copies and video frames are matched against
    the estimate instead of being summed into it.
    """
    images = [i for i, v in enumerate(is_video) if not v]
    pool = images or list(range(len(shapes)))
    size = max((landscape(shapes[i]) for i in pool), key=lambda s: (s[0] * s[1], s))
    return [i for i in pool if landscape(shapes[i]) == size]


def group_fingerprint(queries: Sequence[Query], members: Sequence[int]) -> GroupFingerprint:
    """The ML fingerprint K = ΣWI / ΣI² of `members` (indices into `queries`, one landscape size; Chen et al. 2008).

    Landscape members are summed first, so that each portrait one is turned (90° or 270°)
    the way that correlates better with the estimate so far (`FingerprintAccumulator.add`).
    A video's aggregate counts as one medium of unit intensity.
    """
    ordered = sorted(members, key=lambda m: queries[m].residual.shape[0] > queries[m].residual.shape[1])
    first = queries[ordered[0]]
    accumulator = FingerprintAccumulator(landscape(first.residual.shape))
    for m in ordered:
        q = queries[m]
        image = q.intensity if q.intensity is not None else np.ones(q.residual.shape, np.float32)
        accumulator.add(image, residual=q.residual)
    # estimate(), not result(): a group has no use for the split-half quality (a third of the time for 8 MP)
    return GroupFingerprint(accumulator.estimate(), tuple(sorted(members)), first.intensity is None)


def match_group(
    query: Query,
    group: GroupFingerprint,
    *,
    threshold: float,
    orientations: str = "sensor",
    target: str = "",
    scaled: dict[float, PreparedFingerprint] | None = None,
) -> Match:
    """A medium against a group's fingerprint (`join_score`: aligned, or at its full-width and full-height scales)."""
    return join_score(
        query,
        group.k,
        k_is_video=group.k_is_video,
        threshold=threshold,
        orientations=orientations,
        target=target,
        scaled=scaled,
        prepared=group.prepared,
    )


def merge_links_needed(members: int) -> int:
    """How many of a group's `members` must match another group's fingerprint for it to merge: half, rounded up.

    Each link is already decided at the run's false-alarm level; asking half of the
    members keeps one medium that a group holds by mistake from carrying the whole group.
    """
    return (members + 1) // 2


def merge_supported(member_links: int, members: int) -> bool:
    """Whether a group merges into another: at least half of its members matched the other's fingerprint."""
    return members > 0 and member_links >= merge_links_needed(members)


def screened_pairs(n_media: int) -> int:
    """The pair tests of a clustering of `n_media` media: every pair (the candidate stage screened them all)."""
    return max(1, n_media * (n_media - 1) // 2)
