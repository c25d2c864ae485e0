"""Use case: measure the case's own error rates, and the scores behind its likelihood ratios.

For every enrolled device:

- same source: each reference image is held out and compared with the fingerprint of the
  device's other references (`prnu.decision.leave_one_out_fingerprint`, on the stored sums,
  at full size and through the same `prnu.compare` as a scan); the true-match rate is the
  share of them answered "match".
- different sources: every other device's reference files, and every file under the folders
  of unrelated media given, are compared with the device's fingerprint exactly as a scan
  compares evidence (`signals.match_device`, searches included); the false-alarm rate is the
  share of them answered "match".

The scores and rates are stored with the run (its summary), so a report can give each
decision its likelihood ratio (`prnu.evaluative`) and the limitations their figures. A
reference file that changed since it was enrolled (SHA-256) is not scored: one line.
Reference videos are compared with the other devices but not held out (their frames went
into the sums with weights that a single read cannot undo exactly).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.media.discover import discover
from sensorprint.prnu.decision import (
    DEFAULT_CALIBRATION,
    Calibration,
    FingerprintStrength,
    Query,
    compare,
    landscape,
    leave_one_out_fingerprint,
)
from sensorprint.prnu.evaluative import (
    ErrorRate,
    LikelihoodRatio,
    LikelihoodRatioSystem,
    comparison_score,
    fit_likelihood_ratio,
    likelihood_ratio,
)
from sensorprint.prnu.geometry import Transform, orient
from sensorprint.prnu.residual import intensity, to_gray
from sensorprint.results import Decision, Match
from sensorprint.store import Case
from sensorprint.workflow.crops import registration
from sensorprint.workflow.options import ScanOptions, SignalOptions
from sensorprint.workflow.parallel import completed, open_executor, window_for
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.scan import enrolled_fingerprints
from sensorprint.workflow.signals import FingerprintRef, match_device, query_signal

SAME, REFERENCE, UNRELATED = "held-out reference", "other device's reference", "unrelated media"


@dataclass(frozen=True)
class Score:
    """One comparison of known truth: a file against a device, its PCE, p_fa, positions and answer."""

    device: str
    file: str
    sha256: str | None
    origin: str  # SAME, REFERENCE or UNRELATED
    pce: float
    log10_p_fa: float
    n_positions: int
    decision: str
    predicted_pce: float | None = None  # the physical prediction of a true pair's PCE (before calibration)

    @property
    def same_source(self) -> bool:
        return self.origin == SAME

    @property
    def score(self) -> float:
        return comparison_score(self.log10_p_fa)


@dataclass(frozen=True)
class DeviceRates:
    """A device's measured rates: true matches among its held-out references, false alarms among the rest."""

    device: str
    true_match: ErrorRate
    true_inconclusive: int
    false_alarm: ErrorRate
    false_inconclusive: int
    fingerprint_ids: tuple[int, ...]  # the fingerprints measured: a later enrollment makes the figures stale


@dataclass
class Validation:
    """What `validate` measured (the words are `sensorprint.cli.text.validation_lines`)."""

    run_id: int
    devices: list[DeviceRates] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _score(row: Match, file: str, sha256: str | None, origin: str) -> Score:
    return Score(
        row.target,
        file,
        sha256,
        origin,
        round(float(row.score), 3),
        float(row.evidence.log10_p_fa if row.evidence.log10_p_fa is not None else 0.0),
        int(row.evidence.n_positions or 1),
        str(row.decision),
        row.evidence.predicted_pce,
    )


_sums: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # per worker: the sums of the device being held out


