"""The result contract: what every comparison answers, and the one rule that fuses PRNU with the CNN.

A foundation module like `sensorprint.errors`: plain frozen dataclasses and enums, no I/O,
importable by every layer. `prnu` and `learn` give `Match` objects, the store saves and
loads them, the workflow combines them into one `FileResult` per file, and the report,
the CLI and the tests read them. Words are not made here: the CLI and the report turn
these objects into sentences.

- `Match`: one file against one target (an enrolled device, or a camera model) by one
  method, with the evidence a court would ask for (`PrnuEvidence` or `CnnEvidence`).
- `Verdict`: what PRNU and the CNN say together about one file, from `fuse`.
- `FileResult`: one file, its hash, its matches and its verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from functools import cache
from typing import Any


class Method(StrEnum):
    """Which method made a decision."""

    PRNU = "prnu"
    CNN = "cnn"


class TargetKind(StrEnum):
    """What a match names: an enrolled camera device, or a camera model."""

    DEVICE = "device"
    MODEL = "model"


class Decision(StrEnum):
    """The answer of one comparison.

    PRNU answers match or no match (the PCE against the threshold). A network answers match
    for the class it names and no match for the others, or unknown on every class when the
    open-set rule rejects the file.
    """

    MATCH = "match"
    NO_MATCH = "no match"
    INCONCLUSIVE = "inconclusive"
    UNKNOWN = "unknown"


class Agreement(StrEnum):
    """How the two methods' answers about one file relate (see `fuse`)."""

    AGREE = "agree"
    DISAGREE = "disagree"
    PRNU_ONLY = "prnu only"
    CNN_ONLY = "cnn only"
    NONE = "none"
    ERROR = "error"


class Stabilisation(StrEnum):
    """Whether a video's frames needed a transform each (electronic stabilisation), as the per-frame search found."""

    STABILISED = "stabilised"  # the transform changes from frame to frame
    STEADY = "steady"  # the frames share one transform
    UNDETERMINED = "undetermined"  # too few frames found their transform clearly to say


UNKNOWN_LABEL = "unknown"
"""What a network answers when it names no class (open-set rejection or no usable patch)."""


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls)) - {"extra"}


def _known(cls: type, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    names = _field_names(cls)  # cached: a case's 100,000 files read back without re-listing the fields each time
    known = {k: v for k, v in values.items() if k in names}
    extra = {k: v for k, v in values.items() if k not in names}
    return known, extra


def _without_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """The stored form: fields left at their default (None, False, empty) are not written."""
    extra = values.pop("extra", None) or {}
    return {k: v for k, v in values.items() if not _is_default(v)} | dict(extra)


def _is_default(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, dict | list | tuple) and not value)


