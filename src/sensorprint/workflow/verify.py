"""Use case: do two media share a source camera, or does a medium come from an enrolled device?

PRNU decides (PCE against the threshold, `prnu.compare`). With `case`, the case's trained
networks (CNN of Bennabhaktula et al. 2022) also classify the query (and B when it is a
file); their answers are given beside the PRNU decision, never merged into it silently: the
one fusion rule (`results.fuse`, `results.fuse_pair`) says whether the two methods agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sensorprint import __version__
from sensorprint.errors import CaseError, MediaError
from sensorprint.prnu.adaptive import settled
from sensorprint.prnu.cluster import pair_score
from sensorprint.prnu.decision import ONE_MEDIUM
from sensorprint.results import CnnAnswer, Decision, Match, TargetKind, Verdict, cnn_answer, fuse, fuse_pair
from sensorprint.store import Case
from sensorprint.workflow.classify import NetworkRef, classify_rows, current_networks
from sensorprint.workflow.options import ScanOptions
from sensorprint.workflow.references import model_twins
from sensorprint.workflow.review import twin_rule
from sensorprint.workflow.scan import enrolled_fingerprints
from sensorprint.workflow.signals import (
    FingerprintRef,
    QuerySignal,
    match_devices,
    match_video,
    more_frames,
    query_signal,
)


@dataclass(frozen=True)
class FileAnswer:
    """One network's answer for one of the two files ("A" or "B")."""

    file: str
    network: str
    answer: CnnAnswer


@dataclass
class Verification:
    """The answer of `verify`: the PRNU match, the networks' answers and the fused verdict.

    b_is_device: B names a device enrolled in the case (sha256_b is then None).
    prnu: the PRNU `Match` of A against B (score = PCE; its evidence says how it was made).
    verdict: PRNU and the device network together (`results.fuse` / `fuse_pair`).
    cnn_notes: stale or refused networks, and networks that failed on a file.
    """

    a: str
    b: str
    prnu: Match
    threshold: float
    sha256_a: str
    sha256_b: str | None
    verdict: Verdict
    cnn: list[FileAnswer] = field(default_factory=list)
    cnn_notes: list[str] = field(default_factory=list)
    tool_version: str = __version__
    medium_a: dict = field(default_factory=dict)  # A's facts as the store records a medium (`FileFacts.store_fields`)
    cnn_rows_a: list[Match] = field(default_factory=list)  # the networks' matches for A, as a scan records them

    @property
    def b_is_device(self) -> bool:
        return self.sha256_b is None

    @property
    def decision(self) -> str:
        return str(self.prnu.decision)


def _signal_or_error(path: Path, options: ScanOptions, *, keep_pixels: bool = False):
    facts, signal = query_signal(path, options.signal, keep_pixels=keep_pixels, keep_frames=options.signal.frame_search)
    if signal is None:
        raise MediaError(facts.error_line())
    return facts, signal


def _classify(
    networks: list[NetworkRef], facts, signal: QuerySignal, file: str, notes: list[str]
) -> tuple[list[FileAnswer], list[Match]]:
    """Each network's answer for one of the files, and its matches; failures become notes."""
    rows, failures = classify_rows(networks, signal.pixels, is_video=signal.intensity is None, frames=facts.frames)
    notes.extend(f"{file}: {line}" for line in failures)
    answers = []
    for ref in networks:
        answer = cnn_answer(row for row in rows if row.evidence.model_id == ref.model_id)
        if answer is not None:
            answers.append(FileAnswer(file, ref.title, answer))
    return answers, rows


def _pair(signal_a: QuerySignal, signal_b: QuerySignal, options: ScanOptions, looks: int = 1) -> Match:
    return pair_score(
        signal_a,
        signal_b,
        target="B",
        threshold=options.threshold,
        orientations=options.signal.orientations,
        strength=ONE_MEDIUM,
        looks=looks,
    )


