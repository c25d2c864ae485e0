"""Use case: the case's answers, file by file — what the report, the demo and the web pages read.

Each evidence file's stored matches become one `FileResult` with the fused verdict
(`sensorprint.results.fuse`). A review may use a stricter PCE threshold than the scan
did: PRNU decisions are then decided again by the PRNU rule (`prnu.decide`), and the
decisions that change are kept beside the new ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sensorprint.prnu import FingerprintStrength, decide
from sensorprint.prnu.decision import Calibration, calibration_for, separated_from_twin
from sensorprint.prnu.evaluative import empirical_false_alarm
from sensorprint.results import Agreement, Decision, FileResult, Match, Method, Verdict, fuse
from sensorprint.store import Case, MediumRecord
from sensorprint.workflow.modules import PhoneModules, phone_modules, phone_of, unreferenced_module
from sensorprint.workflow.references import model_twins


def decided_again(
    matches: Iterable[Match], threshold: float | None, calibration: Calibration | None = None
) -> tuple[list[Match], dict[str, Decision]]:
    """PRNU matches decided at `threshold` (None: as stored); plus {device: decision at scan} where it changed.

    Decisions are made again by the PRNU rule (`prnu.decide`) from the evidence stored with
    each match (positions searched, the fingerprint's strength, the predicted true-pair
    PCE); a comparison that could not be made (a reason is stored) keeps its decision.
    calibration: the case's own (`workflow.validate.calibration`), which tells "no match"
    from "inconclusive" where the scan used the built-in one.
    """
    out, changed = [], {}
    for m in matches:
        decision = _decision_again(m, threshold, calibration)
        if decision is not None and decision != m.decision:
            changed[m.target] = m.decision
            m = replace(m, decision=decision)
        out.append(m)
    return out, changed


def _decision_again(m: Match, threshold: float | None, calibration: Calibration | None) -> Decision | None:
    e = m.evidence
    decidable = m.decision in (Decision.MATCH, Decision.NO_MATCH, Decision.INCONCLUSIVE)
    if m.method != Method.PRNU or m.score is None or e.reason or not decidable:
        return None
    # a video aggregate is the only PRNU result with frames counted; the case's validation
    # calibrates images only (`calibration_for`)
    video = e.frames_used is not None
    case_calibrates = calibration is not None and not video
    expected = calibration_for(video, calibration).expected(e.predicted_pce)
    if threshold is not None:
        return decide(m.score, threshold, e.n_positions or 1, _strength(m), expected)
    if not case_calibrates or expected is None or m.decision == Decision.MATCH or e.threshold_at_search is None:
        return None
    strength = _strength(m)
    if strength is not None and strength.weak:
        return None  # inconclusive whatever is predicted
    # the scan's threshold, with the case's calibration instead of the built-in one
    return Decision.INCONCLUSIVE if expected < e.threshold_at_search else Decision.NO_MATCH


def _strength(m: Match) -> FingerprintStrength | None:
    e = m.evidence
    if e.fingerprint_quality is None:
        return None  # recorded before fingerprints had a strength: decided as strong, as then
    return FingerprintStrength(e.fingerprint_media or 0, e.fingerprint_quality)


def stale_reason(match: Match) -> str | None:
    """Why a PRNU result is stale (its fingerprint was corrected since it was computed), or None.

    A stale result is kept and shown with its figures, but it is not a decision: the
    verdict is fused without it (`file_result`), and the next scan computes it again
    (`Case.done_targets` does not count it as done).
    """
    if match.method != Method.PRNU:
        return None
    reason = match.evidence.extra.get("stale")  # type: ignore[union-attr]
    return str(reason) if reason else None


def file_result(
    medium: MediumRecord,
    matches: Iterable[Match],
    *,
    threshold: float | None,
    device_models: Mapping[str, str | None],
    comparable: set[str],
    calibration: Calibration | None = None,
    phones: Mapping[str, PhoneModules] | None = None,
    twins: Mapping[str, Mapping[str, float]] | None = None,
    wrong_pairs: Sequence[float] | None = None,
) -> tuple[FileResult, dict[str, Decision]]:
    """One file's result from its stored matches; plus the PRNU decisions the threshold or calibration changed.

    Stale PRNU results (`stale_reason`) stay in `matches` but do not count in the verdict.
    phones: the case's phones enrolled by module (`workflow.modules`): a file made by a
    module without references is not excluded by the phone's other modules. twins: devices
    whose fingerprints correlate (`workflow.references.model_twins`): a match to one that is
    not separated from the other is inconclusive (`twin_rule`). wrong_pairs: log₁₀ p_fa of the
    wrong pairs of the case's validation: each p_fa is checked against them (`empirical_rule`).
    """
    matches, changed = decided_again(matches, threshold, calibration)
    matches = [_module_rule(m, medium, phones or {}) for m in matches]
    matches = twin_rule(matches, twins or {})
    matches = empirical_rule(matches, wrong_pairs or ())
    compared = {m.target for m in matches if m.method == Method.PRNU}
    if medium.status == "error":
        verdict, not_compared = Verdict(Agreement.ERROR), ()
    else:
        verdict = fuse([m for m in matches if not stale_reason(m)], comparable, device_models)
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
        media = case.list_media(role="evidence")
        by_medium: dict[int, list[Match]] = {}
        for row in case.results():
            by_medium.setdefault(row.medium_id, []).append(row)  # type: ignore[arg-type]
        context = review_context(case)
    return [file_result(m, by_medium.get(m.id, []), threshold=threshold, **context) for m in media]


def review_context(case: Case) -> dict:
    """What deciding any file's result needs of the case (the keyword arguments of `file_result` after threshold)."""
    from sensorprint.workflow.validate import latest_validation  # validate reads results too

    with case.snapshot():
        validation = latest_validation(case)  # read once: it gives the calibration and the wrong pairs
        return {
            "device_models": {d.name: d.model for d in case.list_devices()},
            "comparable": {f.device_name for f in case.fingerprints()},
            "calibration": case_calibration(validation),
            "phones": phone_modules(reference_metadata(case)),
            "twins": model_twins(case),
            "wrong_pairs": wrong_pair_log10_p_fa(validation),
        }


