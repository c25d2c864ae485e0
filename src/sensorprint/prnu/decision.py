"""The PRNU decision rules: from a query's noise and a fingerprint to a `Match` with its evidence.

Pure functions on arrays (the only state is the per-object caches of `PreparedFingerprint`
and `Query`). The rules, each in one place:

- `decide`: three answers. Match when the PCE reaches the threshold of the search actually
  made (`search_threshold`: the PCE whose false-alarm probability over the N positions and
  transforms searched equals that of the customary threshold, 60, at one position; Goljan
  2009; Goljan, Fridrich & Filler 2009), so that a crop search of a million positions never
  outranks or out-decides an aligned comparison. A weak fingerprint (`FingerprintStrength`:
  one medium, or a split-half reliability too low) can neither exclude a source (its "no
  match" is inconclusive) nor decide a match over a searched comparison (scene content of a
  one-image "fingerprint" lines up with some other photo somewhere among many positions).
- `compare`: which comparison a pair of sizes calls for. A query larger than a fingerprint
  estimated from video frames (an image against a video-enrolled device: frames are
  downscaled views of the sensor) is matched with the roles swapped; a query larger than an
  image fingerprint is not compared, and inconclusive (the fingerprint may be a crop). Video
  frames against a fingerprint from video frames of the same size are tested at the one
  sensor-aligned position.
- `predicted_true_pce` and `Calibration`: "no match" only where a true pair would have
  passed; below that, inconclusive.
- `match_at_hint`: a transform remembered for the device is one position, tested first; when
  it fails, the full search follows and the remembered position counts as searched too
  (`count_extra_positions`): the false-alarm probability counts every position tried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import MatchError
from ..results import Decision, Match, Method, PrnuEvidence, TargetKind
from .fingerprint import clean_fingerprint
from .geometry import Transform
from .matching import MatchResult, PreparedFingerprint, PreparedQuery, match
from .stats import DEFAULT_PCE_THRESHOLD, false_alarm_probability, log10_false_alarm_probability, pce_threshold_for

MAX_HINTED_REGIONS = 16  # per fingerprint: one per query size and remembered transform in practice


@dataclass
class Query:
    """The noise of one query file, ready to be compared with many fingerprints.

    residual: H×W float32, an image's noise residual or a video's aggregated residual.
    intensity: the image's grey levels 0..255 (the I of the detector's I·K term); None for a
    video aggregate, which already estimates K itself. cleaned: False for a video aggregate
    left without the CFA zero-mean and DFT Wiener steps (fine as a query against a clean
    fingerprint; cleaned before it ever serves as a reference). jpeg_quality: for the
    prediction of a true pair's PCE (`predicted_true_pce`).
    """

    residual: np.ndarray
    intensity: np.ndarray | None
    cleaned: bool = True
    jpeg_quality: int | None = None  # the IJG quality of its luminance table (`media.structure`); None: unknown
    _prepared: PreparedQuery | None = field(default=None, repr=False, compare=False)

    def prepared(self) -> PreparedQuery:
        """The query ready for matching (W·I and its spectra), built once and shared by every device."""
        if self._prepared is None:
            self._prepared = PreparedQuery(self.residual, self.intensity)
        return self._prepared

    def replace_residual(self, residual: np.ndarray) -> None:
        """Put a new residual in place (a video aggregate that grew by more frames); its spectra are built anew."""
        self.residual = residual
        self._prepared = None

    def as_reference(self) -> np.ndarray:
        """The query playing the fingerprint (roles swapped): W·I of an image, or the clean video aggregate."""
        if self.intensity is not None:
            return (self.residual * self.intensity).astype(np.float32)
        reference = self.residual if self.cleaned else clean_fingerprint(self.residual)
        return reference.astype(np.float32)


def landscape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The (rows, cols) of a shape turned to landscape: the key of a fingerprint's size."""
    h, w = shape[:2]
    return (min(h, w), max(h, w))


# Comparisons of at most this many positions are aligned (every rotation and mirror of one
# position): beyond, a position was searched for.
ALIGNED_POSITIONS = 8
# Split-half reliability (Spearman-Brown, 2q/(1+q)) under which a fingerprint is weak: on
# dresden-nikon, 10 flat fields give 0.14-0.29.
MIN_RELIABILITY = 0.05


