"""The command line as a new user meets it: help, version, one-line errors, tables, JSON, kills, corrections."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorprint import __version__
from sensorprint.cli import app
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow.runs import run_status

runner = CliRunner()


def ok(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("desk")
    camera = make_cameras(n_models=1, units_per_model=1, width=640, height=480, seed=21)[0]
    for i in range(8):
        camera.save_jpeg(root / "refs" / f"flat{i}.jpg", flat=True, seed=i)
    for i in range(2):
        camera.save_jpeg(root / "seized" / f"img{i}.jpg", seed=500 + i)
    case = root / "case"
    ok("init", case, "--case-number", "C-1", "--examiner", "E. X.")
    ok("enroll", case, "--device", "cam", root / "refs")
    return {"root": root, "camera": camera, "case": case}


def test_version_and_help_without_type_noise():
    assert runner.invoke(app, ["--version"]).output.strip() == f"sensorprint {__version__}"
    for command in ([], ["scan"], ["enroll"], ["verify"], ["report"], ["case", "set"], ["reference", "remove"]):
        output = runner.invoke(app, [*command, "--help"], terminal_width=200).output
        assert "<bool>" not in output and "{case}" not in output and "<str>" not in output, output
    assert "CASE PATH..." in runner.invoke(app, ["scan", "--help"], terminal_width=200).output


def test_enroll_of_an_empty_folder_creates_nothing(world, tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["enroll", str(world["case"]), "--device", "ghost", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "nothing was enrolled" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    with Case.open(world["case"], read_only=True) as case:
        assert case.get_device("ghost") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"not an image")  # found, but nothing readable
    result = runner.invoke(app, ["enroll", str(world["case"]), "--device", "ghost", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "nothing was enrolled" in result.output and "Traceback" not in result.output
    with Case.open(world["case"], read_only=True) as case:
        assert case.get_device("ghost") is None and not case.list_media(role="reference", status="error")
        assert "device removed" in [e.action for e in case.audit_log()]  # the attempt stays in the audit log


@pytest.mark.parametrize("with_case", [True, False])
def test_verify_of_a_missing_file_is_one_line(world, tmp_path, with_case):
    extra = ["--case", str(world["case"])] if with_case else []
    result = runner.invoke(app, ["verify", str(tmp_path / "missing.jpg"), "cam" if with_case else "x.jpg", *extra])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "missing.jpg" in result.output
    assert result.output.count("missing.jpg") == 1  # the path is not repeated


def test_verify_against_a_device_is_recorded_in_the_case(world):
    query = world["root"] / "seized" / "img0.jpg"
    output = ok("verify", query, "cam", "--case", world["case"], "--json")
    said = json.loads(output)
    assert said["decision"] == "match" and said["b_is_device"] and len(said["sha256_a"]) == 64
    with Case.open(world["case"], read_only=True) as case:
        (run,) = [r for r in case.runs() if r.command == "verify"]
        assert run.status == "completed" and run.summary["pce"] == pytest.approx(said["pce"])
        medium = case.find_medium("evidence", query.resolve())
        assert medium is not None and [m.target for m in case.results(medium_id=medium.id)] == ["cam"]
    table = ok("verify", query, world["root"] / "seized" / "img1.jpg")  # two files: the table of files
    assert "best" in table and "false-alarm probability" in table
    result = runner.invoke(app, ["verify", str(query), "cam"])  # a device without --case
    assert result.exit_code == 2 and "give --case" in result.output and "Traceback" not in result.output


def test_scan_shows_a_table_of_files_and_json_says_the_same(world):
    output = ok("scan", world["case"], world["root"] / "seized", "--workers", "1")
    assert "best device" in output and "img1.jpg" in output and "cam" in output
    again = ok("scan", world["case"], world["root"] / "seized", "--workers", "1")  # a rescan says what was found
    assert "0 scanned now, 2 already done" in again and "of all 2: 2 matched an enrolled device" in again
    rows = json.loads(ok("scan", world["case"], world["root"] / "seized", "--json"))["files"]
    assert {Path(r["path"]).name for r in rows} == {"img0.jpg", "img1.jpg"}
    assert all(r["best_device"] == "cam" and r["answer"] == "match" and r["pce"] > 60 for r in rows)


def test_case_identity_notes_and_corrections_from_the_command_line(world, tmp_path):
    case = tmp_path / "c"
    ok("init", case)
    ok("enroll", case, "--device", "cam", world["root"] / "refs")
    ok("case", "set", case, "--case-number", "2026-7", "--exhibit", f"{world['root'] / 'seized'}=EXH-1")
    ok("case", "note", case, "first look", "--device", "cam")
    shown = ok("case", "show", case)
    assert "2026-7" in shown and "EXH-1" in shown and "device:cam" in shown
    ok("scan", case, world["root"] / "seized", "--workers", "1")
    out = ok("reference", "remove", case, "cam", world["root"] / "refs" / "flat0.jpg", "--reason", "wrong camera")
    assert "re-estimated" in out and "2 PRNU results marked stale" in out
    ok("report", case, "--format", "json", "--out", tmp_path / "r.json", "--no-rehash")
    records = json.loads((tmp_path / "r.json").read_text())["records"]  # the matches were computed before: stale
    assert [r["best_device"] for r in records] == [None, None] and all(r["devices"]["cam"]["stale"] for r in records)
    assert all(
        r["devices"]["cam"]["decision"] == "match" and "stale, not counted: cam" in r["verdict"] for r in records
    )
    again = ok("scan", case, world["root"] / "seized", "--workers", "1")  # computes them with the corrected K
    assert "2 scanned now" in again and "of all 2: 2 matched an enrolled device" in again
    assert "renamed" in ok("device", "rename", case, "cam", "Phone of J. Doe")
    assert "removed" in ok("device", "remove", case, "Phone of J. Doe", "--reason", "test")
    bad = runner.invoke(app, ["device", "remove", str(case), "nobody"])
    assert bad.exit_code == 2 and "no device 'nobody'" in bad.output


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_workers_end_when_the_scan_is_killed_and_its_run_shows_interrupted(world, tmp_path):
    seized = tmp_path / "seized"
    for i in range(16):
        world["camera"].save_jpeg(seized / f"s{i:02d}.jpg", seed=900 + i)
    case = tmp_path / "case"
    ok("init", case)
    ok("enroll", case, "--device", "cam", world["root"] / "refs")
    command = [sys.executable, "-m", "sensorprint.cli", "scan", str(case), str(seized), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and process.poll() is None and time.monotonic() < deadline:
        workers = _children(process.pid)
        time.sleep(0.05)
    assert len(workers) >= 2, "the scan's worker processes did not start"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "workers outlived the killed scan"
    with Case.open(case, read_only=True) as opened:
        (run,) = [r for r in opened.runs() if r.command == "scan"]
        assert run.status == "running" and run_status(run) == "interrupted"


def test_the_table_names_an_unreadable_file_once():
    from sensorprint.cli import text

    row = {"path": "/ev/a.jpg", "sha256": None, "status": "error", "error": "/ev/a.jpg: not an image or a video",
           "best_device": None, "pce": None, "p_fa": None, "answer": "error", "cnn_device": None}  # fmt: skip
    ((file, _, _, _, answer, _),) = text.file_table_rows([row], "/ev")
    assert (file, answer) == ("a.jpg", "error: not an image or a video")
    stale = {**row, "status": "ok", "error": None, "answer": "stale"}
    assert "stale" in text.scan_lines(type("S", (), {"run_id": 1, "files": 1, "scanned": 0, "skipped": 1,
                                      "classified": {}, "network_lines": [], "prnu_only": False,
                                      "error_lines": []})(), [stale])[0]  # fmt: skip


def test_verify_records_a_relative_path_as_a_scan_would(world, monkeypatch):
    monkeypatch.chdir(world["root"])
    ok("verify", "seized/img1.jpg", "cam", "--case", world["case"])
    with Case.open(world["case"], read_only=True) as case:
        paths = [m.path for m in case.list_media(role="evidence")]
    assert str((world["root"] / "seized" / "img1.jpg").resolve()) in paths and "seized/img1.jpg" not in paths