def _total_sums(case_root: str, device_id: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    key = (case_root, device_id, shape)
    if key not in _sums:
        with Case.open(case_root, read_only=True) as case:
            state = case.load_sums(device_id, shape)
        if state is None or "num" not in state:
            return None
        _sums.clear()  # one device at a time: sums of a 24 MP sensor are 200 MB
        _sums[key] = (state["num"].sum(axis=0, dtype=np.float32), state["den"].sum(axis=0, dtype=np.float32))
    return _sums[key]


def _as_enrolled(
    pixels: np.ndarray, residual: np.ndarray, num: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residual, grey levels and intensity turned as the accumulator added the file (portrait: the better of 90°/270°)."""
    gray, inten = to_gray(pixels), intensity(pixels)
    if residual.shape == num.shape:
        return residual, gray, inten
    k = max((1, 3), key=lambda k: float(np.sum(np.rot90(residual * inten, k) * num, dtype=np.float64)))
    return np.rot90(residual, k), np.rot90(gray, k), np.rot90(inten, k)


def held_out_match(
    pixels: np.ndarray,
    residual: np.ndarray,
    sums: tuple[np.ndarray, np.ndarray],
    device: str,
    threshold: float,
    strength,
    jpeg_quality: int | None = None,
) -> Match:
    """A reference image compared with the fingerprint of its device's other references, as a scan would."""
    num, den = sums
    w, gray, inten = _as_enrolled(pixels, residual, num)
    k = leave_one_out_fingerprint(num, den, w * inten, inten * inten)
    query = Query(np.ascontiguousarray(w), np.ascontiguousarray(gray), jpeg_quality=jpeg_quality)
    return compare(query, k, target=device, k_is_video=False, threshold=threshold, strength=strength)


def held_out_placed(
    pixels: np.ndarray,
    residual: np.ndarray,
    sums: tuple[np.ndarray, np.ndarray],
    transform: dict,
    device: str,
    threshold: float,
    strength,
    jpeg_quality: int | None = None,
) -> Match:
    """A crop registered into its device's fingerprint, compared at its place with the fingerprint of the others.

    transform: where the registration put it (`Transform.to_dict`; `workflow.crops`). Its W·I
    and I², turned as the registration turned them, are taken out of the sums at that offset
    (they were added there: `FingerprintAccumulator.add_placed`), and the crop is compared
    with that part of K₋ᵢ (Chen et al. 2008) at that one position: the registration fixed the
    place before this test, so it is not searched again.
    """
    placed = Transform.from_dict(transform)
    w = orient(residual, placed.rotation, placed.flip)
    gray = orient(to_gray(pixels), placed.rotation, placed.flip)
    inten = orient(intensity(pixels), placed.rotation, placed.flip)
    (top, left), (rows, cols) = placed.offset, w.shape
    num, den = (a[top : top + rows, left : left + cols] for a in sums)
    k = leave_one_out_fingerprint(num, den, w * inten, inten * inten)
    query = Query(np.ascontiguousarray(w), np.ascontiguousarray(gray), jpeg_quality=jpeg_quality)
    return compare(query, k, target=device, k_is_video=False, threshold=threshold, strength=strength)


@dataclass(frozen=True)
class ReferenceTask:
    """One reference file to score: its own device (held out) and the others (different sources)."""

    path: str
    sha256: str | None
    device: str
    device_id: int
    shape: tuple[int, int] | None  # landscape size of its own fingerprint (None: a video, not held out)
    strength: FingerprintStrength | None
    placed: dict | None = None  # a crop registered into the fingerprint of `shape`: where (`Transform.to_dict`)


def score_reference(
    task: ReferenceTask, case_root: str, others: dict[str, list[FingerprintRef]], options: SignalOptions, threshold
) -> tuple[list[Score], str | None]:
    """The scores of one reference file: held out against its device, and against every other device."""
    facts, signal = query_signal(Path(task.path), options, keep_pixels=True, clean_video=False)
    if signal is None:
        return [], facts.error_line()
    if facts.medium.sha256 != task.sha256:
        return [], f"{task.path}: changed since it was enrolled (SHA-256 differs): not scored"
    scores = []
    sums = _total_sums(case_root, task.device_id, task.shape) if task.shape and signal.intensity is not None else None
    if sums is not None:  # an image: held out against the fingerprint of its device's other references
        pixels, residual = signal.pixels[0], signal.residual
        if task.placed is not None:  # a registered crop: held out where it was registered
            own = held_out_placed(
                pixels, residual, sums, task.placed, task.device, threshold, task.strength, signal.jpeg_quality
            )
        else:
            own = held_out_match(pixels, residual, sums, task.device, threshold, task.strength, signal.jpeg_quality)
        scores.append(_score(own, task.path, task.sha256, SAME))
    signal.pixels.clear()
    for refs in others.values():
        scores.append(_score(match_device(signal, refs, None, threshold), task.path, task.sha256, REFERENCE))
    return scores, None


def score_unrelated(
    path: str, devices: dict[str, list[FingerprintRef]], options: SignalOptions, threshold
) -> tuple[list[Score], str | None]:
    """The scores of one file known to come from none of the devices, against every device."""
    facts, signal = query_signal(Path(path), options, clean_video=False)
    if signal is None:
        return [], facts.error_line()
    sha = facts.medium.sha256 if facts.medium else None
    return [
        _score(match_device(signal, refs, None, threshold), path, sha, UNRELATED) for refs in devices.values()
    ], None


def _reference_tasks(case: Case, devices: dict[str, list[FingerprintRef]]) -> list[ReferenceTask]:
    tasks = []
    for name, refs in devices.items():
        device = case.get_device(name)
        strengths = {landscape(r.shape): r.strength for r in refs if r.source == "image"}
        sums_shapes = set(case.sums_shapes(device.id))
        for medium in case.list_media(role="reference", device_id=device.id, status="ok"):
            shape = landscape((medium.height, medium.width)) if medium.kind == "image" and medium.width else None
            registered = registration(medium.details)  # a crop: part of the fingerprint it was registered into
            if registered is not None:
                shape = registered[0]
            if shape not in sums_shapes:
                shape = registered = None
            strength = strengths.get(shape)
            if strength is not None:  # the fingerprint without this file has one medium fewer
                strength = FingerprintStrength(max(1, strength.n_media - 1), strength.quality)
            placed = registered[1] if registered is not None else None
            tasks.append(ReferenceTask(medium.path, medium.sha256, name, device.id, shape, strength, placed))
    return tasks


def rates(device: str, scores: list[Score], fingerprint_ids: tuple[int, ...] = ()) -> DeviceRates:
    """The true-match and false-alarm rates of one device from its scores."""
    mine = [s for s in scores if s.device == device]
    same = [s for s in mine if s.same_source]
    different = [s for s in mine if not s.same_source]
    return DeviceRates(
        device,
        ErrorRate(sum(s.decision == Decision.MATCH for s in same), len(same)),
        sum(s.decision == Decision.INCONCLUSIVE for s in same),
        ErrorRate(sum(s.decision == Decision.MATCH for s in different), len(different)),
        sum(s.decision == Decision.INCONCLUSIVE for s in different),
        fingerprint_ids,
    )


def validate(
    case: Case,
    paths: list[Path] = (),
    *,
    options: ScanOptions = ScanOptions(),
    workers: int | None = None,
    progress: Progress = no_progress,
) -> Validation:
    """Measure every device's true-match and false-alarm rates (module doc) and store them with the run."""
    devices = enrolled_fingerprints(case)
    if not devices:
        raise CaseError(f"no device is enrolled in {case.root}: run `sensorprint enroll` first")
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: give folders of media known not to come from these devices")
    references = _reference_tasks(case, devices)
    unrelated = [str(p) for p in discover(list(paths))]
    parameters = {"paths": [str(Path(p).resolve()) for p in paths], "devices": sorted(devices), **options.to_dict()}
    run_id = case.start_run("validate", parameters)
    found = Validation(run_id)
    status = "interrupted"
    try:
        found.scores, found.errors = _run_tasks(
            str(case.root), devices, references, unrelated, options, workers, progress
        )
        found.devices = [
            rates(name, found.scores, tuple(r.fingerprint_id for r in refs)) for name, refs in devices.items()
        ]
        status = "completed"
    finally:
        case.finish_run(run_id, status, validation_summary(found) if status == "completed" else {})
    return found


def _run_tasks(case_root, devices, references, unrelated, options, workers, progress):
    total = len(references) + len(unrelated)
    tasks = [
        (score_reference, task, case_root, {n: r for n, r in devices.items() if n != task.device}, options.signal)
        for task in references
    ] + [(score_unrelated, path, devices, options.signal) for path in unrelated]
    scores, errors = [], []
    progress("validate", 0, total)
    with open_executor(workers) as executor:
        results = completed(executor, _call, [(t, options.threshold) for t in tasks], window=window_for(workers, None))
        for done, (file_scores, error) in enumerate(results, start=1):
            scores += file_scores
            errors += [error] if error else []
            progress("validate", done, total)
    return sorted(scores, key=lambda s: (s.device, s.origin, s.file)), errors


def _call(task: tuple, threshold: float):
    fn, *args = task
    return fn(*args, threshold)


def validation_summary(found: Validation) -> dict:
    """The run summary that stores a validation (read back by `latest_validation`)."""
    return {
        "devices": [
            {
                "device": r.device,
                "true_match": [r.true_match.k, r.true_match.n],
                "true_inconclusive": r.true_inconclusive,
                "false_alarm": [r.false_alarm.k, r.false_alarm.n],
                "false_inconclusive": r.false_inconclusive,
                "fingerprint_ids": list(r.fingerprint_ids),
            }
            for r in found.devices
        ],
        "scores": [asdict(s) for s in found.scores],
        "errors": found.errors,
    }


def latest_validation(case: Case) -> Validation | None:
    """The case's most recent completed validation, read back from its run (None: never validated)."""
    runs = [r for r in case.runs() if r.command == "validate" and r.status == "completed" and r.summary]
    if not runs:
        return None
    summary = runs[-1].summary
    found = Validation(runs[-1].id, errors=list(summary.get("errors", [])))
    found.scores = [Score(**s) for s in summary.get("scores", [])]
    for d in summary.get("devices", []):
        found.devices.append(
            DeviceRates(
                d["device"],
                ErrorRate(*d["true_match"]),
                d["true_inconclusive"],
                ErrorRate(*d["false_alarm"]),
                d["false_inconclusive"],
                tuple(d.get("fingerprint_ids", ())),
            )
        )
    return found


def current_fingerprint_ids(case: Case) -> dict[str, tuple[int, ...]]:
    """{device: ids of its fingerprints now}: a validation of other ids is stale for that device."""
    return {name: tuple(r.fingerprint_id for r in refs) for name, refs in enrolled_fingerprints(case).items()}


def pooled_scores(found: Validation) -> tuple[list[float], list[float]]:
    """The case's same-source and different-source scores, all devices pooled (one LR system for the case)."""
    same = [s.score for s in found.scores if s.same_source]
    different = [s.score for s in found.scores if not s.same_source]
    return same, different


def likelihood_system(found: Validation) -> LikelihoodRatioSystem | None:
    """The case's LR system, fitted once on its pooled validation scores (None: a set is empty)."""
    return fit_likelihood_ratio(*pooled_scores(found))


def decision_likelihood_ratio(system: LikelihoodRatioSystem | None, log10_p_fa: float | None) -> LikelihoodRatio | None:
    """The LR of one comparison (its p_fa) from the case's LR system (`likelihood_system`)."""
    if system is None or log10_p_fa is None:
        return None
    return system.at(comparison_score(log10_p_fa))


def held_out_likelihood_ratios(found: Validation) -> tuple[list[float], list[float]]:
    """log10 LR of each validation score with that score left out of the data: (same-source, different-source).

    What the LR system says of comparisons whose truth is known, without having seen them.
    """
    same, different = pooled_scores(found)
    lrs_same = [likelihood_ratio(s, same[:i] + same[i + 1 :], different) for i, s in enumerate(same)]
    lrs_diff = [likelihood_ratio(s, same, different[:i] + different[i + 1 :]) for i, s in enumerate(different)]
    return [lr.log10_lr for lr in lrs_same if lr], [lr.log10_lr for lr in lrs_diff if lr]


MIN_CALIBRATION = 5  # held-out references with a prediction needed before the case's own calibration is used


def calibration(found: Validation | None) -> Calibration:
    """How the predicted true-pair PCE compares with what the case's held-out references reached.

    Never more optimistic than the built-in calibration (`DEFAULT_CALIBRATION`, measured on
    natural images): references are often flat fields, which the physical model predicts
    well (dresden-nikon: median log₁₀ ratio +0.12, sd 0.11), while it overestimates natural
    scenes (−0.19, sd 0.51; see `prnu.decision.DEFAULT_CALIBRATION`). The built-in one alone when the case has too few
    (`MIN_CALIBRATION`) held-out references with a positive PCE and a prediction.
    """
    ratios = [
        math.log10(s.pce / s.predicted_pce)
        for s in (found.scores if found else [])
        if s.same_source and s.predicted_pce and s.pce > 0
    ]
    if len(ratios) < MIN_CALIBRATION:
        return DEFAULT_CALIBRATION
    offset, spread = statistics.median(ratios), statistics.stdev(ratios)
    return Calibration(
        round(min(offset, DEFAULT_CALIBRATION.offset), 3),
        round(max(spread, DEFAULT_CALIBRATION.spread), 3),
        len(ratios),
        f"validation run {found.run_id} (median {offset:+.2f}, sd {spread:.2f}), no more optimistic than the built-in",
    )