@dataclass(frozen=True)
class FingerprintStrength:
    """How much a fingerprint can decide: the media behind it and its split-half quality.

    n_media: reference files behind it (shown, not used: a single video of many frames can
    be strong). quality: the correlation of the estimates from the two halves of its images
    or frames (`Fingerprint.quality`, 0..1; 0 for one image).
    """

    n_media: int
    quality: float

    @property
    def reliability(self) -> float:
        """The correlation of the whole estimate with a repeat of it: 2q/(1+q) (Spearman-Brown)."""
        q = max(float(self.quality), 0.0)
        return 2 * q / (1 + q)

    @property
    def weak(self) -> bool:
        return self.reliability < MIN_RELIABILITY


ONE_MEDIUM = FingerprintStrength(1, 0.0)
"""A single file playing the reference (`verify A B`): no split halves, so no reliability."""


def with_strength(evidence: PrnuEvidence, strength: FingerprintStrength | None) -> PrnuEvidence:
    """The evidence with the strength of the fingerprint compared with (unchanged when it is unknown)."""
    if strength is None:
        return evidence
    return replace(
        evidence,
        fingerprint_media=strength.n_media,
        fingerprint_quality=float(strength.quality),
        weak_fingerprint=strength.weak,
    )


def searched_weak(weak: bool, n_positions: int) -> bool:
    """Whether a comparison searched positions against a weak fingerprint: it then decides nothing (inconclusive,
    however high or low the PCE, and however many more frames a video query gets), since the scene content of
    one or two natural images lines up with another camera's somewhere among the positions searched."""
    return weak and n_positions > ALIGNED_POSITIONS


def search_threshold(threshold: float, n_positions: int) -> float:
    """The PCE a comparison over `n_positions` must reach to be as unlikely by chance as `threshold` at one position.

    threshold: the customary PCE for one position (60). Returns τ_N with
    1 − (1 − Q(√τ_N))^N = Q(√threshold) (Goljan 2009): about 89 for a million positions.
    """
    if n_positions <= 1:
        return float(threshold)
    return max(float(threshold), pce_threshold_for(false_alarm_probability(threshold, 1), n_positions))


def predicted_true_pce(
    query: Query, prepared: PreparedFingerprint, strength: FingerprintStrength | None
) -> float | None:
    """The PCE this query would reach against this fingerprint if it came from the sensor (before calibration).

    The model of the detection statistic of Chen, Fridrich, Goljan & Lukáš (TIFS 2008),
    for the correlation of W·I with K̂ used here: with W = I·K + Ξ and K̂ = K + E,
    ρ² ≈ mean(I²)² · var(K̂) · r² / var(W·I), r the fingerprint's reliability (the share of
    var(K̂) that is K, 2q/(1+q) from its split-half quality q); PCE ≈ N·ρ² at one position.
    Everything is the query's own: its brightness (dark and saturated pixels carry no K),
    its texture and noise (they raise var(W·I)), its size N, and its JPEG quality
    (`jpeg_factor`: compression removes PRNU that var(W·I) does not show). None for a video
    aggregate or a fingerprint of unknown strength.
    """
    if query.intensity is None or strength is None:
        return None
    gray = np.asarray(query.intensity, dtype=np.float32).ravel()
    mean_i2 = float(np.dot(gray, gray)) / gray.size
    q = query.prepared()
    var_wi = q.norm**2 / gray.size
    k_norm = prepared.at_scale(1.0)[2]
    k_power = k_norm**2 / (prepared.shape[0] * prepared.shape[1])
    if var_wi <= 0:
        return None
    pce = gray.size * mean_i2**2 * k_power * strength.reliability**2 / var_wi
    return pce * jpeg_factor(query.jpeg_quality)


# log10 of the true-pair PCE per 10 points of JPEG quality, at equal residual energy: the slope of
# log10(observed / predicted) on the IJG quality of the 25 true natural-image pairs of dresden-nikon
# (qualities 27-98) and vision-trio (95-99), fingerprints from flats (least squares; correlation
# 0.63; the 25 ratios' sd falls from 0.78 to 0.62, 0.66 left one out; benchmarks/validate_cases.py).
JPEG_SLOPE = 0.30


def jpeg_factor(quality: int | None) -> float:
    """How much of a true pair's PCE survives JPEG compression at this IJG quality (1 at 100; 1 when unknown).

    10^(JPEG_SLOPE·(quality − 100)/10): about half per 10 points of quality. Chen, Fridrich,
    Goljan & Lukáš (TIFS 2008) name JPEG quality among the factors of the detection
    statistic; the slope is fitted on real cameras (`JPEG_SLOPE`).
    """
    if quality is None:
        return 1.0
    return 10.0 ** (JPEG_SLOPE * (min(max(int(quality), 1), 100) - 100) / 10.0)


