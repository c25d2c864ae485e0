"""Per-file work, run in worker processes: from a file on disk to its noise signal and its matches.

Everything here is a top-level function of picklable arguments, so it runs the same in
a local process pool and on a Dask worker. Nothing here writes to the case: the calling
process commits what these functions return.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from sensorprint.errors import MatchError, MediaError
from sensorprint.media import read_frames
from sensorprint.media.video import Frame
from sensorprint.prnu import (
    FingerprintAccumulator,
    PreparedFingerprint,
    PreparedQuery,
    Transform,
    clean_fingerprint,
    extract_residual,
    false_alarm_probability,
    frame_weight,
    log10_false_alarm_probability,
    match,
    to_gray,
)
from sensorprint.prnu.video_fast import accumulate, aggregate, frame_noise
from sensorprint.workflow.files import FileFacts, fail, file_facts, frame_choice, one_line, read_medium
from sensorprint.workflow.options import SignalOptions

# Reference videos always get the full 4-level wavelet denoiser (enrollment is done once);
# query videos get SignalOptions.video_denoiser (cheaper, same decisions: video_throughput.py).
REFERENCE_VIDEO_LEVELS = 4


@dataclass
class QuerySignal:
    """The noise signal of one query file.

    residual: H×W float32, an image's noise residual or a video's aggregated residual.
    intensity: the image's grey levels (the I·K term of the detector), None for a video
        aggregate, which already estimates K itself.
    """

    residual: np.ndarray
    intensity: np.ndarray | None
    pixels: list[np.ndarray] = field(default_factory=list)  # the image, or the frames used (when kept for the CNN)
    _prepared: PreparedQuery | None = field(default=None, repr=False, compare=False)
    # False for a video aggregate left without the CFA zero-mean and DFT Wiener steps
    # (query_signal(..., clean_video=False)): fine as a query against a clean fingerprint,
    # cleaned by `compare` before it ever serves as a reference
    cleaned: bool = True

    def prepared(self) -> PreparedQuery:
        """The query ready for matching (W·I and its spectra), built once and shared by every device."""
        if self._prepared is None:
            self._prepared = PreparedQuery(self.residual, self.intensity)
        return self._prepared


def _video_frames(path: Path, options: SignalOptions):
    return read_frames(path, **frame_choice(options))


# The grey frame of the PRNU path is the BT.601 grey of the frame's RGB pixels (`to_gray`), not
# the decoder's luma plane (read_frames(..., channels="gray"), 5 ms less per 1080p frame): on
# benchmarks/video_accuracy.py the luma plane lowered the smallest true-pair PCE of
# video -> video from 163 to 74 and image -> video top-1 from 40/40 to 39/40.


# Frame weights are statistics of the whole frame (mean level, share of saturated pixels,
# mean change from the previous frame): every 4th pixel of every 4th row gives them within
# a fraction of a percent, at a sixteenth of the cost.
WEIGHT_SUBSAMPLING = 4


def _weight(gray: np.ndarray, previous: np.ndarray | None) -> float:
    step = WEIGHT_SUBSAMPLING
    return frame_weight(gray[::step, ::step], None if previous is None else previous[::step, ::step])


def _frame_record(frame, weight: float) -> dict:
    return {
        "index": frame.index,
        "time_s": round(frame.time_s, 3),
        "keyframe": frame.keyframe,
        "weight": round(weight, 3),
    }


def _check_frames(path: Path, facts: FileFacts) -> None:
    if not facts.frames:
        raise MediaError(f"{path.name}: no frame could be decoded")
    if not any(f["weight"] > 0 for f in facts.frames):
        raise MediaError(f"{path.name}: every selected frame is dark, saturated or a duplicate")


def _add_video(accumulator_for, frames: Iterable[Frame], path: Path, options: SignalOptions, facts: FileFacts) -> None:
    """Add the weighted frames of a reference video to the accumulator that fits their size (and keep them if asked).

    Each frame's residual is the 4-level wavelet noise of its luminance (Mihcak et al. 1999);
    the zero-mean and DFT Wiener steps are applied once, to the estimate, by the accumulator.
    """
    previous = None
    for frame in frames:
        gray = to_gray(frame.pixels)
        weight = _weight(gray, previous)
        previous = gray
        facts.frames.append(_frame_record(frame, weight))
        if weight > 0:
            residual = frame_noise(gray, method="wavelet", sigma=options.sigma, levels=REFERENCE_VIDEO_LEVELS)
            accumulator_for(gray.shape).add(gray, residual=residual, weight=weight)
    _check_frames(path, facts)


def video_query_residual(
    path: Path,
    options: SignalOptions,
    facts: FileFacts,
    kept: list | None = None,
    *,
    clean: bool = True,
    frames: Iterable[Frame] | None = None,
) -> np.ndarray:
    """The aggregated residual of a query video: Σ wWI / Σ wI² over its selected frames, cleaned once.

    clean: apply the CFA zero-mean and DFT Wiener steps to the aggregate (needed when it
    may serve as a reference, e.g. in `verify`; a query against a clean fingerprint scores
    the same without them: benchmarks/video_throughput.py).

    Frames are weighted by `frame_weight` (dark, saturated, repeated frames count less);
    every frame used is listed in `facts.frames`, and the CPU seconds spent decoding and
    denoising are added to `facts.timings`. Raises MediaError when no frame is usable or
    the frame size changes within the video.

    frames: the frames `options` choose, already being read (`read_video` gives them with
    the medium, from one open of the file); read here when None.
    """
    method, levels = options.video_denoiser, options.video_levels
    numerator = denominator = None
    previous = None
    frames = iter(_video_frames(path, options) if frames is None else frames)
    decode_s = residual_s = 0.0
    while True:
        started = time.process_time()
        frame = next(frames, None)
        if frame is None:
            decode_s += time.process_time() - started
            break
        if kept is not None:
            kept.append(frame.pixels)
        gray = to_gray(frame.pixels)
        decode_s += time.process_time() - started
        started = time.process_time()
        weight = _weight(gray, previous)
        previous = gray
        facts.frames.append(_frame_record(frame, weight))
        if weight > 0:
            if numerator is None:
                numerator, denominator = np.zeros(gray.shape, np.float32), np.zeros(gray.shape, np.float32)
            if gray.shape != numerator.shape:
                raise MediaError(
                    f"{path.name}: the frame size changes within the video ({gray.shape[1]}x{gray.shape[0]} "
                    f"at frame {frame.index}); split it into parts of one size"
                )
            accumulate(
                numerator,
                denominator,
                gray,
                frame_noise(gray, method=method, sigma=options.sigma, levels=levels),
                weight,
            )
        residual_s += time.process_time() - started
    _check_frames(path, facts)
    started = time.process_time()
    result = aggregate(numerator, denominator, clean=clean and options.video_clean)
    facts.timings["decode"] = facts.timings.get("decode", 0.0) + decode_s
    facts.timings["residual"] = facts.timings.get("residual", 0.0) + residual_s + time.process_time() - started
    return result


def query_signal(
    path: Path, options: SignalOptions, *, keep_pixels: bool = False, clean_video: bool = True
) -> tuple[FileFacts, QuerySignal | None]:
    """Read a file and compute its noise signal; errors become a one-line message in the facts.

    keep_pixels: also return the image or the frames used, for the CNN to classify
    without reading the file again. clean_video: clean a video's aggregate (see
    `video_query_residual`); a scan, where it is only ever the query, may pass False
    (about 0.036 s less per 1080p video, the same PCEs). `facts.timings` gets the CPU
    seconds of each step ("probe", "decode", "residual").

    A video is opened once (`read_video`): the probe (index, first frame, hash) and the
    frames come from the same open.
    """
    facts = file_facts(path)
    try:
        started = time.process_time()
        facts.medium, pixels, frames = read_medium(path, options)
        facts.timings["probe"] = time.process_time() - started
        if pixels is not None:
            started = time.process_time()
            signal = QuerySignal(extract_residual(pixels, sigma=options.sigma), to_gray(pixels))
            facts.timings["residual"] = time.process_time() - started
            if keep_pixels:
                signal.pixels.append(pixels)
        else:
            kept: list[np.ndarray] = []
            clean = clean_video and options.video_clean
            residual = video_query_residual(
                path, options, facts, kept if keep_pixels else None, clean=clean, frames=frames
            )
            signal = QuerySignal(residual, None, kept, cleaned=clean)
        return facts, signal
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the run
        fail(facts, error)
        return facts, None


def landscape(shape: tuple[int, ...]) -> tuple[int, int]:
    """The (rows, cols) of a shape turned to landscape: the key of a fingerprint's size."""
    h, w = shape[:2]
    return (min(h, w), max(h, w))


