"""Per-file work, run in worker processes: from a file on disk to its noise signal and its matches.

Everything here is a top-level function of picklable arguments, so it runs the same in
a local process pool and on a Dask worker. Nothing here writes to the case: the calling
process commits what these functions return.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import MatchError, MediaError
from sensorprint.media import Medium, probe, read_frames, read_image, sha256_file
from sensorprint.media.formats import read_head, sniff
from sensorprint.prnu import (
    FingerprintAccumulator,
    Transform,
    extract_residual,
    frame_weight,
    match,
    to_gray,
)
from sensorprint.workflow.options import SignalOptions


@dataclass
class FileFacts:
    """What the store needs about one file, whether it could be read or not."""

    path: str
    size_bytes: int
    mtime_ns: int
    medium: Medium | None = None
    error: str | None = None
    sha256: str | None = None  # also for files that cannot be read: the hash goes into every result
    frames: list[dict] = field(default_factory=list)

    def error_line(self) -> str:
        """The error as one line that names the file (messages from the readers often already do)."""
        return self.error if self.path in self.error else f"{self.path}: {self.error}"

    def store_fields(self) -> dict:
        """The keyword arguments of `Case.add_medium` / `Case.record_results` for this file."""
        m = self.medium
        return {
            "path": self.path,
            "sha256": m.sha256 if m else self.sha256,
            "size_bytes": self.size_bytes,
            "mtime_ns": self.mtime_ns,
            "kind": m.kind if m else None,
            "width": m.width if m else None,
            "height": m.height if m else None,
            "orientation": m.orientation if m else None,
            "metadata": m.metadata if m else {},
            "status": "error" if self.error else "ok",
            "error": self.error,
            "details": {"frames": self.frames} if self.frames else {},
        }


def stat_file(path: Path) -> tuple[int, int]:
    """Size in bytes and modification time in ns: the cheap test that a file is unchanged."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def _facts(path: Path) -> FileFacts:
    size, mtime = stat_file(path)
    return FileFacts(path=str(path), size_bytes=size, mtime_ns=mtime)


def fail(facts: FileFacts, error: BaseException) -> None:
    """Record why a file could not be used, and still hash it when its bytes can be read."""
    facts.error = one_line(error)
    if not isinstance(error, (MediaError, MatchError)):
        facts.error += " | " + traceback.format_exc(limit=3).replace("\n", " ")[-300:]
    try:
        facts.sha256 = sha256_file(Path(facts.path))
    except OSError:
        pass


def read_medium(path: Path) -> tuple[Medium, np.ndarray | None]:
    """The medium of a file and, for an image, its pixels: one read of the file for images.

    The kind is told from the content, never the extension; content no magic number
    identifies is tried as an image first, then as a video container.
    """
    kind = sniff(read_head(path), path).kind
    if kind != "video":
        try:
            image = read_image(path)
            return image.medium, image.pixels
        except MediaError:
            if kind == "image":
                raise
    return probe(path), None


def one_line(error: BaseException) -> str:
    """A user-facing one-line message; unexpected errors say they are internal."""
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (MediaError, MatchError)):
        return text
    return f"internal error ({type(error).__name__}): {text}"


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


def _video_frames(path: Path, options: SignalOptions):
    return read_frames(path, strategy=options.frame_strategy, n=options.n_frames, seed=options.seed)


def _add_video(accumulator_for, path: Path, options: SignalOptions, facts: FileFacts, kept: list | None = None) -> None:
    """Add the weighted frames of a video to the accumulator that fits their size (and keep them if asked)."""
    previous = None
    for frame in _video_frames(path, options):
        if kept is not None:
            kept.append(frame.pixels)
        gray = to_gray(frame.pixels)
        weight = frame_weight(gray, previous)
        previous = gray
        facts.frames.append(
            {"index": frame.index, "time_s": round(frame.time_s, 3), "keyframe": frame.keyframe, "weight": round(weight, 3)}
        )
        if weight > 0:
            residual = extract_residual(frame.pixels, sigma=options.sigma)
            accumulator_for(gray.shape).add(frame.pixels, residual=residual, weight=weight)
    if not facts.frames:
        raise MediaError(f"{path.name}: no frame could be decoded")
    if not any(f["weight"] > 0 for f in facts.frames):
        raise MediaError(f"{path.name}: every selected frame is dark, saturated or a duplicate")


