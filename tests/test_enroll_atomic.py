"""Enrollment loses nothing on SIGKILL: reference files, their sums and the fingerprint are committed together.

A child process enrolls in parts of two files (workers=1) and kills itself with SIGKILL
at a chosen step of the store's commit of its second part; the same enrollment is then
run again and must give what one uninterrupted enrollment gives.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sensorprint.cli.text import enroll_lines
from sensorprint.simulate import make_cameras
from sensorprint.store import Case, schema
from sensorprint.workflow import enroll
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.signals import enrollment_part

SRC = str(Path(__file__).resolve().parents[1] / "src")
N_GOOD = 6

_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from sensorprint.store import Case
    from sensorprint.store import case as case_module
    from sensorprint.workflow import enroll

    root, where, refs = sys.argv[1], sys.argv[2], [Path(p) for p in sys.argv[3:]]
    Store = case_module.Case
    calls = {"n": 0}

    def second_call():
        calls["n"] += 1
        return calls["n"] == 2

    if where == "sums_written":  # the second part's sums are on disk, its transaction has not begun
        stage_sums = Store._stage_sums
        def staged(self, *args):
            result = stage_sums(self, *args)
            if second_call():
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        Store._stage_sums = staged
    elif where == "before_commit":  # arrays renamed and rows written, COMMIT not reached
        audit_in = Store._audit_in
        def audit(conn, action, details, run_id):
            audit_in(conn, action, details, run_id)
            if action == "enrollment committed" and second_call():
                os.kill(os.getpid(), signal.SIGKILL)
        Store._audit_in = staticmethod(audit)
    elif where == "after_commit":  # the second part committed, the third not begun
        commit = Store.commit_enrollment
        def committed(self, *args, **kwargs):
            records = commit(self, *args, **kwargs)
            if second_call():
                os.kill(os.getpid(), signal.SIGKILL)
            return records
        Store.commit_enrollment = committed
    with Case.open(root) as case:
        enroll(case, "cam", refs, workers=1, part_size=2)
    """
)


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> list[Path]:
    """Six flat JPEGs of one simulated camera and one unreadable file among them (sorted order: bad one third)."""
    folder = tmp_path_factory.mktemp("refs")
    camera = make_cameras(n_models=1, units_per_model=1, width=320, height=240, seed=5)[0]
    good = [camera.save_jpeg(folder / f"flat{i}.jpg", flat=True, seed=i) for i in range(N_GOOD)]
    bad = folder / "flat1b.jpg"
    bad.write_bytes(b"not a JPEG")
    return sorted([*good, bad])


@pytest.fixture(scope="module")
def one_shot(references, tmp_path_factory):
    """K, quality and n_media of an uninterrupted enrollment of the same files in a fresh case."""
    with Case.create(tmp_path_factory.mktemp("one") / "case") as case:
        enroll(case, "cam", references, workers=1)
        (record,) = case.fingerprints()
        return np.array(record.load()), record.quality, record.n_media


def _assert_consistent(case: Case) -> None:
    """The invariant: every readable reference file is in the stored sums and behind the fingerprint."""
    device = case.get_device("cam")
    ok = case.list_media(role="reference", device_id=device.id, status="ok")
    sums = case.load_sums(device.id, (240, 320))
    records = case.fingerprints(device.id)
    if not ok:
        assert sums is None and records == []
        return
    (record,) = records
    assert int(sums["n_media"]) == record.n_media == len(ok)
    assert sorted(record.media_hashes) == sorted(m.sha256 for m in ok)
    assert case.verify_arrays() == []


@pytest.mark.parametrize("where", ["sums_written", "before_commit", "after_commit"])
def test_enrollment_killed_mid_commit_resumes_to_the_same_fingerprint(tmp_path, references, one_shot, where):
    root = tmp_path / "case"
    Case.create(root).close()
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.run([sys.executable, str(script), str(root), where, *map(str, references)], env=env, timeout=300)
    assert child.returncode == -signal.SIGKILL, "the child was not killed at the chosen step"
    with Case.open(root) as case:
        _assert_consistent(case)
        committed = len(case.list_media(role="reference"))
        # parts of two files: the first (or the first two) committed whole, nothing of the killed one
        assert committed == (4 if where == "after_commit" else 2)
        if where != "after_commit":
            assert case.unreferenced_arrays() != []  # what the killed commit wrote is left unnamed
        summary = enroll(case, "cam", references, workers=1)
        assert (summary.added + len(summary.errors), summary.already) == (len(references) - committed, committed)
        _assert_consistent(case)
        paths = Counter(m.path for m in case.list_media(role="reference"))
        assert paths == Counter(str(p.resolve()) for p in references)  # every file exactly once
        (record,) = case.fingerprints()
        k_one, quality_one, n_one = one_shot
        assert record.n_media == n_one == N_GOOD
        k = np.array(record.load())
        np.testing.assert_allclose(k, k_one, rtol=0, atol=1e-5 * float(np.abs(k_one).max()))
        assert record.quality == pytest.approx(quality_one, abs=1e-5)
        # renamed but uncommitted arrays are gone; only a temporary still being young may remain, and none counts
        left = case.unreferenced_arrays()
        assert all(p.name.startswith(".tmp-") for p in left)
        assert case.remove_unreferenced_arrays(temporary_older_than_s=0) == left
        assert case.unreferenced_arrays() == [] and case.verify_arrays() == []
        assert [r.status for r in case.runs()] == ["running", "completed"]  # the killed run never finished


