"""Per-file work, run in worker processes: from a file on disk to its noise signal and its matches.

Everything here is a top-level function of picklable arguments, so it runs the same in
a local process pool and on a Dask worker. Nothing here writes to the case: the calling
process commits what these functions return.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import MediaError
from sensorprint.media import read_frames
from sensorprint.media.video import Frame, frame_packets, read_frames_at
from sensorprint.prnu import (
    FingerprintAccumulator,
    FingerprintStrength,
    PreparedFingerprint,
    Query,
    Transform,
    compare,
    extract_residual,
    frame_noise,
    frame_weight,
    intensity,
    landscape,
    to_gray,
)
from sensorprint.prnu.adaptive import all_settled, batches, coded_share, frame_order, settled
from sensorprint.prnu.decision import calibration_for, centre_window
from sensorprint.prnu.scene import enhance_residual
from sensorprint.prnu.stabilised import (
    AlignedReference,
    ReferenceFrame,
    StabilisedFrame,
    align_reference,
    compare_stabilised,
)
from sensorprint.results import Decision, Match
from sensorprint.workflow.files import FileFacts, fail, file_facts, frame_choice, read_medium
from sensorprint.workflow.options import SignalOptions

# Reference videos always get the full 4-level wavelet denoiser (enrollment is done once);
# query videos get SignalOptions.video_denoiser (cheaper, same decisions: video_throughput.py).
REFERENCE_VIDEO_LEVELS = 4


@dataclass
class QuerySignal(Query):
    """The noise signal of one query file (`prnu.Query`), and the pixels the CNN classifies.

    pixels: the image, or the video frames used, when kept for the CNN (`keep_pixels`).
    frames: a video's frames as W·I (residual times intensity), when kept for the per-frame
    search of stabilised video (`keep_frames`; `prnu.stabilised`).
    """

    pixels: list[np.ndarray] = field(default_factory=list)
    frames: list[StabilisedFrame] = field(default_factory=list)
    aggregate: VideoAggregate | None = field(default=None, repr=False)


@dataclass
class VideoAggregate:
    """The running sums of a query video's aggregate, so that an adaptive read can add frames to it.

    accumulator: Σ wWI and Σ wI² (`FingerprintAccumulator`, one half). previous: the grey
    of the last frame added (for the novelty of the next one's weight). clean: whether the
    estimate is cleaned (`video_query_residual`).
    """

    accumulator: FingerprintAccumulator | None = None
    previous: np.ndarray | None = None
    clean: bool = True


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
    """Add the weighted frames of a reference video to the accumulator that fits their size.

    Each frame's residual is the 4-level wavelet noise of its luminance (Mihcak et al. 1999);
    the zero-mean and DFT Wiener steps are applied once, to the estimate, by the accumulator.
    With `options.align_references`, the frames are first aligned to the running estimate
    (`prnu.stabilised.align_reference`): a stabilised video's frames are each brought into
    the geometry of its first keyframe before they are summed, those that find no clear
    transform left out; what was done is kept in `facts.alignment`. A video that is not
    stabilised is summed as before, frame by frame as read.
    """
    previous = None
    kept: list[ReferenceFrame] = []
    for frame in frames:
        gray = to_gray(frame.pixels)
        weight = _weight(gray, previous)
        previous = gray
        facts.frames.append(_frame_record(frame, weight))
        if weight > 0:
            residual = frame_noise(gray, method="wavelet", sigma=options.sigma, levels=REFERENCE_VIDEO_LEVELS)
            if not options.align_references:
                accumulator_for(gray.shape).add(gray, residual=residual, weight=weight)
                continue
            inten = intensity(gray)
            kept.append(ReferenceFrame(residual * inten, inten * inten, frame.index, frame.keyframe, weight, gray))
    _check_frames(path, facts)
    if not kept:
        return
    if len({f.wi.shape for f in kept}) > 1:
        raise MediaError(f"{path.name}: the frame size changes within the video; split it into parts of one size")
    aligned = align_reference(kept)
    facts.alignment = _alignment_record(aligned)
    accumulator = accumulator_for(kept[0].wi.shape)
    # not stabilised: the frames as read, the same sums `add` makes; stabilised: the aligned frames
    for frame in aligned.frames if aligned.stabilised else kept:
        accumulator.add_products(frame.wi, frame.energy, weight=frame.weight)


def _alignment_record(aligned: AlignedReference) -> dict:
    """What the alignment of a reference video did, as stored with it and shown by `enroll`."""
    flag = "undetermined" if aligned.stabilised is None else ("stabilised" if aligned.stabilised else "steady")
    return {
        "stabilisation": flag,
        "aligned": len(aligned.frames) if aligned.stabilised else 0,
        "left_out": list(aligned.left_out),
        "anchor_frame": aligned.anchor,
        "frame_transforms": [f.to_dict() for f in aligned.fits] if aligned.stabilised else [],
    }


def video_query_residual(
    path: Path,
    options: SignalOptions,
    facts: FileFacts,
    kept: list | None = None,
    *,
    clean: bool = True,
    frames: Iterable[Frame] | None = None,
    kept_frames: list | None = None,
    aggregate: VideoAggregate | None = None,
    share: dict[int, float] | None = None,
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
    the medium, from one open of the file); read here when None. kept_frames: when given,
    each used frame's W·I is appended as a `StabilisedFrame` (for `prnu.stabilised`).
    aggregate: the running sums to add to (an adaptive read adds batch after batch; the
    estimate then covers every frame added so far). share: {frame position: weight factor}
    of frames weighted by their coded size (`prnu.adaptive.coded_share`; 1 when absent).
    """
    method, levels = options.video_denoiser, options.video_levels
    aggregate = aggregate if aggregate is not None else VideoAggregate()
    accumulator, previous = aggregate.accumulator, aggregate.previous
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
        weight = _weight(gray, previous) * (1.0 if share is None else share.get(frame.index, 1.0))
        previous = gray
        facts.frames.append(_frame_record(frame, weight))
        if weight > 0:
            accumulator = accumulator or FingerprintAccumulator(gray.shape, halves=1)
            _check_frame_size(path, frame, gray, accumulator.shape)
            noise = frame_noise(gray, method=method, sigma=options.sigma, levels=levels)
            accumulator.add(gray, residual=noise, weight=weight)
            if kept_frames is not None:
                kept_frames.append(StabilisedFrame(noise * gray, frame.index, frame.keyframe, weight))
        residual_s += time.process_time() - started
    aggregate.accumulator, aggregate.previous = accumulator, previous
    _check_frames(path, facts)
    started = time.process_time()
    aggregate.clean = clean and options.video_clean
    result = accumulator.estimate(clean=aggregate.clean)
    facts.timings["decode"] = facts.timings.get("decode", 0.0) + decode_s
    facts.timings["residual"] = facts.timings.get("residual", 0.0) + residual_s + time.process_time() - started
    return result


def _check_frame_size(path: Path, frame: Frame, gray: np.ndarray, shape: tuple[int, int]) -> None:
    if gray.shape != shape:
        raise MediaError(
            f"{path.name}: the frame size changes within the video ({gray.shape[1]}x{gray.shape[0]} "
            f"at frame {frame.index}); split it into parts of one size"
        )


def query_signal(
    path: Path,
    options: SignalOptions,
    *,
    keep_pixels: bool = False,
    clean_video: bool = True,
    keep_frames: bool = False,
) -> tuple[FileFacts, QuerySignal | None]:
    """Read a file and compute its noise signal; errors become a one-line message in the facts.

    keep_pixels: also return the image or the frames used, for the CNN to classify
    without reading the file again. clean_video: clean a video's aggregate (see
    `video_query_residual`); a scan, where it is only ever the query, may pass False
    (about 0.036 s less per 1080p video, the same PCEs). keep_frames: keep a video's
    frames (W·I) for the per-frame search of stabilised video. `facts.timings` gets the CPU
    seconds of each step ("probe", "decode", "residual").

    A video is opened once (`read_video`): the probe (index, first frame, hash) and the
    frames come from the same open.
    """
    facts = file_facts(path)
    try:
        started = time.process_time()
        facts.medium, pixels, frames = read_medium(path, options, facts)
        facts.timings["probe"] = time.process_time() - started
        if pixels is not None:
            started = time.process_time()
            signal = QuerySignal(matching_residual(pixels, options), to_gray(pixels))
            signal.jpeg_quality = jpeg_quality(facts.medium.metadata)
            facts.timings["residual"] = time.process_time() - started
            if keep_pixels:
                signal.pixels.append(pixels)
        else:
            kept: list[np.ndarray] = []
            kept_frames: list[StabilisedFrame] = []
            clean = clean_video and options.video_clean
            aggregate = VideoAggregate()
            residual = video_query_residual(
                path,
                options,
                facts,
                kept if keep_pixels else None,
                clean=clean,
                frames=frames,
                kept_frames=kept_frames if keep_frames else None,
                aggregate=aggregate,
            )
            signal = QuerySignal(residual, None, cleaned=clean, pixels=kept, frames=kept_frames, aggregate=aggregate)
        return facts, signal
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the run
        fail(facts, error)
        return facts, None


def matching_residual(pixels: np.ndarray, options: SignalOptions) -> np.ndarray:
    """An image's noise residual (`prnu.extract_residual`), its scene content attenuated when the options ask.

    The one place a reference image and a query image get their residual, so that the two are
    always made alike (`SignalOptions.scene_alpha`: Li, TIFS 2010, `prnu.scene.enhance_residual`).
    """
    residual = extract_residual(pixels, sigma=options.sigma)
    return residual if options.scene_alpha is None else enhance_residual(residual, options.scene_alpha)


def jpeg_quality(metadata: dict | None) -> int | None:
    """The IJG quality of a JPEG's luminance table as the reader recorded it (`media.structure`), or None."""
    quality = ((metadata or {}).get("jpeg") or {}).get("quality")
    return int(quality) if quality is not None else None


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
            facts.medium, pixels, frames = read_medium(path, options, facts)
            if pixels is not None:
                residual = matching_residual(pixels, options)
                rotation = accumulator_for(pixels.shape).add(pixels, residual=residual)
                facts.fit_window = _fit_window(pixels, residual, rotation)
            else:
                _add_video(accumulator_for, frames, path, options, facts)
        except Exception as error:  # noqa: BLE001 - one bad reference file must not stop enrollment
            fail(facts, error)
        all_facts.append(facts)
    return all_facts, accumulators


def placed_part(path: str, options: SignalOptions, shape: tuple[int, int], transform: dict) -> tuple[FileFacts, dict]:
    """The sums of one reference image registered into a sensor fingerprint of `shape` at `transform`.

    For a reference that is a crop of the sensor's frame (`workflow.crops`): its W·I and I²
    are added at the place the crop search found (`FingerprintAccumulator.add_placed`), not
    to a fingerprint of its own size. Returns its facts and {shape: accumulator}, as
    `enrollment_part` does for one file (empty when the file cannot be read).
    """
    facts = file_facts(Path(path))
    accumulators: dict[tuple[int, int], FingerprintAccumulator] = {}
    try:
        facts.medium, pixels, _ = read_medium(Path(path), options, facts)
        if pixels is None:
            raise MediaError(f"{Path(path).name}: a registered reference must be an image")
        accumulators[shape] = placed_sums(pixels, matching_residual(pixels, options), shape, transform)
    except Exception as error:  # noqa: BLE001 - the caller reports the file's error line
        fail(facts, error)
    return facts, accumulators


def placed_sums(
    pixels: np.ndarray, residual: np.ndarray, shape: tuple[int, int], transform: dict
) -> FingerprintAccumulator:
    """The sums of a fingerprint of `shape` holding one crop at the place `transform` (`Transform.to_dict`) names."""
    placed = Transform.from_dict(transform)
    accumulator = FingerprintAccumulator(shape)
    accumulator.add_placed(pixels, residual=residual, rotation=placed.rotation, flip=placed.flip, offset=placed.offset)
    return accumulator


def _fit_window(pixels: np.ndarray, residual: np.ndarray, rotation: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The centre windows of a reference's W·I and I², turned as the accumulator added it, and its pixel count.

    Kept so that the image can be checked against the device's other references after the
    fingerprint is estimated (`workflow.references`), without reading it again.
    """
    inten = intensity(pixels)
    k = rotation // 90
    return centre_window(np.rot90(residual * inten, k)), centre_window(np.rot90(inten * inten, k)), int(inten.size)


@dataclass(frozen=True)
class FingerprintRef:
    """Where a worker finds one enrolled fingerprint: it loads the array itself (memory-mapped)."""

    device: str
    fingerprint_id: int
    path: str
    shape: tuple[int, int]
    source: str  # "image", "video" or "mixed": what the fingerprint was estimated from
    n_media: int | None = None  # images or frames behind it (None: not recorded)
    quality: float | None = None  # its split-half quality

    @property
    def strength(self) -> FingerprintStrength | None:
        if self.n_media is None or self.quality is None:
            return None
        return FingerprintStrength(int(self.n_media), float(self.quality))


# A worker keeps the fingerprints it prepared, most recently used last: a scan compares every
# file with the same few. Bounded, because each is an FFT in memory and each memory map holds a
# file descriptor: a long-lived Dask worker of a 10,000-device case must not keep them all.
_prepared: OrderedDict[str, PreparedFingerprint] = OrderedDict()  # array files have unique names
MAX_PREPARED = 48
LOADS: Counter[str] = Counter()  # reads of each fingerprint file by this process


def prepared_fingerprint(ref: FingerprintRef) -> PreparedFingerprint:
    """The fingerprint of `ref` ready for matching (its FFT, and resized copies as searched), cached per worker."""
    if ref.path in _prepared:
        _prepared.move_to_end(ref.path)
        return _prepared[ref.path]
    if len(_prepared) >= MAX_PREPARED:
        _prepared.popitem(last=False)  # the least recently used
    LOADS[ref.path] += 1
    _prepared[ref.path] = PreparedFingerprint(np.asarray(np.load(ref.path, mmap_mode="r"), dtype=np.float32))
    return _prepared[ref.path]


def size_key(shape: tuple[int, ...]) -> str:
    """The key under which a device remembers the transform found for queries of one size."""
    rows, cols = landscape(shape)
    return f"{cols}x{rows}"


def choose_fingerprint(refs: list[FingerprintRef], query_shape: tuple[int, int]) -> FingerprintRef:
    """The fingerprint of a device to compare a query with: one of the query's own size, else the largest."""
    same = [r for r in refs if landscape(r.shape) == landscape(query_shape)]
    return same[0] if same else max(refs, key=lambda r: r.shape[0] * r.shape[1])


def match_device(
    signal: QuerySignal,
    refs: list[FingerprintRef],
    hint: dict | None,
    threshold: float,
    *,
    orientations: str = "sensor",
    looks: int = 1,
) -> Match:
    """Compare one query signal with the best-fitting fingerprint of one device (`prnu.compare`).

    The device's fingerprint is loaded and prepared (FFT) once per worker process; the
    query's spectra are computed once and shared by every device. hint: a transform found
    before for this device and query size (`Transform.to_dict`). looks: the how-many-th
    decision of a growing video aggregate this is (`prnu.compare`).
    """
    ref = choose_fingerprint(refs, signal.residual.shape)
    found = compare(
        signal,
        prepared_fingerprint(ref),
        target=ref.device,
        k_is_video=ref.source != "image",
        hint=Transform.from_dict(hint) if hint else None,
        threshold=threshold,
        orientations=orientations,
        strength=ref.strength,
        looks=looks,
    )
    return found.with_evidence(
        fingerprint_id=ref.fingerprint_id,
        fingerprint_source=ref.source,
        size_key=size_key(signal.residual.shape),
    )


def match_devices(
    signal: QuerySignal,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    threshold: float,
    *,
    orientations: str = "sensor",
) -> list[Match]:
    """Compare one query with every device: as a whole (`match_device`), then frame by frame where that found nothing.

    A video whose aggregate matches no device may be stabilised (every frame a different
    crop, scale and rotation of the sensor, so the aggregate is blurred): its kept frames
    (`QuerySignal.frames`) are then searched frame by frame against each device
    (`prnu.stabilised.compare_stabilised`), the aggregate's positions counted too. A video
    that matches some device as a whole is not searched further: its frames line up.
    hints: {"device|size": transform} remembered for the devices.
    """
    results = _match_each(signal, devices, hints, threshold, orientations=orientations)
    return _frame_search(signal, devices, results, threshold)


def _match_each(
    signal: QuerySignal,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    threshold: float,
    *,
    orientations: str,
    looks: int = 1,
) -> dict[str, Match]:
    """{device: `match_device`} of the query as a whole, each with the hint remembered for its size."""
    key = size_key(signal.residual.shape)
    return {
        device: match_device(
            signal, refs, hints.get(f"{device}|{key}"), threshold, orientations=orientations, looks=looks
        )
        for device, refs in devices.items()
    }


def _frame_search(
    signal: QuerySignal, devices: dict[str, list[FingerprintRef]], results: dict[str, Match], threshold: float
) -> list[Match]:
    """The per-frame search of `match_devices` after the whole-aggregate `results`: only where none matched.

    Its answer replaces the aggregate's, except that an aggregate too weak to exclude the
    device (inconclusive) is not turned into "no match" by a per-frame search that found nothing.
    The search says "no match" only where the aggregate's predicted true-pair PCE (the frames
    once aligned, `DEFAULT_VIDEO_CALIBRATION`) passes the search's own threshold.
    """
    key = size_key(signal.residual.shape)
    if not signal.frames or any(m.decision == Decision.MATCH for m in results.values()):
        return list(results.values())
    for device, refs in devices.items():
        ref = choose_fingerprint(refs, signal.residual.shape)
        found = compare_stabilised(
            signal.frames,
            prepared_fingerprint(ref).k,
            target=device,
            threshold=threshold,
            strength=ref.strength,
            earlier_positions=results[device].evidence.n_positions or 0,
            expected=calibration_for(True).expected(results[device].evidence.predicted_pce),
        )
        # an aggregate too weak to exclude the device stays inconclusive unless the per-frame search
        # matches: the search's own "no match" does not know how weak the frames were
        keep = (
            results[device].decision == Decision.INCONCLUSIVE and found is not None and found.decision != Decision.MATCH
        )
        if found is not None and not keep:
            results[device] = found.with_evidence(
                fingerprint_id=ref.fingerprint_id, fingerprint_source=ref.source, size_key=key
            )
    return list(results.values())


def more_frames(path: Path, facts: FileFacts, signal: QuerySignal, options: SignalOptions) -> Iterator[int]:
    """Grow a video's aggregate batch by batch (`prnu.adaptive`), yielding the frames it holds after each batch.

    The frames follow `prnu.adaptive.frame_order` after those already used (the other
    keyframes, then the other frames by coded size, weighted by `coded_share`), in doubling
    batches, up to `options.max_frames` in all (0: the whole clip). The caller decides after
    each batch and stops the generator when it is settled: frames are read only as needed.
    """
    started = time.process_time()
    keyframes, sizes = frame_packets(path)
    facts.timings["probe"] = facts.timings.get("probe", 0.0) + time.process_time() - started
    first = [int(f["index"]) for f in facts.frames]
    key_sizes = [size for size, is_key in zip(sizes, keyframes, strict=True) if is_key]
    typical = float(np.median(key_sizes)) if key_sizes else 0.0
    rest = frame_order(keyframes, sizes, first)[len(first) :]
    used = len(facts.frames)
    cap = max(options.max_frames - used, 0) if options.max_frames else None
    for batch in batches(rest, max(used, 1), cap) if cap != 0 else []:
        share = {p: (1.0 if keyframes[p] else coded_share(sizes[p], typical)) for p in batch}
        residual = video_query_residual(
            path,
            options,
            facts,
            clean=signal.aggregate.clean,
            frames=read_frames_at(path, batch, threads=1),
            aggregate=signal.aggregate,
            share=share,
        )
        signal.replace_residual(residual)
        yield len(facts.frames)


def match_video(
    path: Path,
    facts: FileFacts,
    signal: QuerySignal,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    threshold: float,
    options: SignalOptions,
) -> list[Match]:
    """`match_devices`, reading more frames of a video query while some device is undecided (`prnu.adaptive`).

    The first decision is made on the frames `options` chose (today's 5 keyframes: a clip
    that decides on them costs what it did). While some device is neither matched nor
    excluded (`prnu.adaptive.settled`), the next batch of frames in `prnu.adaptive.frame_order`
    (the other keyframes, then the other frames by coded size, weighted by `coded_share`)
    is added to the aggregate and the devices still undecided are decided again, each decision
    counted in its false-alarm probability (`looks`: a sequential test, which stops for a
    device at the look that settles it); the read stops once all are settled, the clip ends,
    or `options.max_frames` frames were used. A settled device keeps the answer of the look
    that settled it, an undecided one that of every frame read; its evidence says how many
    frames were behind its answer (frames_used) and, when settled, at how many it was settled
    (frames_decided). The same file and options give the same frames and the same answers.
    Images, and videos without `options.adaptive_frames`, are matched once (`match_devices`);
    `facts.frames` lists every frame used.
    """
    orientations = options.orientations
    if signal.aggregate is None or not options.adaptive_frames or not devices:
        results = match_devices(signal, devices, hints, threshold, orientations=orientations)
        return [_with_frames(m, facts, None) for m in results]
    looks = 1
    results = _match_each(signal, devices, hints, threshold, orientations=orientations)
    used = len(facts.frames)
    decided_at = {d: used for d, m in results.items() if settled(m)}
    if not all_settled(results.values()):
        for used in more_frames(path, facts, signal, options):
            looks += 1
            # a settled device keeps the answer of the look that settled it (a sequential test stops
            # there, its looks counted); only the undecided are decided again, which is also cheaper
            open_devices = {d: refs for d, refs in devices.items() if d not in decided_at}
            again = _match_each(signal, open_devices, hints, threshold, orientations=orientations, looks=looks)
            results |= again
            decided_at |= {d: used for d, m in again.items() if settled(m)}
            if all_settled(results.values()):
                break
    final = _frame_search(signal, devices, results, threshold)
    return [_with_frames(m, facts, decided_at.get(m.target)) for m in final]


def _with_frames(found: Match, facts: FileFacts, decided_at: int | None) -> Match:
    """The match with the frames of the video aggregate behind it (unchanged for an image or a per-frame search).

    decided_at: the frames the aggregate held when this device's answer was settled (its
    frames_used and frames_decided); None: undecided, its answer is that of every frame read.
    """
    if not facts.frames or found.evidence.frames_decided is not None:
        return found.with_evidence(frames_used=len(facts.frames)) if facts.frames else found
    if decided_at is None:
        decided = len(facts.frames) if settled(found) else None
        return found.with_evidence(frames_used=len(facts.frames), frames_decided=decided)
    return found.with_evidence(frames_used=decided_at, frames_decided=decided_at)


def query_and_match(
    path: Path,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    options: SignalOptions,
    threshold: float,
) -> tuple[FileFacts, list[Match]]:
    """Read one file and compare it with every device, a video adaptively (`query_signal`, `match_video`)."""
    facts, signal = query_signal(path, options, clean_video=False, keep_frames=options.frame_search)
    if signal is None:
        return facts, []
    return facts, match_video(path, facts, signal, devices, hints, threshold, options)