def query_signal(
    path: Path, options: SignalOptions, *, keep_pixels: bool = False
) -> tuple[FileFacts, QuerySignal | None]:
    """Read a file and compute its noise signal; errors become a one-line message in the facts.

    keep_pixels: also return the image or the frames used, for the CNN to classify
    without reading the file again.
    """
    facts = _facts(path)
    try:
        facts.medium, pixels = read_medium(path)
        if pixels is not None:
            signal = QuerySignal(extract_residual(pixels, sigma=options.sigma), to_gray(pixels))
            if keep_pixels:
                signal.pixels.append(pixels)
        else:
            accumulators: dict[tuple[int, int], FingerprintAccumulator] = {}

            def accumulator_for(shape):
                return accumulators.setdefault(shape, FingerprintAccumulator(shape))

            kept: list[np.ndarray] = []
            _add_video(accumulator_for, path, options, facts, kept if keep_pixels else None)
            (accumulator,) = accumulators.values()  # frames of one video share one size
            signal = QuerySignal(accumulator.result().k, None, kept)
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
        facts = _facts(path)
        try:
            facts.medium, pixels = read_medium(path)
            if pixels is not None:
                residual = extract_residual(pixels, sigma=options.sigma)
                accumulator_for(pixels.shape).add(pixels, residual=residual)
            else:
                _add_video(accumulator_for, path, options, facts)
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


def _load(ref: FingerprintRef) -> np.ndarray:
    # A worker keeps the fingerprints it has read: a scan compares every file with the same few.
    if ref.path not in _loaded:
        _loaded[ref.path] = np.load(ref.path, mmap_mode="r")
    return _loaded[ref.path]


def size_key(shape: tuple[int, ...]) -> str:
    """The key under which a device remembers the transform found for queries of one size."""
    rows, cols = landscape(shape)
    return f"{cols}x{rows}"


def choose_fingerprint(refs: list[FingerprintRef], query_shape: tuple[int, int]) -> FingerprintRef:
    """The fingerprint of a device to compare a query with: one of the query's own size, else the largest."""
    same = [r for r in refs if landscape(r.shape) == landscape(query_shape)]
    return same[0] if same else max(refs, key=lambda r: r.shape[0] * r.shape[1])


def compare(signal: QuerySignal, k: np.ndarray, hint: dict | None, threshold: float, *, k_is_video: bool) -> dict:
    """Compare a query signal with a fingerprint K: the PRNU result row, without its target.

    A query larger than a fingerprint estimated from video frames (an image against a
    video-enrolled device: frames are downscaled views of the sensor) is matched the other
    way round: the fingerprint becomes the query of the image's W·I, which is the detector's
    statistic with the roles swapped. A query larger than a full-sensor fingerprint cannot
    come from that sensor.
    """
    q_rows, q_cols = landscape(signal.residual.shape)
    f_rows, f_cols = landscape(k.shape)
    larger = q_rows > f_rows or q_cols > f_cols
    swapped = larger and k_is_video
    row: dict = {"method": "prnu", "target_kind": "device", "ncc": None, "transform": None}
    details = {"fingerprint_shape": list(k.shape), "roles_swapped": swapped}
    try:
        if larger and not swapped:
            raise MatchError(
                f"the query ({q_cols}x{q_rows}) is larger than this device's sensor fingerprint ({f_cols}x{f_rows})"
            )
        if swapped:
            reference = signal.residual if signal.intensity is None else signal.residual * signal.intensity
            found = match(np.asarray(k, dtype=np.float32), None, reference.astype(np.float32))
        else:
            found = match(signal.residual, signal.intensity, k, hint=Transform.from_dict(hint) if hint else None)
    except MatchError as error:
        details["reason"] = one_line(error)
        return row | {"score": 0.0, "p_fa": 1.0, "decision": "no match", "details": details}
    details |= {"n_positions": int(found.n_positions), "transform_text": found.transform.describe()}
    return row | {
        "score": float(found.pce),
        "ncc": float(found.ncc),
        "p_fa": float(found.p_fa),
        "decision": "match" if found.pce >= threshold else "no match",
        "transform": found.transform.to_dict(),
        "details": details,
    }


def match_device(signal: QuerySignal, refs: list[FingerprintRef], hint: dict | None, threshold: float) -> dict:
    """Compare one query signal with the best-fitting fingerprint of one device."""
    ref = choose_fingerprint(refs, signal.residual.shape)
    row = compare(signal, _load(ref), hint, threshold, k_is_video=ref.source != "image")
    row["target"] = ref.device
    row["details"]["fingerprint_id"] = ref.fingerprint_id
    return row
