"""Pure functions of sensorprint.learn inference and calibration (fast, no training)."""

from __future__ import annotations

import numpy as np
import pytest

from sensorprint.learn.inference import UNKNOWN, combine_unit_logits, softmax
from sensorprint.learn.training import calibrate_threshold


def test_combine_mean_probability_votes_and_evidence():
    classes = ["a", "b", "c"]
    logits = np.array([[4.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 5.0, 0.0]], np.float32)
    prediction = combine_unit_logits(logits, classes, threshold=2.0, unit="patch")
    expected = softmax(logits).mean(axis=0)
    assert prediction.top_label == "a" and prediction.label == "a"
    assert prediction.votes == {"a": 2, "b": 1, "c": 0} and prediction.vote_label == "a"
    assert prediction.score == pytest.approx(expected[0], rel=1e-6)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction.evidence == pytest.approx((4 + 3 + 0) / 3)
    assert prediction.n_units == 3 and prediction.unit == "patch"
    # Evidence below the threshold: the same top class, but the answer is unknown.
    rejected = combine_unit_logits(logits, classes, threshold=2.5, unit="patch")
    assert rejected.label == UNKNOWN and rejected.top_label == "a"


def test_combine_without_units_gives_no_label():
    prediction = combine_unit_logits(np.zeros((0, 2), np.float32), ["a", "b"], 1.0, "frame")
    assert prediction.label is None and prediction.n_units == 0 and prediction.vote_label is None
    assert prediction.to_dict()["probabilities"] == {"a": 0.0, "b": 0.0}


def test_calibrated_threshold_keeps_about_95_percent_of_enrolled_files():
    rng = np.random.default_rng(0)
    # Over many small validation sets (8 held-out files), a new enrolled file passes ~95% of the
    # time (the plain empirical 5th percentile of 8 scores passes only ~86%).
    pass_rates = []
    for _ in range(400):
        validation = rng.normal(6.0, 1.0, 8)
        threshold = calibrate_threshold(validation, 0.05)
        assert threshold <= np.quantile(validation, 0.05)
        pass_rates.append(np.mean(rng.normal(6.0, 1.0, 200) >= threshold))
    assert 0.93 < np.mean(pass_rates) < 0.98
    assert calibrate_threshold([3.0], 0.05) == 2.0
    assert calibrate_threshold([], 0.05) == float("-inf")


def test_student_t_quantile_matches_tables():
    from sensorprint.learn.training import _student_t_quantile

    # One-sided 5% points of Student's t (standard tables).
    for dof, value in ((1, -6.314), (2, -2.920), (3, -2.353), (5, -2.015), (10, -1.812), (30, -1.697)):
        assert _student_t_quantile(0.05, dof) == pytest.approx(value, abs=2e-3)