def predicted_video_pce(
    query: Query, prepared: PreparedFingerprint, strength: FingerprintStrength | None
) -> float | None:
    """The PCE a video aggregate would reach at the one sensor-aligned position if it came from the sensor.

    The video counterpart of `predicted_true_pce` (Chen, Fridrich, Goljan & Lukáš, TIFS
    2008): the aggregate Q = Σ wWI / Σ wI² estimates K itself, so with K̂ = K + E and the
    same K in Q (a fingerprint from video frames of the same size), ρ² ≈ var(K̂)·r² / var(Q)
    and PCE ≈ N·ρ², r the fingerprint's reliability (2q/(1+q)). var(Q) is the query's own:
    few frames, dark or compressed ones leave more noise in it and predict less. The model
    assumes the query keeps the PRNU amplitude of the reference videos; a query compressed
    harder keeps less, which `DEFAULT_VIDEO_CALIBRATION` takes into account. None for an
    image query, a fingerprint of unknown strength, or another size.
    """
    if query.intensity is not None or strength is None:
        return None
    q = query.prepared()
    if q.shape != prepared.shape:
        return None
    n = q.shape[0] * q.shape[1]
    var_q = q.norm**2 / n
    k_power = prepared.at_scale(1.0)[2] ** 2 / n
    if var_q <= 0:
        return None
    return n * k_power * strength.reliability**2 / var_q


@dataclass(frozen=True)
class Calibration:
    """How the physical prediction of a true pair's PCE relates to the PCE true pairs reached.

    offset, spread: median and standard deviation of log₁₀(observed / predicted) over true
    pairs (held-out references, `sensorprint validate`); n: how many. `expected` is the low
    end (5%) of what a true pair reaches: "no match" is said only where even that passes
    the threshold of the search.
    """

    offset: float
    spread: float
    n: int
    source: str

    def expected(self, predicted: float | None) -> float | None:
        if predicted is None:
            return None
        return predicted * 10.0 ** (self.offset - 1.645 * self.spread)


# log10(observed / predicted) of the true natural-image pairs of dresden-nikon (16: median
# −0.19, sd 0.51, lowest −1.54; −0.91 / 0.75 / −2.29 before the JPEG-quality term) and
# vision-trio (9: median −0.18, sd 0.78, lowest −2.19; −0.30 / 0.74 / −2.22 before), fingerprints
# from flats (`benchmarks/validate_cases.py`): the model overestimates scenes. The more
# pessimistic median and the larger sd are kept; a case's own validation can only make it stricter.
DEFAULT_CALIBRATION = Calibration(
    offset=-0.19, spread=0.78, n=25, source="built-in (dresden-nikon and vision-trio natural images)"
)


# log10(observed / predicted) of the true pairs of benchmarks/short_clips.py (720p clips of
# 4000x3000 sensors, 4 to 120 frames, fingerprints from two 4 s reference videos): binned
# readout at 8 Mbit/s −0.65 to +0.66 (median 0.13), line skipping at 8 Mbit/s +0.9, its 2 Mbit/s
# re-encodes −0.66 to +0.49; sd about 0.35. No real video has measured it yet, so the built-in
# offset is the lowest ratio seen, not the median: "no match" needs a prediction about 17
# times the threshold (10^(0.65 + 1.645·0.35)).
DEFAULT_VIDEO_CALIBRATION = Calibration(
    offset=-0.65, spread=0.35, n=72, source="built-in (simulated 720p clips, 8 and 2 Mbit/s; no real video yet)"
)


def calibration_for(video: bool, case: Calibration | None = None) -> Calibration:
    """The calibration of the predicted true-pair PCE for a query of this kind.

    video: the query is a video aggregate (`predicted_video_pce`), whose prediction has its
    own calibration (`DEFAULT_VIDEO_CALIBRATION`): a case's validation measures held-out
    reference images, so it never applies to video. case: the case's own image calibration
    (`workflow.validate.calibration`); None: the built-in one (`DEFAULT_CALIBRATION`).
    """
    if video:
        return DEFAULT_VIDEO_CALIBRATION
    return case if case is not None else DEFAULT_CALIBRATION