def enrollment_part(paths: list[str], options: SignalOptions) -> tuple[list[FileFacts], dict]:
    """Partial fingerprint sums of some reference files, by landscape size.

    Returns the facts of every file and {(rows, cols): FingerprintAccumulator}; the caller
    merges the parts of all workers (the estimate is a ratio of sums, so order does not matter).
    """
    accumulators: dict[tuple[int, int], FingerprintAccumulator] = {}

    def accumulator_for(shape):
        key = landscape(shape)
        return accumulators.setdefault(key, FingerprintAccumulator(key))

    all_facts = []
    for name in paths:
        path = Path(name)
        facts = file_facts(path)
        try:
            facts.medium, pixels, frames = read_medium(path, options)
            if pixels is not None:
                residual = extract_residual(pixels, sigma=options.sigma)
                accumulator_for(pixels.shape).add(pixels, residual=residual)
            else:
                _add_video(accumulator_for, frames, path, options, facts)
        except Exception as error:  # noqa: BLE001 - one bad reference file must not stop enrollment
            fail(facts, error)
        all_facts.append(facts)
    return all_facts, accumulators


@dataclass(frozen=True)
class FingerprintRef:
    """Where a worker finds one enrolled fingerprint: it loads the array itself (memory-mapped)."""

    device: str
    fingerprint_id: int
    path: str
    shape: tuple[int, int]
    source: str  # "image", "video" or "mixed": what the fingerprint was estimated from


