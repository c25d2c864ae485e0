"""Use case: check a device's references before they are trusted, and the case's devices against each other.

- Each new reference image is compared with the fingerprint of the device's other
  references (leave one out, `prnu.decision.reference_fit`, on a centre window kept from
  enrollment: the file is not read twice). A file that does not fit while the others
  do (another camera's photo, added by mistake) is refused: the fingerprint is estimated
  again without it (`workflow.correct.remove_reference`), unless the examiner keeps it
  (`force`), and then it is flagged in every report. Each reference's score is stored with it.
- A device whose references do not support each other (too few, or too weak) is said so.
- The device's fingerprints are compared with every other device's of the same size: units
  of one model that share a pattern correlate (Iuliani et al., "A leak in PRNU based source
  identification: questioning fingerprint uniqueness", IEEE Access 2021); each such pair is
  reported with its figure.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD
from sensorprint.prnu.decision import centre_window, correlation_score, reference_fit
from sensorprint.store import Case, Device

MIN_CHECKED = 3  # fewer scored references than this: no file can be told an outlier


@dataclass(frozen=True)
class ReferenceScore:
    """One reference file's fit to the fingerprint of the device's other references (None: not scored, see note)."""

    path: str
    medium_id: int
    score: float | None
    note: str | None = None


@dataclass
class ReferenceCheck:
    """What the check of one device's references found.

    misfits: references that do not fit while the others do; refused (removed, the
    fingerprint estimated again without them) unless `kept` (the examiner's --force).
    weak: why the device's references do not support each other, or None. similar: other
    devices whose fingerprint of the same size correlates with this one's: (name, score N·ρ²).
    """

    device: str
    threshold: float
    scores: list[ReferenceScore] = field(default_factory=list)
    misfits: list[ReferenceScore] = field(default_factory=list)
    kept: bool = False
    weak: str | None = None
    similar: list[tuple[str, float]] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        scored = [s.score for s in self.scores if s.score is not None]
        return statistics.median(scored) if scored else None


def _score_size(num: np.ndarray, den: np.ndarray, windows: list[FitWindow]) -> list[ReferenceScore]:
    """The leave-one-out scores of a device's new references of one size, from their centre windows."""
    num_window, den_window = centre_window(num), centre_window(den)
    return [
        ReferenceScore(w.path, w.medium_id, reference_fit(num_window, den_window, w.own, w.energy, w.n_pixels))
        for w in windows
    ]


def _judge(check: ReferenceCheck) -> None:
    """Find the misfits (scores under the threshold while the device's median is above) or say the device is weak."""
    scored = [s for s in check.scores if s.score is not None]
    median = check.median
    if len(scored) < MIN_CHECKED:
        check.weak = f"only {len(scored)} reference image(s) could be checked against the others"
    elif median is not None and median < check.threshold:
        check.weak = (
            f"the references do not support each other: median fit {median:.1f} < {check.threshold:g} "
            "(too few, too dark or too textured media; or of several cameras)"
        )
    else:
        check.misfits = [s for s in scored if s.score < check.threshold]


def similar_devices(case: Case, device: Device, threshold: float) -> list[tuple[str, float]]:
    """Other devices whose fingerprint of a size this device has correlates with its own: (name, N·ρ²)."""
    mine = {(f.height, f.width): f for f in case.fingerprints(device.id)}
    found = []
    for other in case.fingerprints():
        if other.device_id == device.id or (other.height, other.width) not in mine:
            continue
        score = correlation_score(mine[(other.height, other.width)].load(), other.load())
        if score >= threshold:
            found.append((other.device_name, round(score, 1)))
    return sorted(found, key=lambda item: -item[1])


@dataclass(frozen=True)
class FitWindow:
    """A new reference image's centre window of W·I, kept from enrollment (`signals.enrollment_part`)."""

    path: str
    medium_id: int
    shape: tuple[int, int]  # the landscape size of its fingerprint
    own: np.ndarray  # W·I on the centre window
    energy: np.ndarray  # I² on the centre window
    n_pixels: int


def check_references(
    case: Case, device: Device, windows: list[FitWindow], *, threshold: float = DEFAULT_PCE_THRESHOLD
) -> ReferenceCheck:
    """Score each new image reference of `device` against its other references, judge them, store the scores.

    Misfits are only found, not removed: the caller refuses them (or keeps them on the
    examiner's word) and says so.
    """
    check = ReferenceCheck(device.name, threshold)
    for shape in sorted({w.shape for w in windows}):
        sums = case.load_sums(device.id, shape)
        if sums is None or "num" not in sums:
            continue
        num, den = sums["num"].sum(axis=0, dtype=np.float32), sums["den"].sum(axis=0, dtype=np.float32)
        check.scores += _score_size(num, den, [w for w in windows if w.shape == shape])
    _judge(check)
    notes = {s.medium_id: {"reference_fit": None if s.score is None else round(s.score, 1)} for s in check.scores}
    if notes:
        case.annotate_media(notes)
    check.similar = similar_devices(case, device, threshold)
    return check


def model_twins(case: Case) -> dict[str, dict[str, float]]:
    """{device: {device whose fingerprint correlates with its own: score N·ρ²}}, as the enrollments found them.

    Each completed enrollment compared the enrolled device's fingerprints with every other
    device's (`similar_devices`) and kept the pairs in its run record; a later enrollment of
    either device replaces what an earlier one found for it. Devices removed since are left out.
    """
    twins: dict[str, dict[str, float]] = {}
    for run in case.runs():
        if run.command != "enroll" or run.status != "completed" or "similar" not in (run.summary or {}):
            continue
        device = run.parameters.get("device")
        for pairs in twins.values():
            pairs.pop(device, None)
        twins[device] = {}
        for name, score in run.summary["similar"]:
            twins[device][name] = float(score)
            twins.setdefault(name, {})[device] = float(score)
    present = {d.name for d in case.list_devices()}
    return {d: {t: v for t, v in pairs.items() if t in present} for d, pairs in twins.items() if d in present and pairs}
