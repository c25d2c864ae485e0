"""Measured error rates (`validate`) and score-based likelihood ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensorprint.prnu.evaluative import ErrorRate, likelihood_ratio
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll
from sensorprint.workflow.validate import SAME, UNRELATED, latest_validation, validate


def test_the_likelihood_ratio_follows_the_scores_and_is_bounded_by_the_data():
    rng = np.random.default_rng(0)
    same = list(rng.uniform(20, 400, 30))
    different = list(np.abs(rng.normal(0, 1, 500)))
    high, low = likelihood_ratio(300.0, same, different), likelihood_ratio(0.3, same, different)
    assert high.log10_lr > 1 > 0 > low.log10_lr
    # far beyond every different-source score: the LR is bounded by the 500 comparisons behind it
    far = likelihood_ratio(1e6, same, different)
    assert far.bounded and far.log10_lr == pytest.approx(math.log10(501), abs=1e-3)
    assert far.thin is None
    thin = likelihood_ratio(300.0, same[:3], different[:20])
    assert "3 same-source" in thin.thin and "20 different-source" in thin.thin
    assert likelihood_ratio(1.0, [], different) is None
    # in the gap between the sets (no data either side), the LR still grows with the score
    gap = [likelihood_ratio(s, same, different).log10_lr for s in (3.0, 6.0, 12.0, 18.0)]
    assert gap == sorted(gap) and gap[-1] > 0


def test_an_error_rate_of_zero_still_has_an_upper_bound():
    low, high = ErrorRate(0, 300).interval()
    assert low == 0.0 and 0.005 < high < 0.02  # 0 of 300: up to about 1.3% at 95%
    assert ErrorRate(0, 0).rate is None


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    validated_root = root
    cameras = make_cameras(n_models=2, units_per_model=1, seed=5, width=512, height=384)
    other = make_cameras(n_models=1, units_per_model=1, seed=99, width=512, height=384)[0]
    for i in range(5):
        other.save_jpeg(root / "unrelated" / f"u{i}.jpg", seed=50 + i)
    (root / "unrelated" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with Case.create(root / "case") as case:
        for camera in cameras:
            for i in range(5):
                camera.save_jpeg(root / camera.name / f"flat{i}.jpg", flat=True, seed=i)
            enroll(case, camera.name, [root / camera.name], workers=1)
        found = validate(case, [root / "unrelated"], workers=1)
        again = latest_validation(case)
    return {"found": found, "again": again, "devices": [c.name for c in cameras], "root": validated_root}


def test_validate_measures_true_matches_and_false_alarms_per_device(validated):
    found = validated["found"]
    assert {r.device for r in found.devices} == set(validated["devices"])
    for rates in found.devices:
        assert rates.true_match.n == 5 and rates.true_match.k == 5  # every held-out flat found
        assert rates.false_alarm.n == 5 + 5  # the other device's 5 references and 5 unrelated files
        assert rates.false_alarm.k == 0
    same = [s for s in found.scores if s.origin == SAME]
    assert min(s.pce for s in same) > 60 and all(s.n_positions <= 8 for s in same)
    assert max(s.pce for s in found.scores if s.origin != SAME) < 60
    assert len([s for s in found.scores if s.origin == UNRELATED]) == 10
    assert len(found.errors) == 1 and "broken.jpg" in found.errors[0] and "\n" not in found.errors[0]


def test_the_validation_is_stored_with_its_run(validated):
    found, again = validated["found"], validated["again"]
    assert again.run_id == found.run_id
    assert again.scores == found.scores and again.devices == found.devices


def test_the_report_gives_the_measured_rates_and_each_decision_its_likelihood_ratio(tmp_path):
    from sensorprint.report import report_data
    from sensorprint.workflow import scan

    cameras = make_cameras(n_models=2, units_per_model=1, seed=7, width=512, height=384)
    with Case.create(tmp_path / "case") as case:
        for camera in cameras:
            for i in range(4):
                camera.save_jpeg(tmp_path / camera.name / f"flat{i}.jpg", flat=True, seed=i)
            camera.save_jpeg(tmp_path / "evidence" / f"{camera.name}.jpg", seed=40)
            enroll(case, camera.name, [tmp_path / camera.name], workers=1)
        scan(case, [tmp_path / "evidence"], workers=1)
        before = report_data(case)
        validate(case, workers=1)
        after = report_data(case)
    assert any("not measured" in line for line in before["limitations"])
    assert all(e["likelihood_ratio"] is None for r in before["records"] for e in r["devices"].values())
    measured = [line for line in after["limitations"] if "Measured on this case" in line]
    assert len(measured) == 2 and all("4/4" in line for line in measured)
    for record in after["records"]:
        for device, entry in record["devices"].items():
            lr = entry["likelihood_ratio"]
            assert lr["n_same"] == 8 and lr["n_different"] == 8 and lr["thin"]
            # a match supports the same source, a score among the wrong pairs' the contrary
            assert (lr["log10"] > 0) == (entry["decision"] == "match"), (device, record["path"], lr)
    assert any(e["decision"] == "match" for r in after["records"] for e in r["devices"].values())


def test_the_validate_command_prints_the_rates_and_stores_a_run(validated):
    from typer.testing import CliRunner

    from sensorprint.cli import app

    root = validated["root"]
    result = CliRunner().invoke(app, ["validate", str(root / "case"), str(root / "unrelated")])
    assert result.exit_code == 0, result.output
    assert "true matches 5/5 held-out references" in result.output
    assert "false alarms 0/10 media of other sources" in result.output and "broken.jpg" in result.output
    with Case.open(root / "case", read_only=True) as case:
        assert latest_validation(case).run_id > validated["found"].run_id
    missing = CliRunner().invoke(app, ["validate", str(root / "case"), str(root / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output and "Traceback" not in missing.output


def test_a_reference_changed_since_enrollment_is_not_scored(tmp_path):
    cameras = make_cameras(n_models=2, units_per_model=1, seed=12, width=320, height=256)
    with Case.create(tmp_path / "case") as case:
        for camera in cameras:
            for i in range(3):
                camera.save_jpeg(tmp_path / camera.name / f"flat{i}.jpg", flat=True, seed=i)
            enroll(case, camera.name, [tmp_path / camera.name], workers=1)
        changed = tmp_path / cameras[0].name / "flat0.jpg"
        cameras[1].save_jpeg(changed, flat=True, seed=9)  # the file was replaced after enrollment
        found = validate(case, workers=1)
    assert len(found.errors) == 1 and "changed since it was enrolled" in found.errors[0]
    assert all(s.file != str(changed) for s in found.scores)
