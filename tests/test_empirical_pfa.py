"""A decision's p_fa checked against the empirical tail of the case's wrong pairs, not only the Gaussian model."""

from __future__ import annotations

import pytest

from sensorprint.prnu.evaluative import empirical_false_alarm
from sensorprint.results import Decision, Match, Method, PrnuEvidence
from sensorprint.workflow.review import empirical_rule

WRONG = [-0.1 * i for i in range(354)]  # 354 wrong pairs, log10 p_fa from 0 down to -35.3


def test_the_empirical_bound_rules_where_the_wrong_pairs_cannot_show_the_gaussian_figure():
    checked = empirical_false_alarm(-15.05, WRONG)
    assert (checked.k, checked.n) == (203, 354) and checked.rule == "empirical"
    far = empirical_false_alarm(-40.0, WRONG)
    assert far.k == 0 and far.upper == pytest.approx(1.645**2 / (354 + 1.645**2), rel=1e-3)  # about 2.7/n
    assert far.log10_p_fa == pytest.approx(-2.1, abs=0.05) and "0 of 354 wrong pairs" in far.text()
    assert empirical_false_alarm(-40.0, []) is None
    # a Gaussian p_fa larger than the empirical bound rules itself
    assert empirical_false_alarm(-0.5, [-0.01] * 1000).rule == "gaussian"


def _match(log10_p_fa: float) -> Match:
    return Match(Method.PRNU, "A", 100.0, Decision.MATCH, evidence=PrnuEvidence(log10_p_fa=log10_p_fa))


def test_a_match_that_a_wrong_pair_reached_is_inconclusive():
    (reached,) = empirical_rule([_match(-15.0)], WRONG)
    assert reached.decision == Decision.INCONCLUSIVE and "empirical rules" in reached.evidence.empirical_p_fa
    (beyond,) = empirical_rule([_match(-40.0)], WRONG)
    assert beyond.decision == Decision.MATCH and "0 of 354" in beyond.evidence.empirical_p_fa
    assert empirical_rule([_match(-15.0)], [])[0].decision == Decision.MATCH  # not validated: as scanned


def test_the_predicted_true_pce_falls_with_the_jpeg_quality():
    import numpy as np

    from sensorprint.prnu import PreparedFingerprint
    from sensorprint.prnu.decision import FingerprintStrength, Query, jpeg_factor, predicted_true_pce

    rng = np.random.default_rng(1)
    residual = rng.standard_normal((64, 64)).astype(np.float32)
    gray = rng.uniform(60, 200, (64, 64)).astype(np.float32)
    fingerprint = PreparedFingerprint(rng.standard_normal((64, 64)).astype(np.float32) * 0.01)
    strength = FingerprintStrength(10, 0.5)
    unknown = predicted_true_pce(Query(residual, gray), fingerprint, strength)
    at_95 = predicted_true_pce(Query(residual, gray, jpeg_quality=95), fingerprint, strength)
    at_75 = predicted_true_pce(Query(residual, gray, jpeg_quality=75), fingerprint, strength)
    assert at_95 / unknown == pytest.approx(jpeg_factor(95)) and at_75 / at_95 == pytest.approx(10**-0.6)
    assert jpeg_factor(None) == 1.0 == jpeg_factor(100)
