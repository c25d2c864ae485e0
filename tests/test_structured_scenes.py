"""Fingerprints from a few strongly structured photos must not match another camera's photo of the same scene."""

from __future__ import annotations

from pathlib import Path

from sensorprint.results import Decision
from sensorprint.simulate import make_cameras, scene
from sensorprint.simulate.scenes import STRUCTURED_KINDS
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan


def test_structured_scenes_shot_by_several_cameras_give_no_wrong_match(tmp_path):
    width, height = 512, 384
    cameras = make_cameras(n_models=2, units_per_model=1, seed=8, width=width, height=height)
    for s in range(5):  # the same scenes, shot by every camera
        radiance = scene(STRUCTURED_KINDS[s % 2], width, height, rng=500 + s)
        for camera in cameras:
            folder = tmp_path / ("refs" if s < 2 else "evidence") / camera.name
            crop = (8, 8, width - 48, height - 40) if s == 4 else None  # a crop search
            camera.save_jpeg(folder / f"{s}.jpg", scene=radiance, seed=s, crop=crop)
    with Case.create(tmp_path / "case") as case:
        for n, camera in enumerate(cameras, start=1):  # one and two references
            enroll(case, camera.name, sorted((tmp_path / "refs" / camera.name).iterdir())[:n], workers=1)
        scan(case, [tmp_path / "evidence"], workers=1)
        results = [r for r, _ in file_results(case)]
    assert len(results) == 6
    for result in results:
        truth = Path(result.path).parent.name
        for device, m in result.prnu().items():
            if device != truth:
                assert m.decision != Decision.MATCH, (result.path, device, m.score)
        # a fingerprint of one or two scene photos cannot exclude: never "no match" for the true camera
        assert result.prnu()[truth].decision != Decision.NO_MATCH, (result.path, result.prnu()[truth])