def reference_metadata(case: Case) -> dict[str, list[Mapping[str, Any]]]:
    """{device: the metadata of each of its readable reference files} (camera modules, JPEG structure)."""
    with case.snapshot():
        return {
            d.name: [m.metadata or {} for m in case.list_media(role="reference", device_id=d.id, status="ok")]
            for d in case.list_devices()
        }


def _module_rule(m: Match, medium: MediumRecord, phones: Mapping[str, PhoneModules]) -> Match:
    """ "No match" from one module of a phone becomes inconclusive for a file made by a module without references."""
    phone = phones.get(phone_of(m.target))
    if m.method != Method.PRNU or m.decision not in (Decision.NO_MATCH, Decision.INCONCLUSIVE) or phone is None:
        return m
    module = unreferenced_module(medium.metadata, phone)
    if module is None:
        return m
    return replace(m, decision=Decision.INCONCLUSIVE).with_evidence(unreferenced_module=module)


def twin_rule(matches: list[Match], twins: Mapping[str, Mapping[str, float]]) -> list[Match]:
    """A PRNU match to a device whose fingerprint correlates with another's stands only when separated from it.

    The file's result against the twin is the one stored beside it (`prnu.decision.
    separated_from_twin`); a match that is not separated becomes inconclusive, with the
    twin, the correlation of the two fingerprints and both PCEs in `model_twin`. A twin the
    file was not compared with (or whose result is stale) leaves the match as it is.
    """
    current = {m.target: m for m in matches if m.method == Method.PRNU and not stale_reason(m) and m.score is not None}
    out = []
    for m in matches:
        if m.method == Method.PRNU and m.decision == Decision.MATCH and m.target in current:
            for twin, score in sorted(twins.get(m.target, {}).items()):
                other = current.get(twin)
                if other is None or separated_from_twin(m.score, other.score, other.decision == Decision.MATCH):
                    continue
                m = replace(m, decision=Decision.INCONCLUSIVE).with_evidence(
                    model_twin=(
                        f"{twin}: its fingerprint correlates with {m.target}'s (score {score:g}, units of one "
                        f"model can share a pattern); PCE {m.score:.1f} here, {other.score:.1f} for {twin} "
                        f"({other.decision}): not separated"
                    )
                )
                break
        out.append(m)
    return out


def empirical_rule(matches: list[Match], wrong_pairs: Sequence[float]) -> list[Match]:
    """Each PRNU comparison's p_fa checked against the empirical tail of the case's wrong pairs.

    The p_fa an examiner can defend is the larger of the Gaussian model's and the empirical
    tail's upper bound (`prnu.evaluative.empirical_false_alarm`); which one ruled is kept in
    `empirical_p_fa`. A match that some wrong pair of the validation reached as far (k > 0)
    contradicts the Gaussian model for this case: it becomes inconclusive.
    """
    if not wrong_pairs:
        return matches
    out = []
    for m in matches:
        log10_p_fa = m.evidence.log10_p_fa if m.method == Method.PRNU else None
        checked = empirical_false_alarm(log10_p_fa, wrong_pairs) if log10_p_fa is not None else None
        if checked is not None:
            decision = m.decision
            if decision == Decision.MATCH and checked.k > 0:
                decision = Decision.INCONCLUSIVE
            m = replace(m, decision=decision).with_evidence(empirical_p_fa=checked.text())
        out.append(m)
    return out


def wrong_pair_log10_p_fa(validation) -> list[float]:
    """log₁₀ p_fa of every different-source comparison of a validation (`workflow.validate.Validation`; None: none)."""
    return sorted(s.log10_p_fa for s in validation.scores if not s.same_source) if validation is not None else []


def case_calibration(validation) -> Calibration | None:
    """The case's own calibration of the predicted true-pair PCE from its validation, or None where there is none."""
    from sensorprint.workflow.validate import calibration  # validate reads results too

    return calibration(validation) if validation is not None else None