def decide(
    pce: float,
    threshold: float = DEFAULT_PCE_THRESHOLD,
    n_positions: int = 1,
    strength: FingerprintStrength | None = None,
    expected: float | None = None,
) -> Decision:
    """Match, no match or inconclusive for a PCE found over `n_positions` (see the module doc).

    strength: of the fingerprint compared with (None: strong, as for a device's fingerprint
    from an older case that did not record it). expected: the PCE a true pair would at
    least reach (`Calibration.expected`); under the search's threshold a low PCE cannot
    exclude the source (inconclusive). None: not predicted (video aggregates, older results).
    """
    weak = strength is not None and strength.weak
    needed = search_threshold(threshold, n_positions)
    if pce >= needed:
        return Decision.INCONCLUSIVE if searched_weak(weak, n_positions) else Decision.MATCH
    if weak or (expected is not None and expected < needed):
        return Decision.INCONCLUSIVE
    return Decision.NO_MATCH


# How far apart, in units of the correlation's standard deviation under the null (√PCE, Goljan
# 2009), a query's correlation with one device must lie above its correlation with a device
# whose fingerprint correlates with it, for the match to name the one and not the other.
TWIN_MARGIN = 3.0


def separated_from_twin(pce: float, twin_pce: float, twin_matched: bool, margin: float = TWIN_MARGIN) -> bool:
    """Whether a match to one device stands beside its result against a device whose fingerprint correlates with it.

    Units of one model can share a pattern no filter removes (Iuliani et al., "A leak in
    PRNU based source identification: questioning fingerprint uniqueness", IEEE Access
    2021): a photo of either correlates with both. The match names this device only when
    the other did not match too and √PCE − √PCE_twin ≥ `margin` (√PCE: the correlation in
    units of its standard deviation under the null; a query of the twin would correlate
    more with the twin than with this device, so it cannot clear the margin here).
    """
    if twin_matched:
        return False
    return math.sqrt(max(pce, 0.0)) - math.sqrt(max(twin_pce, 0.0)) >= margin


def hinted_region(prepared: PreparedFingerprint, hint: Transform, query_shape: tuple[int, int]):
    """The part of K (resized by the hint's scale) that the hint says the query covers, ready for an aligned match.

    Kept with the prepared fingerprint: every later query of the device at that size is then
    one aligned comparison instead of a crop and scale search. None when the hint does not fit.
    """
    key = (hint.scale, hint.offset, hint.rotation, hint.flip, tuple(query_shape))
    regions = prepared.regions
    if key not in regions:
        h, w = query_shape if hint.rotation in (0, 180) else query_shape[::-1]
        k_scaled = prepared.at_scale(hint.scale)[0]
        top, left = hint.offset
        region = None
        if top >= 0 and left >= 0 and top + h <= k_scaled.shape[0] and left + w <= k_scaled.shape[1]:
            region = PreparedFingerprint(np.ascontiguousarray(k_scaled[top : top + h, left : left + w]))
        if len(regions) > MAX_HINTED_REGIONS:
            regions.clear()
        regions[key] = region
    return regions[key]


def match_at_hint(
    query: PreparedQuery, prepared: PreparedFingerprint, hint: Transform, threshold: float
) -> tuple[MatchResult, Transform] | None:
    """The query tested at the one position a previous match of this device found (Goljan & Fridrich 2008).

    The hypothesis is fixed before this query is seen, so it is a single test: one position in
    the false-alarm probability. Returns None when the hint does not fit or stays under the
    threshold (the caller then searches as usual).
    """
    region = hinted_region(prepared, hint, query.shape)
    if region is None:
        return None
    found = match(query, None, region, search="crop", hint=Transform(hint.rotation, hint.flip), threshold=threshold)
    if found.n_positions != 1 or found.pce < threshold:
        return None
    return found, Transform(hint.rotation, hint.flip, hint.scale, hint.offset)


def count_extra_positions(found: MatchResult, extra: int) -> MatchResult:
    """The same result with `extra` more positions searched, and its false-alarm probability recounted."""
    n_positions = found.n_positions + extra
    return replace(
        found,
        n_positions=n_positions,
        p_fa=false_alarm_probability(found.pce, n_positions),
        log10_p_fa=log10_false_alarm_probability(found.pce, n_positions),
    )


@dataclass(frozen=True)
class _Found:
    result: MatchResult
    transform: Transform
    stage: str
    hint_used: bool = False
    hint_tried: bool = False