@dataclass(frozen=True)
class PrnuEvidence:
    """How a PRNU comparison was made (Goljan 2009; Goljan & Fridrich 2008).

    n_positions: every shift, orientation and scale searched (the N of the false-alarm
    probability). log10_p_fa: log₁₀ of the false-alarm probability, finite where it
    underflows. threshold_at_search: the PCE this search had to reach for a match
    (`prnu.decision.search_threshold`). search_stage: which search found the peak. transform_text: the transform
    in words as `prnu.Transform.describe` gives it. fingerprint_shape/id/source: the
    fingerprint compared with. size_key: the query size under which a found transform is
    remembered ("1920x1080"). roles_swapped: the query was larger than a video-estimated
    fingerprint, so the fingerprint was located inside the query. hint_used/hint_tried: a
    remembered transform decided / was tested first and failed. reason: why no comparison
    could be made. predicted_pce: the PCE a true pair would reach by the physical model of
    `prnu.decision.predicted_true_pce`, before calibration. unreferenced_module: the file
    was made by this module of the phone, which has no references (`workflow.modules`), so
    the phone's other modules cannot exclude it. model_twin: why a match was made
    inconclusive: the device whose fingerprint correlates with this one's, and the figures
    (`prnu.decision.separated_from_twin`). empirical_p_fa: the p_fa checked against the
    wrong pairs of the case's validation (`prnu.evaluative.empirical_false_alarm`), in words,
    saying which of the Gaussian and the empirical one ruled. stabilisation: a video matched frame by
    frame (`prnu.stabilised`): whether its transform changes from frame to frame.
    frame_transforms: each frame's transform found (frame, keyframe, pce, scale, rotation in
    degrees, shift in pixels), in the order searched. frames_decided: how many frames the
    per-frame decision needed (a match) or used (otherwise); for a video's aggregate, from
    how many frames on the answer (match or no match) stayed the same as frames were added
    (`workflow.signals.match_video`; None while inconclusive). frames_used: the frames of
    the video read for this comparison (the aggregate's; an adaptive read adds frames until
    every device is decided). extra: keys written by another
    version, kept unread.
    """

    n_positions: int | None = None
    log10_p_fa: float | None = None
    threshold_at_search: float | None = None
    search_stage: str | None = None
    transform_text: str | None = None
    fingerprint_shape: tuple[int, ...] | None = None
    fingerprint_id: int | None = None
    fingerprint_source: str | None = None
    fingerprint_media: int | None = None
    fingerprint_quality: float | None = None
    weak_fingerprint: bool = False
    size_key: str | None = None
    roles_swapped: bool = False
    hint_used: bool = False
    hint_tried: bool = False
    reason: str | None = None
    predicted_pce: float | None = None
    unreferenced_module: str | None = None
    model_twin: str | None = None
    empirical_p_fa: str | None = None
    stabilisation: Stabilisation | None = None
    frame_transforms: tuple[Mapping[str, Any], ...] | None = None
    frames_decided: int | None = None
    frames_used: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PrnuEvidence:
        known, extra = _known(cls, values)
        if known.get("fingerprint_shape") is not None:
            known["fingerprint_shape"] = tuple(int(v) for v in known["fingerprint_shape"])
        if known.get("stabilisation") is not None:
            known["stabilisation"] = Stabilisation(known["stabilisation"])
        if known.get("frame_transforms") is not None:
            known["frame_transforms"] = tuple(dict(t) for t in known["frame_transforms"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        values = _without_defaults(asdict(self))
        if self.fingerprint_shape is not None:
            values["fingerprint_shape"] = list(self.fingerprint_shape)
        if self.frame_transforms:
            values["frame_transforms"] = [dict(t) for t in self.frame_transforms]
        return values


@dataclass(frozen=True)
class CnnEvidence:
    """How a network answered for one file (Bennabhaktula et al. 2022).

    model_id/network: the case's network that answered. probabilities: class → mean
    softmax over the file's units (patches or frames). top: the most probable class.
    evidence: the mean top-class logit, compared with `unknown_threshold` (open-set rule,
    calibrated on held-out reference files). units/unit: how many patches or frames were
    used. votes/vote_label: the per-unit majority vote beside the mean. combined: how the
    units were combined. frames: the video frames classified. flat_share: the share of
    the file's patches that are homogeneous; content_caveat: said when the file is less
    flat than every reference file. reason: why no class was named. network_stale: why
    the network no longer covers every enrolled device.
    """

    model_id: int | None = None
    network: str | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    top: str | None = None
    evidence: float | None = None
    unknown_threshold: float | None = None
    units: int | None = None
    unit: str | None = None
    votes: Mapping[str, int] = field(default_factory=dict)
    vote_label: str | None = None
    combined: str | None = None
    frames: list[Any] | None = None
    flat_share: float | None = None
    content_caveat: str | None = None
    reason: str | None = None
    network_stale: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CnnEvidence:
        known, extra = _known(cls, values)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return _without_defaults(asdict(self))


Evidence = PrnuEvidence | CnnEvidence
_EVIDENCE = {Method.PRNU: PrnuEvidence, Method.CNN: CnnEvidence}


@dataclass(frozen=True)
class Match:
    """One file against one target by one method: the decision and its evidence.

    method PRNU: score is the PCE (signed), ncc the normalised correlation at the peak,
    p_fa the false-alarm probability over every position searched, transform how the query
    maps onto the fingerprint (`prnu.Transform.to_dict`). method CNN: one match per class
    of the network; score is the class probability. `evidence` may be given as the stored
    dict; it is read into the method's evidence type. The fields after `evidence` are
    filled in by the store when it reads a match back.
    """

    method: Method
    target: str
    score: float | None
    decision: Decision
    target_kind: TargetKind = TargetKind.DEVICE
    ncc: float | None = None
    p_fa: float | None = None
    transform: Mapping[str, Any] | None = None
    evidence: Evidence | Mapping[str, Any] | None = None
    id: int | None = field(default=None, compare=False)
    medium_id: int | None = field(default=None, compare=False)
    run_id: int | None = field(default=None, compare=False)
    created: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        method = Method(self.method)  # ValueError for a method this version does not know
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "decision", Decision(self.decision))
        object.__setattr__(self, "target_kind", TargetKind(self.target_kind))
        evidence = self.evidence
        if evidence is None:
            evidence = _EVIDENCE[method]()
        elif isinstance(evidence, Mapping):
            evidence = _EVIDENCE[method].from_dict(evidence)
        if not isinstance(evidence, _EVIDENCE[method]):
            raise TypeError(f"a {method} match needs {_EVIDENCE[method].__name__}, not {type(evidence).__name__}")
        object.__setattr__(self, "evidence", evidence)

    @property
    def details(self) -> dict[str, Any]:
        """The evidence as the plain dict the store and the JSON report keep."""
        return self.evidence.to_dict()  # type: ignore[union-attr]

    def with_evidence(self, **changes: Any) -> Match:
        """The same match with some evidence fields changed (e.g. the fingerprint it was compared with)."""
        return replace(self, evidence=replace(self.evidence, **changes))  # type: ignore[type-var]


# ---------------------------------------------------------------------------- what a network said


@dataclass(frozen=True)
class CnnAnswer:
    """One network's answer for one file, read from its matches (one per class).

    label: the class it names, or UNKNOWN_LABEL. probability: of the label (of the top
    class when unknown). several_matched: the classes marked match when there is more than
    one (a recording error: a network names one class).
    """

    target_kind: TargetKind
    label: str
    probability: float | None
    top: str | None
    top_probability: float | None
    probabilities: Mapping[str, float]
    evidence: CnnEvidence
    several_matched: tuple[str, ...] = ()
    run_id: int | None = None

    @property
    def named(self) -> bool:
        return self.label != UNKNOWN_LABEL


def cnn_answer(matches: Iterable[Match]) -> CnnAnswer | None:
    """The answer of the network behind `matches` (one network's CNN matches for one file), or None."""
    rows = [m for m in matches if m.method == Method.CNN]
    if not rows:
        return None
    evidence: CnnEvidence = rows[0].evidence  # type: ignore[assignment]
    probabilities = {m.target: m.score for m in rows if m.score is not None} | dict(evidence.probabilities)
    ranked = sorted(((p, name) for name, p in probabilities.items() if p is not None), reverse=True)
    top_probability, top = ranked[0] if ranked else (None, None)
    matched = sorted(m.target for m in rows if m.decision == Decision.MATCH)
    label = matched[0] if len(matched) == 1 else UNKNOWN_LABEL
    return CnnAnswer(
        target_kind=rows[0].target_kind,
        label=label,
        probability=probabilities.get(label) if label != UNKNOWN_LABEL else top_probability,
        top=top,
        top_probability=top_probability,
        probabilities=dict(sorted(probabilities.items())),
        evidence=evidence,
        several_matched=tuple(matched) if len(matched) > 1 else (),
        run_id=rows[0].run_id,
    )


def cnn_answers(matches: Iterable[Match]) -> dict[TargetKind, CnnAnswer]:
    """{target kind: answer} of the networks behind one file's matches (one network per kind)."""
    by_kind: dict[TargetKind, list[Match]] = {}
    for m in matches:
        if m.method == Method.CNN:
            by_kind.setdefault(m.target_kind, []).append(m)
    return {kind: answer for kind, rows in by_kind.items() if (answer := cnn_answer(rows)) is not None}


# ---------------------------------------------------------------------------- the fused verdict


@dataclass(frozen=True)
class Verdict:
    """What PRNU and the CNN say together about one question.

    The question is "which of these devices is the source?" (`fuse`, for a scanned file:
    every device with a fingerprint) or "do these two files share a source?" (`fuse_pair`).
    prnu: the device PRNU names (the strongest match), NO_SOURCE when it names none of
    those compared, INCONCLUSIVE_ANSWER when it matched none and could not exclude some,
    None when PRNU did not run. prnu_matches: every device at or above the
    threshold, strongest first. cnn_device / cnn_model: the networks' answers. cnn_says:
    the device network's answer to the question (a device, NO_SOURCE, or None).
    model_conflict: the model PRNU's device is enrolled as, when the model network names
    another. agreement: see `Agreement`; any difference between the methods is DISAGREE.
    """

    agreement: Agreement
    prnu: str | None = None
    prnu_matches: tuple[str, ...] = ()
    cnn_device: CnnAnswer | None = None
    cnn_model: CnnAnswer | None = None
    cnn_says: str | None = None
    model_conflict: str | None = None


NO_SOURCE = "no match"
"""A method's answer when it names none of the devices in question."""

INCONCLUSIVE_ANSWER = "inconclusive"
"""PRNU's answer when it matched no device and could not exclude at least one (`Decision.INCONCLUSIVE`)."""


def _agreement(prnu: str | None, cnn: str | None, model_conflict: bool) -> Agreement:
    if prnu == INCONCLUSIVE_ANSWER:  # PRNU gave no answer: the CNN's stands alone
        prnu = None
    if prnu is None and cnn is None:
        return Agreement.NONE
    if model_conflict:
        return Agreement.DISAGREE
    if prnu is None:
        return Agreement.CNN_ONLY
    if cnn is None:
        return Agreement.PRNU_ONLY
    return Agreement.AGREE if prnu == cnn else Agreement.DISAGREE


def strength_of_evidence(m: Match) -> tuple[float, float]:
    """The sort key of PRNU matches, strongest first: the false-alarm probability of the search made, then the PCE.

    A crop search over a million positions must not outrank an aligned comparison by its raw
    PCE (Goljan 2009): the log₁₀ p_fa counts the positions searched.
    """
    log_p = m.evidence.log10_p_fa if m.evidence.log10_p_fa is not None else (0.0 if m.p_fa is None else _log10(m.p_fa))
    return (log_p, -(m.score if m.score is not None else -math.inf))


def _log10(p: float) -> float:
    return math.log10(p) if p > 0 else -math.inf


def prnu_ranking(matches: Iterable[Match]) -> tuple[str, ...]:
    """The devices PRNU matched, strongest evidence (lowest false-alarm probability) first."""
    found = [m for m in matches if m.method == Method.PRNU and m.decision == Decision.MATCH]
    return tuple(m.target for m in sorted(found, key=strength_of_evidence))


def prnu_inconclusive(matches: Iterable[Match]) -> bool:
    """Whether PRNU answered inconclusive for some device (and matched none)."""
    rows = [m for m in matches if m.method == Method.PRNU]
    return not any(m.decision == Decision.MATCH for m in rows) and any(
        m.decision == Decision.INCONCLUSIVE for m in rows
    )


def fuse(
    matches: Iterable[Match], devices_in_question: Iterable[str], device_models: Mapping[str, str | None]
) -> Verdict:
    """The one fusion rule: PRNU's answer beside the networks' answers for one file.

    devices_in_question: the devices the question is about (a scan: every device with a
    fingerprint; `verify` against device B: B alone). A network naming a device outside
    them answers "none of these" for the question. The methods agree when they name the
    same device, or both none; the camera-model network disagrees when it names another
    model than the one PRNU's device is enrolled as. PRNU decides; the CNN corroborates.
    """
    matches = list(matches)
    in_question = set(devices_in_question)
    prnu_rows = [m for m in matches if m.method == Method.PRNU]
    ranking = prnu_ranking(prnu_rows)
    prnu = (ranking[0] if ranking else NO_SOURCE) if prnu_rows else None
    if prnu == NO_SOURCE and prnu_inconclusive(prnu_rows):
        prnu = INCONCLUSIVE_ANSWER
    answers = cnn_answers(matches)
    device, model = answers.get(TargetKind.DEVICE), answers.get(TargetKind.MODEL)
    cnn_says = None
    if device is not None:
        cnn_says = device.label if device.named and device.label in in_question else NO_SOURCE
    conflict = None
    if model is not None and prnu not in (None, NO_SOURCE, INCONCLUSIVE_ANSWER):
        enrolled = device_models.get(prnu)
        if enrolled and model.label != enrolled:
            conflict = enrolled
    agreement = _agreement(prnu, cnn_says, conflict is not None)
    if prnu in (None, INCONCLUSIVE_ANSWER) and cnn_says is None and model is not None:
        agreement = Agreement.CNN_ONLY
    return Verdict(agreement, prnu, ranking, device, model, cnn_says, conflict)


def fuse_pair(prnu_same: bool, device_a: CnnAnswer | None, device_b: CnnAnswer | None) -> Verdict:
    """The fusion rule for "do A and B share a source?": PRNU's decision beside the device network's.

    prnu_same: None when PRNU was inconclusive. The network says "same" when it names the
    same enrolled device for both files; it is a closed-set answer (it cannot tell apart two
    cameras it was never trained on).
    """
    prnu = "same source" if prnu_same else NO_SOURCE
    if prnu_same is None:
        prnu = INCONCLUSIVE_ANSWER
    if device_a is None or device_b is None:
        return Verdict(Agreement.PRNU_ONLY, prnu, cnn_device=device_a)
    same = device_a.named and device_a.label == device_b.label
    cnn_says = "same source" if same else NO_SOURCE
    return Verdict(_agreement(prnu, cnn_says, False), prnu, cnn_device=device_a, cnn_says=cnn_says)


# ---------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class FileResult:
    """One examined file: what it is, its SHA-256, every match and the fused verdict.

    status "error": the file could not be examined, and `error` says why in one line.
    not_compared: devices with a fingerprint that the file was not (yet) compared with:
    "no match" must never be read into a comparison that was not made. medium: the stored
    facts of the file (kind, size, orientation, metadata, frames used) as the store keeps
    them.
    """

    path: str
    sha256: str | None
    status: str
    error: str | None
    matches: tuple[Match, ...]
    verdict: Verdict
    not_compared: tuple[str, ...] = ()
    medium: Any = None

    @property
    def best_device(self) -> str | None:
        """The device PRNU names for this file, or None."""
        return self.verdict.prnu if self.verdict.prnu not in (None, NO_SOURCE, INCONCLUSIVE_ANSWER) else None

    def prnu(self) -> dict[str, Match]:
        """{device: its PRNU match}."""
        return {m.target: m for m in self.matches if m.method == Method.PRNU}