_loaded: dict[str, np.ndarray] = {}
_prepared: dict[str, PreparedFingerprint] = {}  # array files have unique names: a path never changes content
MAX_PREPARED = 48
# hinted regions of each prepared fingerprint, forgotten with it
_hinted: weakref.WeakKeyDictionary[PreparedFingerprint, dict[tuple, PreparedFingerprint | None]] = (
    weakref.WeakKeyDictionary()
)


def _load(ref: FingerprintRef) -> np.ndarray:
    # A worker keeps the fingerprints it has read: a scan compares every file with the same few.
    if ref.path not in _loaded:
        _loaded[ref.path] = np.load(ref.path, mmap_mode="r")
    return _loaded[ref.path]


def prepared_fingerprint(ref: FingerprintRef) -> PreparedFingerprint:
    """The fingerprint of `ref` ready for matching (its FFT, and resized copies as searched), cached per worker."""
    if ref.path not in _prepared:
        if len(_prepared) >= MAX_PREPARED:  # bound the memory of a long-lived worker (oldest first out)
            _prepared.pop(next(iter(_prepared)))
        _prepared[ref.path] = PreparedFingerprint(np.asarray(_load(ref), dtype=np.float32))
    return _prepared[ref.path]


def size_key(shape: tuple[int, ...]) -> str:
    """The key under which a device remembers the transform found for queries of one size."""
    rows, cols = landscape(shape)
    return f"{cols}x{rows}"


def choose_fingerprint(refs: list[FingerprintRef], query_shape: tuple[int, int]) -> FingerprintRef:
    """The fingerprint of a device to compare a query with: one of the query's own size, else the largest."""
    same = [r for r in refs if landscape(r.shape) == landscape(query_shape)]
    return same[0] if same else max(refs, key=lambda r: r.shape[0] * r.shape[1])


def _hinted_region(
    prepared: PreparedFingerprint, hint: Transform, query_shape: tuple[int, int]
) -> PreparedFingerprint | None:
    """The part of K (resized by the hint's scale) that the hint says the query covers, ready for an aligned match.

    Cached per worker: every later query of the device at that size is then one aligned
    comparison instead of a crop and scale search. None when the hint does not fit.
    """
    regions = _hinted.setdefault(prepared, {})
    key = (hint.scale, hint.offset, hint.rotation, hint.flip, tuple(query_shape))
    if key not in regions:
        h, w = query_shape if hint.rotation in (0, 180) else query_shape[::-1]
        k_scaled = prepared.at_scale(hint.scale)[0]
        top, left = hint.offset
        region = None
        if top >= 0 and left >= 0 and top + h <= k_scaled.shape[0] and left + w <= k_scaled.shape[1]:
            region = PreparedFingerprint(np.ascontiguousarray(k_scaled[top : top + h, left : left + w]))
        if len(regions) > 16:
            regions.clear()
        regions[key] = region
    return regions[key]


def _match_with_hint(query: PreparedQuery, prepared: PreparedFingerprint, hint: Transform, threshold: float):
    """The query tested at the one position a previous match of this device found (Goljan & Fridrich 2008).

    The hypothesis is fixed before this query is seen, so it is a single test: one position in
    the false-alarm probability. Returns None when the hint does not fit or stays under the
    threshold (the caller then searches as usual).
    """
    region = _hinted_region(prepared, hint, query.shape)
    if region is None:
        return None
    at_hint = Transform(hint.rotation, hint.flip)
    found = match(query, None, region, search="crop", hint=at_hint, threshold=threshold)
    if found.n_positions != 1 or found.pce < threshold:
        return None
    return found, Transform(hint.rotation, hint.flip, hint.scale, hint.offset)


