"""A case that can be corrected: identity, notes, a wrong reference or device removed, a device renamed."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from sensorprint.errors import CaseError
from sensorprint.report.records import report_data, report_records
from sensorprint.report.writers import csv_rows
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.store import identity as ident
from sensorprint.workflow import enroll, scan
from sensorprint.workflow.correct import add_note, remove_device, remove_reference, rename_device, set_case
from sensorprint.workflow.listing import file_rows


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("correct")
    cameras = make_cameras(n_models=1, units_per_model=2, width=160, height=120, seed=3)
    flats = {
        c.name: [c.save_jpeg(root / "refs" / c.name / f"f{i}.jpg", flat=True, seed=i) for i in range(3)]
        for c in cameras
    }
    evidence = [cameras[0].save_jpeg(root / "seized" / "a.jpg", seed=50)]
    return {"root": root, "cameras": cameras, "flats": flats, "evidence": evidence}


def _case(world, tmp_path):
    case = Case.create(tmp_path / "case")
    a, b = world["cameras"]
    enroll(case, a.name, world["flats"][a.name], workers=1)
    # a wrong reference: a flat of camera b enrolled as camera a's
    enroll(case, a.name, [world["flats"][b.name][0]], workers=1)
    enroll(case, b.name, world["flats"][b.name][1:], workers=1)
    scan(case, [world["root"] / "seized"], workers=1)
    return case


def test_identity_exhibits_notes_are_stored_and_audited(tmp_path):
    with Case.create(tmp_path / "c") as case:
        set_case(case, {"case_number": "2026-0042", "examiner": "A. Examiner", "organisation": None},
                 exhibits={str(tmp_path / "seized"): "EXH-1"})  # fmt: skip
        set_case(case, {"organisation": '<b>Lab</b> "Ø"'})
        add_note(case, "first note")
        got = ident.identity(case)
        assert (got.case_number, got.examiner, got.organisation) == ("2026-0042", "A. Examiner", '<b>Lab</b> "Ø"')
        assert ident.exhibit_of(got.exhibits, str(tmp_path / "seized" / "x" / "y.jpg")) == "EXH-1"
        assert ident.exhibit_of(got.exhibits, str(tmp_path / "seizedother.jpg")) is None
        assert [n.text for n in got.notes] == ["first note"]
        actions = [e.action for e in case.audit_log()]
        assert actions.count("case identity set") == 3 and "exhibit set" in actions and "note added" in actions
        with pytest.raises(CaseError):
            set_case(case, {"examiner": "x" * 20_000})
        with pytest.raises(sqlite3.IntegrityError):
            case._db.execute("DELETE FROM notes")  # append-only


def test_removing_a_wrong_reference_reestimates_and_marks_results_stale(world, tmp_path):
    a, b = world["cameras"]
    with _case(world, tmp_path) as case:
        device = case.get_device(a.name)
        (before,) = case.fingerprints(device.id)
        assert before.n_media == 4
        assert case.results(method="prnu")
        wrong = str(world["flats"][b.name][0])
        correction = remove_reference(case, a.name, wrong, reason="taken with camera b")
        assert correction.details["results_marked_stale"] >= 1
        (after,) = case.fingerprints(device.id)
        assert after.n_media == 3 and after.array_sha256 != before.array_sha256
        # the same fingerprint as enrolling only the right files
        with Case.create(tmp_path / "clean") as clean:
            enroll(clean, a.name, world["flats"][a.name], workers=1)
            (right,) = clean.fingerprints()
            k_right = np.array(right.load())
        assert np.corrcoef(np.array(after.load()).ravel(), k_right.ravel())[0, 1] > 0.9999
        stale = [r for r in case.results(method="prnu") if r.target == a.name]
        assert stale and all("taken with camera b" in r.evidence.extra["stale"] for r in stale)
        assert case.done_targets(stale[0].medium_id, "prnu") == {b.name}  # a rescan computes a's again
        _stale_results_are_shown_but_not_counted(case, a.name, b.name)
        summary = scan(case, [world["root"] / "seized"], workers=1)
        assert summary.scanned == 1
        assert not [r for r in case.results(method="prnu") if r.evidence.extra.get("stale")]
        (row,) = file_rows(case)
        assert row["stale"] == [] and row["answer"] in ("match", "inconclusive")  # counted again (3 small flats: weak)
        assert "reference removed" in [e.action for e in case.audit_log()]


def _stale_results_are_shown_but_not_counted(case, stale_device: str, other: str) -> None:
    """The file matched the corrected device before: its stale result is shown, and decides nothing."""
    (row,) = file_rows(case)
    assert (row["answer"], row["best_device"], row["stale"]) == ("stale", None, [stale_device])
    (record,) = report_records(case)
    assert record["best_device"] is None and record["matches"] == []
    assert record["devices"][stale_device]["stale"] and "stale" not in record["devices"][other]
    assert f"stale, not counted: {stale_device}" in record["verdict"] and "scan again" in record["verdict"]
    assert report_data(case)["summary"]["matched"] == 0
    rows = [r for r in csv_rows(report_data(case)) if r["device"] == stale_device]
    assert rows and rows[0]["reason"].startswith("STALE, not counted") and not rows[0]["is_best"]


def test_remove_and_rename_devices(world, tmp_path):
    a, b = world["cameras"]
    with _case(world, tmp_path) as case:
        rename_device(case, a.name, "Phone <1>")
        assert case.get_device("Phone <1>") and not case.get_device(a.name)
        assert {r.target for r in case.results(method="prnu")} == {"Phone <1>", b.name}
        with pytest.raises(CaseError):
            rename_device(case, "Phone <1>", b.name)
        files = {f.path for f in case.fingerprints()}
        before = [r for r in case.results(method="prnu") if r.target == b.name]
        correction = remove_device(case, b.name, reason="never seized")
        assert [d.name for d in case.list_devices()] == ["Phone <1>"]
        assert {r.target for r in case.results(method="prnu")} == {"Phone <1>"}
        # nothing is lost: every removed result is in the audit line in full
        (line,) = [e.details for e in case.audit_log() if e.action == "device removed"]
        assert correction.details["results_removed"] == len(before) == len(line["removed_results"]) >= 1
        kept = {r["medium_id"]: r for r in line["removed_results"]}
        for result in before:
            medium = case.get_medium(result.medium_id)
            got = kept[result.medium_id]
            assert (got["path"], got["sha256"]) == (medium.path, medium.sha256)
            assert (got["score"], got["p_fa"], got["decision"]) == (result.score, result.p_fa, str(result.decision))
            assert got["details"] == result.details and got["run_id"] == result.run_id
        assert sum(p.exists() for p in files) == 1
        assert not case.list_media(role="reference", device_id=2)
        with pytest.raises(CaseError, match="no device"):
            remove_device(case, b.name, reason="again")
        actions = [e.action for e in case.audit_log()]
        assert "device removed" in actions and "device renamed" in actions
