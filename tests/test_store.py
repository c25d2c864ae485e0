"""The case store: round trip, durability under SIGKILL, migrations, misuse."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from sensorprint.errors import CaseError
from sensorprint.store import Case, Match, schema

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _medium(path: str, sha: str = "ab" * 32, **extra):
    fields = dict(
        path=path,
        sha256=sha,
        size_bytes=1234,
        mtime_ns=1_700_000_000_000_000_000,
        kind="image",
        width=640,
        height=480,
        orientation=1,
        metadata={"Make": "Nikon", "Model": "D70"},
    )
    fields.update(extra)
    return fields


def _prnu_rows(targets, pce=812.0):
    return [
        Match(
            "prnu",
            t,
            pce,
            "match" if pce >= 60 else "no match",
            ncc=0.02,
            p_fa=1e-40,
            transform={"rotation": 0, "scale": 1.0},
        )
        for t in targets
    ]


# ---------------------------------------------------------------------- round trip


def test_round_trip_of_every_table(tmp_path):
    root = tmp_path / "case"
    k = np.random.default_rng(0).standard_normal((48, 64)).astype(np.float32)
    with Case.create(root) as case:
        run = case.start_run("enroll", {"device": "D1", "sigma": np.float32(3.0), "paths": (Path("/a"),)})
        d1 = case.add_device("D1", model="Nikon D70", notes="seized 2026-11-01")
        d2 = case.add_device("D2")
        ref = case.add_medium(role="reference", device_id=d1.id, run_id=run, **_medium("/ref/1.jpg"))
        fp = case.save_fingerprint(
            d1.id,
            k.astype(np.float64),
            n_media=1,
            quality=0.73,
            media_hashes=["ab" * 32],
            source="image",
            parameters={"wiener": True},
            run_id=run,
        )
        case.set_hint(d1.id, "1920x1080", {"scale": 0.5, "offset": [12, 40]})
        model_file = case.models_dir / "device-1.onnx"
        model_file.write_bytes(b"net")
        model = case.save_model("device", model_file, ["D1", "D2"], {"validation_accuracy": 0.9, "seed": 1})
        medium_id = case.record_results(
            _medium("/ev/q.jpg", details={"frames": [0, 5]}),
            _prnu_rows(["D1"])
            + [Match("prnu", "D2", 3.5, "no match", p_fa=0.3)]
            + [
                Match("cnn", "D1", 0.93, "match", evidence={"model_id": model.id}),
                Match("cnn", "D2", 0.07, "no match", evidence={"model_id": model.id}),
            ],
            run_id=run,
        )
        case.finish_run(run, "ok", {"files": 1})

    with Case.open(root) as case:
        assert [d.name for d in case.list_devices()] == ["D1", "D2"]
        assert case.get_device("D1").model == "Nikon D70"
        assert case.get_device("nope") is None
        assert case.get_device_by_id(d2.id).name == "D2"
        refs = case.list_media(role="reference", device_id=d1.id)
        assert [m.id for m in refs] == [ref] and refs[0].metadata == {"Make": "Nikon", "Model": "D70"}
        evidence = case.find_medium("evidence", "/ev/q.jpg")
        assert evidence.id == medium_id and evidence.device_id is None and evidence.details == {"frames": [0, 5]}
        assert case.find_medium("reference", "/ev/q.jpg") is None
        (record,) = case.fingerprints(d1.id)
        assert record == fp and record.shape == (48, 64) and record.quality == pytest.approx(0.73)
        loaded = record.load()
        assert isinstance(loaded, np.memmap) and loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, k)
        assert case.get_hint(d1.id, "1920x1080") == {"scale": 0.5, "offset": [12, 40]}
        assert case.get_hint(d1.id, "1280x720") is None
        results = case.results(medium_id)
        assert [(r.method, r.target, r.decision) for r in results] == [
            ("cnn", "D1", "match"),
            ("cnn", "D2", "no match"),
            ("prnu", "D1", "match"),
            ("prnu", "D2", "no match"),
        ]
        assert results[2].score == 812.0 and results[2].transform == {"rotation": 0, "scale": 1.0}
        assert case.done_targets(medium_id, "prnu") == {"D1", "D2"}
        assert case.done_targets(medium_id, "cnn", "model") == set()
        latest = case.latest_model("device")
        assert latest.path == model_file and latest.classes == ["D1", "D2"] and not latest.stale
        assert case.latest_model("model") is None
        (run_record,) = case.runs()
        assert run_record.status == "ok" and run_record.summary == {"files": 1}
        assert run_record.parameters == {"device": "D1", "sigma": 3.0, "paths": ["/a"]}
        assert run_record.tool_version and run_record.finished >= run_record.started
        actions = [a.action for a in case.audit_log()]
        for expected in (
            "case created",
            "run started",
            "device added",
            "medium recorded",
            "fingerprint saved",
            "transform hint set",
            "model saved",
            "results recorded",
            "run finished",
        ):
            assert expected in actions
        assert case.unreferenced_arrays() == []
        assert case.counts() == {
            "devices": 2,
            "fingerprints": 1,
            "reference_media": 1,
            "evidence_media": 1,
            "evidence_errors": 0,
            "results": 4,
            "matches": 2,
            "models": 1,
            "runs": 1,
        }


def test_record_results_replaces_and_never_doubles(tmp_path):
    with Case.create(tmp_path / "c") as case:
        case.add_device("D1")
        case.add_device("D2")
        first = case.record_results(_medium("/ev/a.jpg"), _prnu_rows(["D1", "D2"], pce=10.0))
        again = case.record_results(_medium("/ev/a.jpg"), _prnu_rows(["D1"], pce=900.0))
        assert again == first
        rows = case.results(first)
        assert len(rows) == 2
        assert {r.target: r.score for r in rows} == {"D1": 900.0, "D2": 10.0}
        assert len(case.list_media(role="evidence")) == 1


def test_changed_or_unreadable_file_drops_its_old_results(tmp_path):
    with Case.create(tmp_path / "c") as case:
        case.add_device("D1")
        medium_id = case.record_results(_medium("/ev/a.jpg", sha="11" * 32), _prnu_rows(["D1"]))
        # Same path, other content: the old PCE does not describe the new bytes.
        case.record_results(_medium("/ev/a.jpg", sha="22" * 32), [])
        assert case.results(medium_id) == []
        case.record_results(_medium("/ev/a.jpg", sha="22" * 32), _prnu_rows(["D1"]))
        case.record_results(_medium("/ev/a.jpg", sha="22" * 32, status="error", error="truncated"), [])
        assert case.results(medium_id) == []
        medium = case.get_medium(medium_id)
        assert medium.status == "error" and medium.error == "truncated"
        dropped = [a for a in case.audit_log() if a.action == "results dropped"]
        assert len(dropped) == 2
        # Nothing is lost: the old rows, with the old content's hash, stay in the audit trail.
        first_drop = dropped[0].details if dropped[0].details["old_sha256"] == "11" * 32 else dropped[1].details
        assert [r["target"] for r in first_drop["results"]] == ["D1"]
        assert first_drop["results"][0]["medium_id"] == medium_id and "decision" in first_drop["results"][0]


def test_new_fingerprint_replaces_old_file_and_invalidates_prnu_results(tmp_path):
    with Case.create(tmp_path / "c") as case:
        device = case.add_device("D1")
        other = case.add_device("D2")
        first = case.save_fingerprint(
            device.id, np.zeros((8, 8)), n_media=1, quality=None, media_hashes=[], source="image", parameters={}
        )
        medium_id = case.record_results(_medium("/ev/a.jpg"), _prnu_rows(["D1", "D2"]))
        second = case.save_fingerprint(
            device.id, np.ones((8, 8)), n_media=2, quality=1.0, media_hashes=["x", "y"], source="mixed", parameters={}
        )
        assert not first.path.exists() and second.path.exists()
        assert len(case.fingerprints(device.id)) == 1 and second.load()[0, 0] == 1.0
        assert case.done_targets(medium_id, "prnu") == {"D2"}  # D1 must be computed again
        case.save_fingerprint(
            device.id, np.ones((4, 8)), n_media=1, quality=1.0, media_hashes=["z"], source="video", parameters={}
        )  # another resolution: kept beside
        assert sorted(f.shape for f in case.fingerprints(device.id)) == [(4, 8), (8, 8)]
        assert case.fingerprints(other.id) == []
        assert case.unreferenced_arrays() == []
        with pytest.raises(ValueError):
            case.save_fingerprint(
                device.id,
                np.full((4, 4), np.nan),
                n_media=1,
                quality=None,
                media_hashes=[],
                source="image",
                parameters={},
            )
        with pytest.raises(CaseError):
            case.save_fingerprint(
                999, np.ones((4, 4)), n_media=1, quality=None, media_hashes=[], source="image", parameters={}
            )


def test_models_stale_and_new_model_invalidates_cnn_results(tmp_path):
    with Case.create(tmp_path / "c") as case:
        first = case.save_model("device", "models/a.pt", ["D1"], {})
        case.save_model("model", "models/m.pt", ["D70"], {})
        medium_id = case.record_results(
            _medium("/ev/a.jpg"),
            [Match("cnn", "D1", 0.9, "match"), Match("cnn", "D70", 0.8, "match", target_kind="model")],
        )
        assert case.mark_models_stale("device D2 enrolled", target="device") == 1
        assert case.latest_model("device").stale and case.latest_model("device").stale_reason == "device D2 enrolled"
        assert not case.latest_model("model").stale
        second = case.save_model("device", case.root / "models" / "b.pt", ["D1", "D2"], {"seed": 2})
        assert case.latest_model("device").id == second.id != first.id and not second.stale
        assert case.done_targets(medium_id, "cnn", "device") == set()
        assert case.done_targets(medium_id, "cnn", "model") == {"D70"}
        assert case.mark_models_stale("again") == 2


# ---------------------------------------------------------------------- misuse and errors


def test_create_and_open_refuse_what_is_not_a_case(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(CaseError, match="not empty"):
        Case.create(tmp_path / "busy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CaseError, match="is a file"):
        Case.create(tmp_path / "file")
    with pytest.raises(CaseError, match="sensorprint init"):
        Case.open(tmp_path / "busy")
    with pytest.raises(CaseError, match="sensorprint init"):
        Case.open(tmp_path / "missing")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "case.sqlite").write_bytes(b"this is not sqlite at all, just text" * 10)
    with pytest.raises(CaseError, match="damaged"):
        Case.open(tmp_path / "junk")
    Case.create(tmp_path / "empty-ok").close()  # an existing empty folder is fine
    with pytest.raises(CaseError, match="already a sensorprint case"):
        Case.create(tmp_path / "empty-ok")


def test_bad_values_are_refused(tmp_path):
    with Case.create(tmp_path / "c") as case:
        device = case.add_device("D1")
        with pytest.raises(CaseError, match="already enrolled"):
            case.add_device("D1")
        with pytest.raises(CaseError, match="non-empty name"):
            case.add_device("  ")
        with pytest.raises(ValueError):
            case.add_medium(role="reference", **_medium("/r.jpg"))  # no device
        with pytest.raises(ValueError):
            case.add_medium(role="evidence", device_id=device.id, **_medium("/e.jpg"))
        with pytest.raises(ValueError):
            case.record_results(_medium("/e.jpg"), [Match("svm", "D1", 1.0, "match")])
        with pytest.raises(CaseError, match="not enrolled: D9"):
            case.record_results(_medium("/e.jpg"), _prnu_rows(["D1", "D9"]))
        assert case.list_media() == []  # the refused calls wrote nothing
        assert case.ensure_device("D1", model="A").model == "A"  # a model given later is recorded
        with pytest.raises(CaseError, match="enrolled as model"):
            case.ensure_device("D1", model="B")
        assert case.ensure_device("D1").model == "A"
        with pytest.raises(CaseError, match="run 42"):
            case.finish_run(42, "ok", {})


def test_audit_log_is_append_only(tmp_path):
    with Case.create(tmp_path / "c") as case:
        case.audit("note", {"text": "photographed the seals"})
        conn = sqlite3.connect(case.root / "case.sqlite")
        try:
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute("UPDATE audit SET action = 'forged'")
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute("DELETE FROM audit")
        finally:
            conn.close()
        assert case.audit_log()[-1].details == {"text": "photographed the seals"}


def test_read_only_case_reads_while_refusing_writes(tmp_path):
    with Case.create(tmp_path / "c") as writer:
        writer.add_device("D1")
        with Case.open(tmp_path / "c", read_only=True) as reader:
            assert [d.name for d in reader.list_devices()] == ["D1"]
            writer.add_device("D2")  # a reader open does not block the writer (WAL)
            assert [d.name for d in reader.list_devices()] == ["D1", "D2"]
            with pytest.raises(CaseError, match="read-only"):
                reader.add_device("D3")
            with reader.snapshot():
                before = reader.list_devices()
                writer.add_device("D4")
                assert reader.list_devices() == before  # one consistent state inside a snapshot
            assert len(reader.list_devices()) == 3


# ---------------------------------------------------------------------- migrations


def _add_serial_column(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE devices ADD COLUMN serial TEXT")
    conn.execute("UPDATE devices SET serial = 'unknown'")


def test_migration_v1_to_v2_on_open_with_backup(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])  # a case of version 1, then a test migration
    root = tmp_path / "c"
    with Case.create(root) as case:
        case.add_device("D1", model="Nikon D70")
        assert case.schema_version == 1
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + [_add_serial_column])
    with pytest.raises(CaseError, match="older schema"):
        Case.open(root, read_only=True)
    with Case.open(root) as case:
        assert case.schema_version == 2
        assert case.get_device("D1").model == "Nikon D70"
        upgrades = [a for a in case.audit_log() if a.action == "schema upgraded"]
        assert [a.details for a in upgrades] == [{"from": 0, "to": 1}, {"from": 1, "to": 2}]
    conn = sqlite3.connect(root / "case.sqlite")
    try:
        assert conn.execute("SELECT serial FROM devices").fetchall() == [("unknown",)]
        assert [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    finally:
        conn.close()
    (backup,) = (root / "backups").iterdir()
    assert backup.name.startswith("case-v1-")
    old = sqlite3.connect(backup)
    try:
        assert old.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
    finally:
        old.close()
    # Back to the code that knows only version 1: the upgraded case is from the future.
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    with pytest.raises(CaseError, match="newer sensorprint"):
        Case.open(root)


def test_failed_migration_leaves_the_case_at_the_old_version(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])  # a case of version 1, then a test migration
    root = tmp_path / "c"
    Case.create(root).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE devices ADD COLUMN serial TEXT")
        raise RuntimeError("disk gremlin")

    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + [broken])
    with pytest.raises(RuntimeError, match="gremlin"):
        Case.open(root)
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    with Case.open(root) as case:
        assert case.schema_version == 1
        columns = [r[1] for r in sqlite3.connect(root / "case.sqlite").execute("PRAGMA table_info(devices)")]
        assert "serial" not in columns


# ---------------------------------------------------------------------- SIGKILL


ROWS_PER_FILE = 40

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sensorprint.store import Case, Match
    from sensorprint.store import case as case_module

    root, marker, stop_file, stop_row, n_files = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    state = {"file": -1, "row": 0}
    original = case_module.Case._put_result

    def put_result(self, conn, medium_id, row, run_id):
        state["row"] += 1
        original(self, conn, medium_id, row, run_id)
        if state["file"] == stop_file and state["row"] == stop_row:
            marker.write_text("inside the transaction")
            time.sleep(60)  # the parent kills us here, mid-transaction

    case_module.Case._put_result = put_result
    case = Case.open(root)
    targets = [f"D{j}" for j in range({rows})]
    i = 0
    while n_files < 0 or i < n_files:
        state["file"], state["row"] = i, 0
        rows = [Match("prnu", t, float(i * 1000 + j), "no match", p_fa=0.5, transform={"rotation": 0})
                for j, t in enumerate(targets)]
        case.record_results({"path": f"/ev/{i:05d}.jpg", "sha256": f"{i:064x}", "kind": "image"}, rows, run_id=None)
        i += 1
    """
).replace("{rows}", str(ROWS_PER_FILE))