def _search(
    query: Query,
    prepared: PreparedFingerprint,
    hint: Transform | None,
    threshold: float,
    *,
    k_is_video: bool,
    orientations: str,
) -> _Found:
    """The comparison of a query no larger than the fingerprint: the hint, one aligned position, or the search."""
    prepared_query = query.prepared()
    if prepared.shape == prepared_query.shape:
        hint = None  # a transform remembered against another (larger) fingerprint of the device
    if hint is not None:
        hinted = match_at_hint(prepared_query, prepared, hint, threshold)
        if hinted is not None:
            return _Found(hinted[0], hinted[1], "remembered transform (one position)", hint_used=True)
    if query.intensity is None and k_is_video and prepared_query.shape == prepared.shape:
        # video frames against a fingerprint from video frames of the same size: both are the
        # frames as stored, in the sensor's read-out order (rotation is container metadata,
        # never applied), so the one sensor-aligned position is tested (n_positions = 1)
        found = match(prepared_query, None, prepared, search="crop", hint=Transform(), threshold=threshold)
        return _Found(found, found.transform, "sensor-aligned video frames (one position)")
    found = match(prepared_query, None, prepared, threshold=threshold, orientations=orientations)
    if hint is not None:  # the remembered position was tested first and failed: it counts as searched too
        return _Found(count_extra_positions(found, 1), found.transform, found.stage, hint_tried=True)
    return _Found(found, found.transform, found.stage)


def _found(query, fingerprint, prepared, swapped: bool, hint, threshold: float, k_is_video: bool, orientations: str):
    """The search of `compare`: the query inside K, or K inside the query when a video K is the smaller (swapped)."""
    if swapped:
        k_array = prepared.k if prepared is not None else np.asarray(fingerprint, dtype=np.float32)
        result = match(k_array, None, query.as_reference(), threshold=threshold, orientations=orientations)
        return _Found(result, result.transform, result.stage)
    return _search(query, prepared, hint, threshold, k_is_video=k_is_video, orientations=orientations)


def compare(
    query: Query,
    fingerprint: np.ndarray | PreparedFingerprint,
    *,
    target: str = "",
    k_is_video: bool,
    hint: Transform | None = None,
    threshold: float = DEFAULT_PCE_THRESHOLD,
    orientations: str = "sensor",
    strength: FingerprintStrength | None = None,
    calibration: Calibration | None = None,
    looks: int = 1,
) -> Match:
    """Compare a query with a fingerprint K: the PRNU `Match`, with the evidence of how it was made.

    fingerprint: K, or a `PreparedFingerprint` (its FFT cached: much faster when many queries
    meet the same device). k_is_video: K was estimated from video frames. hint: a transform
    found before for this device and query size; when it fits, the query is first tested at
    that one position only, and searched fully when that test stays under the threshold.
    orientations: "sensor" or "all" (see `match`). strength: what the fingerprint can decide
    (`FingerprintStrength`; None: strong). calibration: of the predicted true-pair PCE
    (`predicted_true_pce`, `predicted_video_pce` for a video aggregate) that tells "no match"
    from "inconclusive" (None: `DEFAULT_CALIBRATION`, `DEFAULT_VIDEO_CALIBRATION` for a video
    aggregate). looks: how many times this query, growing frame by frame, has been decided
    against this fingerprint (an adaptive read of a video stops at the first decision):
    every look counts as that many more positions in the false-alarm probability (a union
    bound over the looks). The module doc gives the rules.
    """
    prepared = fingerprint if isinstance(fingerprint, PreparedFingerprint) else None
    k_shape = prepared.shape if prepared is not None else tuple(fingerprint.shape)
    (q_rows, q_cols), (f_rows, f_cols) = landscape(query.residual.shape), landscape(k_shape)
    larger = q_rows > f_rows or q_cols > f_cols
    swapped = larger and k_is_video
    evidence = with_strength(
        PrnuEvidence(fingerprint_shape=tuple(int(v) for v in k_shape), roles_swapped=swapped), strength
    )
    try:
        if larger and not swapped:
            raise MatchError(
                f"the query ({q_cols}x{q_rows}) is larger than this device's sensor fingerprint ({f_cols}x{f_rows})"
            )
        if prepared is None and not swapped:
            prepared = PreparedFingerprint(np.asarray(fingerprint, dtype=np.float32))
        found = _found(query, fingerprint, prepared, swapped, hint, threshold, k_is_video, orientations)
    except MatchError as error:
        # No comparison was made, so nothing is excluded: the fingerprint may be a crop of the
        # sensor (references that were cropped copies), or the file an enlarged copy.
        reason = " ".join(str(error).split())
        return Match(
            Method.PRNU, target, 0.0, Decision.INCONCLUSIVE, p_fa=1.0, evidence=replace(evidence, reason=reason)
        )
    result = found.result
    if looks > 1:  # each earlier look at a smaller aggregate was a test too
        result = count_extra_positions(result, result.n_positions * (looks - 1))
    video = query.intensity is None
    calibration = calibration if calibration is not None else calibration_for(video)
    predicted = None
    if not swapped:
        predicted = (
            predicted_video_pce(query, prepared, strength) if video else predicted_true_pce(query, prepared, strength)
        )
    evidence = replace(
        evidence,
        predicted_pce=None if predicted is None else round(predicted, 1),
        threshold_at_search=round(search_threshold(threshold, result.n_positions), 3),
        n_positions=int(result.n_positions),
        log10_p_fa=float(result.log10_p_fa),
        search_stage=found.stage,
        transform_text=found.transform.describe(),
        hint_used=found.hint_used,
        hint_tried=found.hint_tried,
    )
    return Match(
        Method.PRNU,
        target,
        float(result.pce),
        decide(result.pce, threshold, result.n_positions, strength, calibration.expected(predicted)),
        TargetKind.DEVICE,
        ncc=float(result.ncc),
        p_fa=float(result.p_fa),
        transform=found.transform.to_dict(),
        evidence=evidence,
    )


