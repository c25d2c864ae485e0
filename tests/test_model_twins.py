"""Units of one model whose fingerprints correlate: a match to one must be separated from the other."""

from __future__ import annotations

from pathlib import Path

from sensorprint.prnu.decision import separated_from_twin
from sensorprint.results import Decision, Match, Method
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan
from sensorprint.workflow.references import model_twins
from sensorprint.workflow.review import twin_rule
from sensorprint.workflow.verify import verify


def test_separation_is_a_margin_on_the_square_root_of_the_pce():
    assert separated_from_twin(601.2, 25.4, False)  # √601 − √25 ≈ 19.5
    assert not separated_from_twin(100.0, 50.0, False)  # 10 − 7.1 < 3
    assert not separated_from_twin(1000.0, 70.0, True)  # the twin matched too
    assert separated_from_twin(81.0, -4.0, False)  # a negative peak is no correlation


def _prnu(target: str, score: float, decision: str) -> Match:
    return Match(Method.PRNU, target, score, Decision(decision))


def test_the_twin_rule_names_the_twin_and_leaves_separated_matches():
    twins = {"A": {"B": 400.0}, "B": {"A": 400.0}}
    kept = twin_rule([_prnu("A", 600.0, "match"), _prnu("B", 20.0, "inconclusive")], twins)
    assert [m.decision for m in kept] == [Decision.MATCH, Decision.INCONCLUSIVE]
    (a, b) = twin_rule([_prnu("A", 100.0, "match"), _prnu("B", 50.0, "inconclusive")], twins)
    assert a.decision == Decision.INCONCLUSIVE and a.evidence.model_twin.startswith("B: ")
    assert "score 400" in a.evidence.model_twin and "PCE 100.0 here, 50.0 for B" in a.evidence.model_twin
    assert twin_rule([_prnu("A", 100.0, "match")], {})[0].decision == Decision.MATCH  # no twin: unchanged


def test_a_photo_that_matches_both_units_of_a_model_is_inconclusive(tmp_path):
    cameras = make_cameras(n_models=1, units_per_model=2, seed=5, width=512, height=384, shared_random_strength=0.008)
    for camera in cameras:
        for i in range(5):
            camera.save_jpeg(tmp_path / "refs" / camera.name / f"f{i}.jpg", flat=True, seed=i)
        camera.save_jpeg(tmp_path / "evidence" / camera.name / "scene.jpg", seed=50)
    first, second = (c.name for c in cameras)
    with Case.create(tmp_path / "case") as case:
        for camera in cameras:
            summary = enroll(case, camera.name, [tmp_path / "refs" / camera.name], workers=1)
        assert [name for name, _ in summary.check.similar] == [first]  # reported at the second enrollment
        assert set(model_twins(case)) == {first, second}
        scan(case, [tmp_path / "evidence"], workers=1)
        results = {Path(r.path).parent.name: r for r, _ in file_results(case)}
    own = results[first].prnu()[first]
    assert own.score > 60 and results[first].prnu()[second].score > 60  # the shared pattern: both pass alone
    assert own.decision == Decision.INCONCLUSIVE and own.evidence.model_twin.startswith(f"{second}: ")
    assert results[first].best_device is None


def test_verify_against_a_device_with_a_model_twin_passes_the_twin_rule(tmp_path):
    cameras = make_cameras(n_models=1, units_per_model=2, seed=5, width=512, height=384, shared_random_strength=0.008)
    for camera in cameras:
        for i in range(5):
            camera.save_jpeg(tmp_path / "refs" / camera.name / f"f{i}.jpg", flat=True, seed=i)
    first, second = (c.name for c in cameras)
    query = cameras[0].save_jpeg(tmp_path / "evidence" / "scene.jpg", seed=50)
    with Case.create(tmp_path / "case") as case:
        enroll(case, first, [tmp_path / "refs" / first], workers=1)
    alone = verify(query, first, case=tmp_path / "case")
    assert alone.prnu.decision == Decision.MATCH  # no twin enrolled yet: the shared pattern passes alone
    with Case.open(tmp_path / "case") as case:
        enroll(case, second, [tmp_path / "refs" / second], workers=1)
    checked = verify(query, first, case=tmp_path / "case")
    assert checked.prnu.score == alone.prnu.score
    assert checked.prnu.decision == Decision.INCONCLUSIVE
    assert checked.prnu.evidence.model_twin.startswith(f"{second}: ")