def _create_case_with_devices(root: Path) -> None:
    with Case.create(root) as case:
        for j in range(ROWS_PER_FILE):
            case.add_device(f"D{j}")


def _spawn_writer(tmp_path: Path, root: Path, stop_file: int, stop_row: int, n_files: int) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(tmp_path / "marker"), str(stop_file), str(stop_row), str(n_files)],
        env=env,
    )


def _check_all_or_nothing(root: Path) -> int:
    """Every recorded evidence file has all its rows; returns how many files are recorded."""
    with Case.open(root) as case:
        conn = sqlite3.connect(root / "case.sqlite")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            conn.close()
        media = case.list_media(role="evidence")
        for medium in media:
            rows = case.results(medium.id)
            assert len(rows) == ROWS_PER_FILE, f"{medium.path}: {len(rows)} rows (half a file committed)"
            i = int(Path(medium.path).stem)
            assert sorted(r.score for r in rows) == [float(i * 1000 + j) for j in range(ROWS_PER_FILE)]
        recorded = {a.details["path"] for a in case.audit_log() if a.action == "results recorded"}
        assert recorded == {m.path for m in media}  # the audit line is committed with the results, never alone
        return len(media)


def test_sigkill_inside_record_results_loses_nothing_committed(tmp_path):
    root = tmp_path / "c"
    _create_case_with_devices(root)
    child = _spawn_writer(tmp_path, root, stop_file=7, stop_row=ROWS_PER_FILE // 2, n_files=20)
    deadline = time.monotonic() + 60
    while not (tmp_path / "marker").exists():
        assert child.poll() is None, "writer exited before reaching the kill point"
        assert time.monotonic() < deadline, "writer never reached the kill point"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert _check_all_or_nothing(root) == 7  # files 0..6 complete, file 7 not at all
    with Case.open(root) as case:
        assert sum(a.action == "results recorded" for a in case.audit_log()) == 7
        assert case.find_medium("evidence", "/ev/00007.jpg") is None
        assert case.done_targets(case.find_medium("evidence", "/ev/00006.jpg").id, "prnu") == {
            f"D{j}" for j in range(ROWS_PER_FILE)
        }
    # Resume: record everything again; nothing doubles.
    (tmp_path / "marker").unlink()
    child = _spawn_writer(tmp_path, root, stop_file=-1, stop_row=-1, n_files=10)
    assert child.wait(timeout=60) == 0
    assert _check_all_or_nothing(root) == 10


def test_sigkill_at_a_random_moment_while_a_reader_watches(tmp_path):
    root = tmp_path / "c"
    _create_case_with_devices(root)
    child = _spawn_writer(tmp_path, root, stop_file=-1, stop_row=-1, n_files=-1)
    seen = 0
    try:
        with Case.open(root, read_only=True) as reader:
            deadline = time.monotonic() + 60
            while seen < 15:
                assert child.poll() is None
                assert time.monotonic() < deadline, f"only {seen} files written in 60 s"
                with reader.snapshot():
                    media = reader.list_media(role="evidence")
                    for medium in media:  # the reader never sees half a file either
                        assert len(reader.done_targets(medium.id, "prnu")) == ROWS_PER_FILE
                seen = len(media)
                time.sleep(0.01)
    finally:
        time.sleep(float(np.random.default_rng().uniform(0, 0.05)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert _check_all_or_nothing(root) >= 15


def test_result_rows_as_dicts_and_hints_by_device_name(tmp_path):
    with Case.create(tmp_path / "c") as case:
        device = case.add_device("D1")
        row = {
            "method": "prnu",
            "target_kind": "device",
            "target": "D1",
            "score": np.float32(75.5),
            "ncc": 0.01,
            "p_fa": 1e-12,
            "decision": "match",
            "transform": {"rotation": 0, "flip": False, "scale": 0.5, "offset": [3, 4]},
            "details": {"size_key": "1920x1080", "n_positions": np.int64(1)},
        }
        medium_id = case.record_results(_medium("/ev/v.mp4"), [row])
        (stored,) = case.results(medium_id)
        assert stored.score == pytest.approx(75.5) and stored.details == {"size_key": "1920x1080", "n_positions": 1}
        with pytest.raises(ValueError, match="not a result row"):
            case.record_results(_medium("/ev/w.mp4"), [{**row, "colour": "red"}])
        case.set_hint(device.id, "1920x1080", row["transform"])
        case.set_hint(device.id, "1920x1080", {**row["transform"], "scale": 0.48})  # replaces
        assert case.all_hints() == {"D1|1920x1080": {"rotation": 0, "flip": False, "scale": 0.48, "offset": [3, 4]}}
        assert case.hints(device.id) == {"1920x1080": {"rotation": 0, "flip": False, "scale": 0.48, "offset": [3, 4]}}


def test_tampered_fingerprint_and_a_locked_case_are_user_errors(tmp_path):
    with Case.create(tmp_path / "c") as case:
        device = case.add_device("D1")
        record = case.save_fingerprint(
            device.id, np.ones((16, 16)), n_media=1, quality=None, media_hashes=[], source="image", parameters={}
        )
        assert case.verify_arrays() == []
        data = bytearray(record.path.read_bytes())
        data[-1] ^= 0xFF
        record.path.write_bytes(bytes(data))
        (problem,) = case.verify_arrays()
        assert "changed after it was saved" in problem
        record.path.unlink()
        with pytest.raises(CaseError, match="missing"):
            record.verify()
    other = sqlite3.connect(tmp_path / "c" / "case.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    try:
        with Case.open(tmp_path / "c", busy_timeout_s=0.2) as case:
            with pytest.raises(CaseError, match="another sensorprint process"):
                case.add_device("D2")
            assert [d.name for d in case.list_devices()] == ["D1"]  # reading still works
    finally:
        other.execute("ROLLBACK")
        other.close()


_FINGERPRINT_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from sensorprint.store import Case
    from sensorprint.store import case as case_module

    root, marker = sys.argv[1], Path(sys.argv[2])
    original = case_module.Case._audit_in

    def audit_in(conn, action, details, run_id):
        original(conn, action, details, run_id)
        if action == "fingerprint saved":
            marker.write_text("array renamed, row written, not committed")
            time.sleep(60)

    case_module.Case._audit_in = staticmethod(audit_in)
    case = Case.open(root)
    device = case.get_device("D1")
    case.save_fingerprint(device.id, np.full((32, 32), 2.0), n_media=2, quality=0.9, media_hashes=["b", "c"],
                          source="image", parameters={"version": 2})
    """
)


def test_sigkill_while_replacing_a_fingerprint_keeps_the_old_one_whole(tmp_path):
    root = tmp_path / "c"
    with Case.create(root) as case:
        device = case.add_device("D1")
        old = case.save_fingerprint(
            device.id,
            np.ones((32, 32)),
            n_media=1,
            quality=0.5,
            media_hashes=["a"],
            source="image",
            parameters={"version": 1},
        )
        medium_id = case.record_results(_medium("/ev/a.jpg"), _prnu_rows(["D1"]))
    script = tmp_path / "fp_writer.py"
    script.write_text(_FINGERPRINT_WRITER)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, str(script), str(root), str(tmp_path / "marker")], env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "marker").exists():
        assert child.poll() is None and time.monotonic() < deadline, "writer never reached the kill point"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    with Case.open(root) as case:
        (record,) = case.fingerprints()
        assert record == old and record.parameters == {"version": 1}
        record.verify()
        np.testing.assert_array_equal(record.load(), np.ones((32, 32), np.float32))
        assert case.done_targets(medium_id, "prnu") == {"D1"}  # the deletion was rolled back too
        (orphan,) = case.unreferenced_arrays()  # the new array, named in the transaction that never committed
        assert orphan.name.startswith("fp-d1-32x32-") and orphan != record.path
        assert case.remove_unreferenced_arrays() == [orphan] and not orphan.exists() and record.path.exists()
        assert case.unreferenced_arrays() == []