FIT_WINDOW = 512  # side in pixels of the centre window a reference's fit is measured on (even: keeps the CFA phase)


def centre_window(a: np.ndarray, side: int = FIT_WINDOW) -> np.ndarray:
    """The centre side×side window of a 2-D array (all of it when smaller), at an even offset, as a float32 copy."""
    h, w = a.shape[:2]
    top, left = max(0, (h - side) // 4 * 2), max(0, (w - side) // 4 * 2)
    return np.array(a[top : top + side, left : left + side], dtype=np.float32)


def reference_fit(num: np.ndarray, den: np.ndarray, own: np.ndarray, energy: np.ndarray, n_pixels: int) -> float:
    """How well one reference image fits the fingerprint of the device's other references (leave one out).

    All arrays are the same centre window (`centre_window`) of: num and den, the device's
    enrollment sums Σ WⱼIⱼ and Σ Iⱼ² over all its references, this image included (Chen et
    al. 2008); own, this image's W·I (residual times intensity); energy, its I². The
    fingerprint of the others, K₋ᵢ = (num − own)/(den − energy + 1), is cleaned as a
    fingerprint is (`clean_fingerprint`) on the window. n_pixels: the image's pixel count.
    Returns N·ρ²·sign(ρ), ρ the normalised correlation of own with K₋ᵢ on the window,
    N = n_pixels: the aligned PCE the whole image would reach (PCE ≈ N ρ² at one position).
    Another camera's file scores near 0 (the window's sampling error alone is about
    N / window², 23 for a 6 MP image on 512×512); a genuine reference far above.
    """
    return correlation_score(own, leave_one_out_fingerprint(num, den, own, energy), n_pixels)


def leave_one_out_fingerprint(num: np.ndarray, den: np.ndarray, own: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """K₋ᵢ: the fingerprint of a device's references without one of them, cleaned (Chen et al. 2008).

    num, den: the enrollment sums Σ WⱼIⱼ and Σ Iⱼ² of all its references (both halves added);
    own, energy: the held-out image's W·I and I², turned as the accumulator added it. Any
    same-shape window of all four gives that window of K₋ᵢ.
    """
    return clean_fingerprint((num - own) / (den - energy + np.float32(1.0)))


def correlation_score(a: np.ndarray, b: np.ndarray, n_pixels: int | None = None) -> float:
    """N·ρ²·sign(ρ): the aligned PCE that the normalised correlation ρ of two same-shape arrays predicts.

    n_pixels: the N to scale by (default: the arrays' size; more when ρ was measured on a
    window of larger images). PCE ≈ N ρ² at one position (Goljan 2009).
    """
    x = np.asarray(a, dtype=np.float32).ravel()
    y = np.asarray(b, dtype=np.float32).ravel()
    x = x - np.float32(x.mean(dtype=np.float64))
    y = y - np.float32(y.mean(dtype=np.float64))
    norm = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    rho = float(np.dot(x, y)) / norm if norm > 0 else 0.0
    return math.copysign((x.size if n_pixels is None else n_pixels) * rho * rho, rho)