def _against_file(
    files: tuple[Path, Path], facts, signals: tuple[QuerySignal, QuerySignal], options: ScanOptions
) -> Match:
    """A against file B: the pair score `sensorprint cluster` gives every pair (`prnu.cluster.pair_score`).

    The larger medium plays the reference (the smaller may be a crop or a scaled copy of it).
    A video read adaptively (`options.signal.adaptive_frames`), as a scan reads it: while the
    pair is undecided (`prnu.adaptive.settled`), each video gets its next batch of frames
    (`signals.more_frames`) and the pair is decided again, every look counted in its
    false-alarm probability, until it is settled or both clips end. `facts` and `signals`
    are A's and B's; the evidence says how many frames of A were used.
    """
    found = _pair(*signals, options)
    videos = [
        more_frames(path, f, s, options.signal)
        for path, f, s in zip(files, facts, signals, strict=True)
        if s.aggregate is not None and options.signal.adaptive_frames
    ]
    looks = 1
    while videos and not settled(found):
        videos = [v for v in videos if next(v, None) is not None]  # one more batch of each video not yet ended
        if not videos:
            break
        looks += 1
        found = _pair(*signals, options, looks)
    if facts[0].frames:
        return found.with_evidence(frames_used=len(facts[0].frames))
    return found


def _twin_checked(
    found: Match,
    signal: QuerySignal,
    twins: dict[str, float],
    fingerprints: dict[str, list[FingerprintRef]],
    options: ScanOptions,
) -> Match:
    """A match to the device passes the twin rule of a scan's review (`workflow.review.twin_rule`).

    twins: the devices of the case whose fingerprints correlate with this device's
    (`workflow.references.model_twins`, units of one model can share a pattern: Iuliani et
    al., IEEE Access 2021). A is compared with each of them on the same noise that decided
    the match (no further frames of a video), and the match stands only when separated from
    every twin's result; otherwise it is inconclusive, with the twin named in its evidence.
    """
    others = {name: refs for name, refs in fingerprints.items() if name in twins}
    if found.decision != Decision.MATCH or not others:
        return found
    against = match_devices(signal, others, {}, options.threshold, orientations=options.signal.orientations)
    return twin_rule([found, *against], {found.target: twins})[0]


def _device_answer(answers: list[FileAnswer], file: str) -> CnnAnswer | None:
    return next((a.answer for a in answers if a.file == file and a.answer.target_kind == TargetKind.DEVICE), None)


def verify(a: Path, b: str, *, case: Path | None = None, options: ScanOptions = ScanOptions()) -> Verification:
    """Compare file A with file B, or with the device named B in `case`.

    For two files, B plays the reference: its one-medium fingerprint estimate is the K that
    A's residual is tested against, with the same geometric search as a scan.
    """
    networks: list[NetworkRef] = []
    notes: list[str] = []
    device_models: dict[str, str | None] = {}
    if case is not None:
        with Case.open(case, read_only=True) as opened:
            networks, notes = current_networks(opened)
            device_models = {d.name: d.model for d in opened.list_devices()}
    facts_a, signal_a = _signal_or_error(Path(a), options, keep_pixels=bool(networks))
    answers, rows_a = _classify(networks, facts_a, signal_a, "A", notes) if networks else ([], [])
    if case is not None and not Path(b).exists():
        with Case.open(case, read_only=True) as opened:
            twins = model_twins(opened).get(b, {})
            devices = {}  # B's fingerprints and those of its model twins: no other device's are needed
            for name in (b, *twins):
                devices |= enrolled_fingerprints(opened, name)
        if b not in devices:
            raise CaseError(f"{b!r} is neither a file nor a device enrolled in {case}")
        # a video gets more frames while undecided; one that does not match as a whole is searched
        # frame by frame (stabilised video)
        found = match_video(Path(a), facts_a, signal_a, {b: devices[b]}, {}, options.threshold, options.signal)[0]
        found = _twin_checked(found, signal_a, twins, devices, options)
        sha_b = None
        verdict = fuse([found, *rows_a], [b], device_models)
    else:
        facts_b, signal_b = _signal_or_error(Path(b), options, keep_pixels=bool(networks))
        sha_b = facts_b.medium.sha256
        if networks:
            answers += _classify(networks, facts_b, signal_b, "B", notes)[0]
        found = _against_file((Path(a), Path(b)), (facts_a, facts_b), (signal_a, signal_b), options)
        same = None if found.decision == Decision.INCONCLUSIVE else found.decision == Decision.MATCH
        verdict = fuse_pair(same, _device_answer(answers, "A"), _device_answer(answers, "B"))
    return Verification(
        str(a), str(b), found, options.threshold, facts_a.medium.sha256, sha_b, verdict, answers, notes,
        medium_a=facts_a.store_fields(), cnn_rows_a=rows_a,
    )  # fmt: skip