def test_parts_commit_as_they_finish_and_give_the_one_shot_fingerprint(tmp_path, references, one_shot):
    with Case.create(tmp_path / "case") as case:
        summary = enroll(case, "cam", references, workers=1, part_size=2)
        commits = [a for a in case.audit_log() if a.action == "enrollment committed"]
        assert [c.details["media"] for c in commits] == [2, 2, 2, 1]
        (record,) = case.fingerprints()
        np.testing.assert_allclose(np.array(record.load()), one_shot[0], rtol=0, atol=1e-5 * np.abs(one_shot[0]).max())
        assert (summary.added, summary.already, len(summary.errors)) == (N_GOOD, 0, 1)
        lines = enroll_lines(summary)
        assert lines[0] == f"cam: {N_GOOD} reference files added, 0 already enrolled, 1 unreadable"
        assert lines[1] == f"  fingerprint 320x240 from {N_GOOD} media ({N_GOOD} images or frames), quality " + (
            f"{record.quality:.3g}"
        )
        assert lines[2].startswith("  error: ") and "flat1b.jpg" in lines[2]
        assert case.unreferenced_arrays() == []
        (sums_file,) = [p for p in case.arrays_dir.iterdir() if p.name.startswith("sums-")]
        assert sums_file.name.startswith("sums-d1-240x320-")  # the store names it; no file of the old layout
        assert not any(p.name.startswith("device") for p in case.arrays_dir.iterdir())


def test_a_case_with_sums_of_the_old_layout_is_upgraded_and_enrolls_on(tmp_path, references, monkeypatch):
    """Before schema 2 the workflow kept the sums in arrays/device<id>_sums_<W>x<H>.npz; they still count."""
    good = [p for p in references if p.name != "flat1b.jpg"]
    options = SignalOptions(frame_strategy="even", n_frames=30)
    old = tmp_path / "old"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        with Case.create(old) as case:  # what the enrollment of schema 1 left after three files
            device = case.add_device("cam")
            facts_list, accumulators = enrollment_part([str(p.resolve()) for p in good[:3]], options)
            for facts in facts_list:
                case.add_medium(role="reference", device_id=device.id, **facts.store_fields())
            (accumulator,) = accumulators.values()
            np.savez(case.arrays_dir / f"device{device.id}_sums_320x240.npz", **accumulator.state())
            fp = accumulator.result()
            hashes = sorted(f.medium.sha256 for f in facts_list)
            case.save_fingerprint(
                device.id, fp.k, n_media=3, quality=fp.quality, media_hashes=hashes, source="image", parameters={}
            )
            assert case.schema_version == 1
    with Case.open(old) as case:
        assert case.schema_version == schema.current_version() >= 2
        assert int(case.load_sums(1, (240, 320))["n_media"]) == 3  # read from the old file
        summary = enroll(case, "cam", good, workers=1)
        assert (summary.added, summary.already) == (3, 3)
        (upgraded,) = case.fingerprints()
        k_upgraded = np.array(upgraded.load())
        assert not (case.arrays_dir / "device1_sums_320x240.npz").exists()  # its sums are in the new ones
        assert int(case.load_sums(1, (240, 320))["n_media"]) == upgraded.n_media == 6
        conn = sqlite3.connect(old / "case.sqlite")
        try:
            assert conn.execute("SELECT COUNT(*) FROM fingerprint_sums").fetchone() == (1,)
        finally:
            conn.close()
    with Case.create(tmp_path / "new") as case:  # the same two steps in a case of schema 2
        enroll(case, "cam", good[:3], workers=1)
        enroll(case, "cam", good, workers=1)
        (stepwise,) = case.fingerprints()
        np.testing.assert_array_equal(np.array(stepwise.load()), k_upgraded)
