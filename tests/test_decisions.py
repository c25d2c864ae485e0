"""Decisions an examiner can defend: thresholds that count the search, inconclusive answers, checked references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD, false_alarm_probability
from sensorprint.prnu.decision import ONE_MEDIUM, FingerprintStrength, decide, search_threshold
from sensorprint.results import Decision, Match, fuse, prnu_ranking
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan


def test_the_threshold_grows_with_the_positions_searched():
    assert search_threshold(60.0, 1) == 60.0
    wide = search_threshold(60.0, 1_000_000)
    assert 85 < wide < 95  # a million positions: the PCE 60 at one position is worth about 89
    # same false-alarm probability over N positions as PCE 60 at one
    p_one = false_alarm_probability(60.0, 1)
    assert false_alarm_probability(wide, 1_000_000) == pytest.approx(p_one, rel=1e-3)
    assert search_threshold(60.0, 10) > search_threshold(60.0, 2) > 60.0


def test_three_answers():
    strong, weak = FingerprintStrength(10, 0.2), FingerprintStrength(1, 0.0)
    assert decide(70.0, 60.0, 1, strong) == Decision.MATCH
    assert decide(70.0, 60.0, 1_000_000, strong) == Decision.NO_MATCH  # a searched peak must reach ~89
    assert decide(95.0, 60.0, 1_000_000, strong) == Decision.MATCH
    assert decide(10.0, 60.0, 1, strong) == Decision.NO_MATCH
    # a weak fingerprint (one file) cannot exclude, nor match over a search; at one position it can match
    assert decide(10.0, 60.0, 1, weak) == Decision.INCONCLUSIVE
    assert decide(95.0, 60.0, 1_000_000, weak) == Decision.INCONCLUSIVE
    assert decide(500.0, 60.0, 1, weak) == Decision.MATCH
    assert ONE_MEDIUM.weak and not strong.weak


def _prnu(target, pce, n_positions):
    log_p = math.log10(max(false_alarm_probability(pce, n_positions), 1e-300))
    evidence = {"n_positions": n_positions, "log10_p_fa": log_p}
    return Match("prnu", target, pce, "match", evidence=evidence)


def test_a_wide_search_never_outranks_an_aligned_comparison():
    aligned, searched = _prnu("aligned", 75.0, 1), _prnu("searched", 95.0, 2_000_000)
    assert prnu_ranking([searched, aligned]) == ("aligned", "searched")  # by p_fa, not raw PCE
    verdict = fuse([searched, aligned], ["aligned", "searched"], {})
    assert verdict.prnu == "aligned"


def test_inconclusive_leads_the_verdict_when_nothing_matched():
    rows = [Match("prnu", "A", 12.0, "inconclusive"), Match("prnu", "B", 3.0, "no match")]
    assert fuse(rows, ["A", "B"], {}).prnu == "inconclusive"


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    root = tmp_path_factory.mktemp("twins")
    a, b = make_cameras(n_models=1, units_per_model=2, seed=21, width=640, height=480)
    refs = root / "refs"
    for i in range(6):
        a.save_jpeg(refs / f"a_flat{i}.jpg", flat=True, seed=100 + i)
    stray = b.save_jpeg(refs / "stray_b_flat.jpg", flat=True, seed=200)  # the other unit's file, added by mistake
    evidence = root / "evidence"
    b.save_jpeg(evidence / "b_scene.jpg", seed=300)
    a.save_jpeg(evidence / "a_scene.jpg", seed=301)
    return {"root": root, "refs": refs, "stray": stray, "evidence": evidence, "a": a.name}


def test_a_reference_of_another_camera_is_refused(twins, tmp_path):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, twins["a"], [twins["refs"]], workers=1)
        check = summary.check
        assert [m.path for m in check.misfits] == [str(twins["stray"])]
        assert summary.refused == [str(twins["stray"])]
        fits = {s.path: s.score for s in check.scores}
        assert (
            fits[str(twins["stray"])]
            < DEFAULT_PCE_THRESHOLD
            < min(v for p, v in fits.items() if p != str(twins["stray"]))
        )
        references = case.list_media(role="reference")
        assert str(twins["stray"]) not in {m.path for m in references}  # removed, the fingerprint estimated again
        stored = [m.details.get("reference_fit") for m in references]
        assert all(isinstance(v, float) for v in stored)  # each reference's own score is kept with it
        (fingerprint,) = case.fingerprints()
        assert fingerprint.n_media == 6
        scan(case, [twins["evidence"]], workers=1)
        answers = {r.path.rsplit("/", 1)[-1]: r.best_device for r, _ in file_results(case)}
    assert answers == {"a_scene.jpg": twins["a"], "b_scene.jpg": None}


def test_force_keeps_the_reference_and_flags_it(twins, tmp_path):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, twins["a"], [twins["refs"]], workers=1, force=True)
        assert summary.refused == [] and len(summary.check.misfits) == 1
        flagged = [m for m in case.list_media(role="reference") if m.details.get("reference_flag")]
        assert [m.path for m in flagged] == [str(twins["stray"])]
        (fingerprint,) = case.fingerprints()
        assert fingerprint.n_media == 7


def test_a_single_reference_is_reported_weak(twins, tmp_path):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, twins["a"], [twins["refs"] / "a_flat0.jpg"], workers=1)
    assert summary.check.weak and "1 reference" in summary.check.weak and not summary.check.misfits


def test_reference_fit_is_high_for_the_camera_and_low_for_another():
    from sensorprint.prnu.decision import reference_fit

    rng = np.random.default_rng(0)
    k = rng.normal(0, 0.01, (256, 256)).astype(np.float32)
    level = np.float32(128.0**2)

    def contribution(pattern):
        return (level * pattern + rng.normal(0, 40.0, k.shape)).astype(np.float32)

    others = sum(contribution(k) for _ in range(9))  # nine references of the camera
    energy = np.full(k.shape, level, np.float32)
    for own, expected_high in ((contribution(k), True), (contribution(rng.normal(0, 0.01, k.shape)), False)):
        num, den = others + own, energy * 10
        score = reference_fit(num, den, own, energy, 6_000_000)
        assert (score > 1000) if expected_high else (abs(score) < 300), score


@pytest.mark.parametrize("video", [False, True])
def test_a_report_threshold_keeps_the_built_in_calibration_of_the_query_kind(video):
    """Re-deciding at a report's threshold (no validation in the case) must not drop the built-in calibration.

    The scan said inconclusive because even a true pair was expected below the threshold;
    a report at the same threshold must say so too, not "no match", for images and for
    video aggregates (whose prediction has its own calibration).
    """
    from sensorprint.prnu.decision import DEFAULT_CALIBRATION, DEFAULT_VIDEO_CALIBRATION
    from sensorprint.results import Method, PrnuEvidence
    from sensorprint.workflow.review import decided_again

    calibration = DEFAULT_VIDEO_CALIBRATION if video else DEFAULT_CALIBRATION
    predicted = 1.2 * DEFAULT_PCE_THRESHOLD / calibration.expected(1.0)  # expected 1.2x the threshold: decisive
    weak = 0.5 * DEFAULT_PCE_THRESHOLD / calibration.expected(1.0)  # expected half the threshold: cannot exclude
    rows = []
    for name, prediction in (("strong", predicted), ("weak", weak)):
        evidence = PrnuEvidence(
            n_positions=1,
            threshold_at_search=DEFAULT_PCE_THRESHOLD,
            predicted_pce=prediction,
            frames_used=5 if video else None,
        )
        decision = Decision.NO_MATCH if name == "strong" else Decision.INCONCLUSIVE
        rows.append(Match(Method.PRNU, name, 3.0, decision, evidence=evidence))
    again, changed = decided_again(rows, DEFAULT_PCE_THRESHOLD, None)
    assert {m.target: m.decision for m in again} == {"strong": Decision.NO_MATCH, "weak": Decision.INCONCLUSIVE}
    assert changed == {}
