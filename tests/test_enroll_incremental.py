"""Enrolling in two steps gives the same fingerprint as enrolling everything at once."""

from __future__ import annotations

import numpy as np

from sensorprint.prnu import FingerprintAccumulator
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll


def test_accumulator_state_round_trip():
    rng = np.random.default_rng(0)
    accumulator = FingerprintAccumulator((32, 48))
    for _ in range(3):
        accumulator.add(rng.uniform(50, 200, (32, 48, 3)).astype(np.float32))
    again = FingerprintAccumulator.from_state(accumulator.state())
    assert again.n_media == 3
    np.testing.assert_array_equal(again.result().k, accumulator.result().k)


def test_enrolling_more_media_later_refines_the_same_fingerprint(tmp_path):
    camera = make_cameras(n_models=1, units_per_model=1, width=320, height=240, seed=5)[0]
    flats = [camera.save_jpeg(tmp_path / "refs" / f"flat{i}.jpg", flat=True, seed=i) for i in range(6)]
    with Case.create(tmp_path / "stepwise") as case:
        enroll(case, "cam", flats[:3], workers=1)
        summary = enroll(case, "cam", flats, workers=1)  # the first three are not read again
        assert (summary.added, summary.already) == (3, 3)
        (stepwise,) = case.fingerprints()
        k_stepwise = np.array(stepwise.load())
    with Case.create(tmp_path / "at_once") as case:
        enroll(case, "cam", flats, workers=1)
        (at_once,) = case.fingerprints()
        k_at_once = np.array(at_once.load())
    assert stepwise.n_media == at_once.n_media == 6
    # the same sums in another order: equal up to float32 rounding
    assert np.corrcoef(k_stepwise.ravel(), k_at_once.ravel())[0, 1] > 0.9999