def compare(
    signal: QuerySignal,
    k: np.ndarray | PreparedFingerprint,
    hint: dict | None,
    threshold: float,
    *,
    k_is_video: bool,
    orientations: str = "sensor",
) -> dict:
    """Compare a query signal with a fingerprint K: the PRNU result row, without its target.

    orientations: "sensor" (as stored, or portrait turned by 90°/270°) or "all" (also 180°
    and mirrored copies); see `sensorprint.prnu.match`.

    k: the fingerprint array, or a `PreparedFingerprint` (its FFT cached: much faster when
    many queries meet the same device). hint: a transform found before for this device and
    query size (`Transform.to_dict`); when it fits, the query is first tested at that one
    position only, and searched fully when that test stays under the threshold.

    A query larger than a fingerprint estimated from video frames (an image against a
    video-enrolled device: frames are downscaled views of the sensor) is matched the other
    way round: the fingerprint becomes the query of the image's W·I, which is the detector's
    statistic with the roles swapped. A query larger than a full-sensor fingerprint cannot
    come from that sensor.
    """
    prepared = k if isinstance(k, PreparedFingerprint) else None
    k_shape = prepared.shape if prepared is not None else tuple(k.shape)
    q_rows, q_cols = landscape(signal.residual.shape)
    f_rows, f_cols = landscape(k_shape)
    larger = q_rows > f_rows or q_cols > f_cols
    swapped = larger and k_is_video
    row: dict = {"method": "prnu", "target_kind": "device", "ncc": None, "transform": None}
    details = {"fingerprint_shape": list(k_shape), "roles_swapped": swapped, "hint_used": False}
    try:
        if larger and not swapped:
            raise MatchError(
                f"the query ({q_cols}x{q_rows}) is larger than this device's sensor fingerprint ({f_cols}x{f_rows})"
            )
        if swapped:
            if signal.intensity is not None:
                reference = signal.residual * signal.intensity
            else:  # a video aggregate now plays the fingerprint: it must be clean of model artefacts
                reference = signal.residual if signal.cleaned else clean_fingerprint(signal.residual)
            k_array = prepared.k if prepared is not None else np.asarray(k, dtype=np.float32)
            found = match(k_array, None, reference.astype(np.float32), threshold=threshold, orientations=orientations)
            transform = found.transform
        else:
            if prepared is None:
                prepared = PreparedFingerprint(np.asarray(k, dtype=np.float32))
            query = signal.prepared()
            if prepared.shape == query.shape:
                hint = None  # a transform remembered against another (larger) fingerprint of the device
            hinted = _match_with_hint(query, prepared, Transform.from_dict(hint), threshold) if hint else None
            if hinted is not None:
                found, transform = hinted
                details["hint_used"] = True
                stage = "remembered transform (one position)"
            elif signal.intensity is None and k_is_video and query.shape == prepared.shape:
                # video frames against a fingerprint from video frames of the same size: both are the
                # frames as stored, in the sensor's read-out order (rotation is container metadata,
                # never applied), so the one sensor-aligned position is tested (n_positions = 1)
                found = match(query, None, prepared, search="crop", hint=Transform(), threshold=threshold)
                transform = found.transform
                stage = "sensor-aligned video frames (one position)"
            else:
                found = match(query, None, prepared, threshold=threshold, orientations=orientations)
                transform = found.transform
                stage = found.stage
                if hint:  # the remembered position was tested first and failed: it counts as searched too
                    n_positions = found.n_positions + 1
                    found = replace(
                        found,
                        n_positions=n_positions,
                        p_fa=false_alarm_probability(found.pce, n_positions),
                        log10_p_fa=log10_false_alarm_probability(found.pce, n_positions),
                    )
                    details["hint_tried"] = True
    except MatchError as error:
        details["reason"] = one_line(error)
        return row | {"score": 0.0, "p_fa": 1.0, "decision": "no match", "details": details}
    if swapped:
        stage = found.stage
    details |= {"n_positions": int(found.n_positions), "search_stage": stage, "transform_text": transform.describe()}
    return row | {
        "score": float(found.pce),
        "ncc": float(found.ncc),
        "p_fa": float(found.p_fa),
        "decision": "match" if found.pce >= threshold else "no match",
        "transform": transform.to_dict(),
        "details": details,
    }


def match_device(
    signal: QuerySignal,
    refs: list[FingerprintRef],
    hint: dict | None,
    threshold: float,
    *,
    orientations: str = "sensor",
) -> dict:
    """Compare one query signal with the best-fitting fingerprint of one device.

    The device's fingerprint is loaded and prepared (FFT) once per worker process; the
    query's spectra are computed once and shared by every device.
    """
    ref = choose_fingerprint(refs, signal.residual.shape)
    row = compare(
        signal, prepared_fingerprint(ref), hint, threshold, k_is_video=ref.source != "image", orientations=orientations
    )
    row["target"] = ref.device
    row["details"]["fingerprint_id"] = ref.fingerprint_id
    row["details"]["fingerprint_source"] = ref.source
    return row
