"""A phone is several cameras: one fingerprint per module, the module named, a module without references inconclusive."""

from __future__ import annotations

import pytest

from sensorprint.results import Decision
from sensorprint.simulate import make_phone
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan
from sensorprint.workflow.enroll import enroll_by_module
from sensorprint.workflow.modules import module_device


@pytest.fixture(scope="module")
def phone(tmp_path_factory):
    root = tmp_path_factory.mktemp("phone")
    modules = make_phone("SimPhone", 3, width=512, height=384, seed=4)
    for camera in modules:
        for i in range(4):
            camera.save_jpeg(root / "refs" / f"{camera.model.name}_{i}.jpg", flat=True, seed=i)
        camera.save_jpeg(root / "evidence" / f"{camera.model.name}_scene.jpg", seed=3)
    return root, modules


def _device(camera) -> str:
    return module_device("SimPhone", camera.model.lens_model)


def test_each_module_is_enrolled_and_matched_as_a_sensor_of_its_own(phone, tmp_path):
    root, modules = phone
    with Case.create(tmp_path / "case") as case:
        summaries = enroll_by_module(case, "SimPhone", [root / "refs"], workers=1)
        assert sorted(s.device for s in summaries) == sorted(_device(c) for c in modules)
        assert all(s.added == 4 and not s.refused for s in summaries)
        scan(case, [root / "evidence"], workers=1)
        results = {r.path: r for r, _ in file_results(case)}
    for camera in modules:
        result = next(r for p, r in results.items() if camera.model.name in p)
        assert result.verdict.prnu == _device(camera)  # the module that made it, by name
        prnu = result.prnu()
        assert prnu[_device(camera)].decision == Decision.MATCH
        assert all(m.decision != Decision.MATCH for d, m in prnu.items() if d != _device(camera))


def test_a_module_without_references_is_inconclusive_not_no_match(phone, tmp_path):
    root, modules = phone
    wide, ultra, front = modules
    with Case.create(tmp_path / "case") as case:
        for camera in (wide, ultra):
            refs = [root / "refs" / f"{camera.model.name}_{i}.jpg" for i in range(4)]
            enroll(case, _device(camera), refs, workers=1)
        scan(case, [root / "evidence"], workers=1)
        results = {r.path: r for r, _ in file_results(case)}
    from_front = next(r for p, r in results.items() if front.model.name in p)
    for device, m in from_front.prnu().items():
        assert m.decision == Decision.INCONCLUSIVE, (device, m)
        assert m.evidence.unreferenced_module == front.model.lens_model
    from_wide = next(r for p, r in results.items() if wide.model.name in p)
    assert from_wide.prnu()[_device(wide)].decision == Decision.MATCH
    assert from_wide.prnu()[_device(ultra)].evidence.unreferenced_module is None  # its module has references


def test_an_enrollment_of_several_modules_under_one_name_is_warned_about(phone, tmp_path):
    root, modules = phone
    from sensorprint.cli.text import enroll_lines

    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, "SimPhone", [root / "refs"], workers=1, force=True)
    assert len(summary.modules) == 3
    assert any("--by-module" in line for line in enroll_lines(summary))
