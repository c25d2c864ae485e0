"""Use case: the case's answers, file by file — what the report, the demo and the web pages read.

Each evidence file's stored matches become one `FileResult` with the fused verdict
(`sensorprint.results.fuse`). A review may use a stricter PCE threshold than the scan
did: PRNU decisions are then decided again by the PRNU rule (`prnu.decide`), and the
decisions that change are kept beside the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from sensorprint.prnu import FingerprintStrength, decide
from sensorprint.results import Agreement, Decision, FileResult, Match, Method, Verdict, fuse
from sensorprint.store import Case, MediumRecord


def decided_again(matches: Iterable[Match], threshold: float | None) -> tuple[list[Match], dict[str, Decision]]:
    """PRNU matches decided at `threshold` (None: as stored); plus {device: decision at scan} where it changed.

    Decisions are made again by the PRNU rule (`prnu.decide`) from the evidence stored with
    each match (positions searched, the fingerprint's strength); a comparison that could not
    be made (a reason is stored) keeps its decision.
    """
    out, changed = [], {}
    for m in matches:
        redecide = threshold is not None and m.method == Method.PRNU and m.score is not None
        if (
            redecide
            and m.decision in (Decision.MATCH, Decision.NO_MATCH, Decision.INCONCLUSIVE)
            and not m.evidence.reason
        ):
            decision = decide(m.score, threshold, m.evidence.n_positions or 1, _strength(m))
            if decision != m.decision:
                changed[m.target] = m.decision
                m = replace(m, decision=decision)
        out.append(m)
    return out, changed


def _strength(m: Match) -> FingerprintStrength | None:
    e = m.evidence
    if e.fingerprint_quality is None:
        return None  # recorded before fingerprints had a strength: decided as strong, as then
    return FingerprintStrength(e.fingerprint_media or 0, e.fingerprint_quality)


def file_result(
    medium: MediumRecord,
    matches: Iterable[Match],
    *,
    threshold: float | None,
    device_models: Mapping[str, str | None],
    comparable: set[str],
) -> tuple[FileResult, dict[str, Decision]]:
    """One file's result from its stored matches; plus the PRNU decisions the threshold changed."""
    matches, changed = decided_again(matches, threshold)
    compared = {m.target for m in matches if m.method == Method.PRNU}
    if medium.status == "error":
        verdict, not_compared = Verdict(Agreement.ERROR), ()
    else:
        verdict = fuse(matches, comparable, device_models)
        not_compared = tuple(sorted(comparable - compared))
    result = FileResult(
        path=medium.path,
        sha256=medium.sha256,
        status=medium.status,
        error=medium.error,
        matches=tuple(matches),
        verdict=verdict,
        not_compared=not_compared,
        medium=medium,
    )
    return result, changed


def file_results(case: Case, *, threshold: float | None = None) -> list[tuple[FileResult, dict[str, Decision]]]:
    """Every scanned evidence file's result, in the order the files were first recorded.

    threshold: the PCE at which PRNU decides (None: the decisions stored by the scan).
    Each result comes with {device: decision at scan} for the decisions the threshold changed.
    """
    with case.snapshot():
        device_models = {d.name: d.model for d in case.list_devices()}
        comparable = {f.device_name for f in case.fingerprints()}
        media = case.list_media(role="evidence")
        by_medium: dict[int, list[Match]] = {}
        for row in case.results():
            by_medium.setdefault(row.medium_id, []).append(row)  # type: ignore[arg-type]
    return [
        file_result(m, by_medium.get(m.id, []), threshold=threshold, device_models=device_models, comparable=comparable)
        for m in media
    ]
