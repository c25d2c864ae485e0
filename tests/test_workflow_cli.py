"""The case workflow through the command line, on simulated cameras with known ground truth."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorprint.cli import app
from sensorprint.simulate import make_cameras

runner = CliRunner()
SIZE = dict(width=640, height=480)


def cli(*args: str) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Four cameras (two units of each of two models), reference flats, and a seized folder."""
    root = tmp_path_factory.mktemp("world")
    cameras = make_cameras(n_models=2, units_per_model=2, seed=7, **SIZE)
    stranger = make_cameras(n_models=1, units_per_model=1, seed=99, **SIZE)[0]
    truth = {}
    for camera in cameras:
        for i in range(8):
            camera.save_jpeg(root / "refs" / camera.name / f"flat{i}.jpg", flat=True, seed=i)
        for i in range(2):
            path = root / "seized" / "dcim" / f"{camera.name}_{i}.jpg"
            camera.save_jpeg(path, seed=1000 + i)
            truth[path.name] = camera.name
    stranger.save_jpeg(root / "seized" / "stranger.jpg", seed=5)
    truth["stranger.jpg"] = None
    bad = root / "seized" / "bad"
    bad.mkdir(parents=True)
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes [draft].jpg").write_text("not a picture at all\n")  # brackets: not rich markup
    whole = (root / "seized" / "dcim" / f"{cameras[0].name}_0.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    for name in ("empty.jpg", "notes [draft].jpg", "truncated.jpg"):
        truth[name] = None
    return {"root": root, "cameras": cameras, "truth": truth}


@pytest.fixture(scope="module")
def scanned(world) -> dict:
    case = world["root"] / "case"
    cli("init", case)
    for camera in world["cameras"]:
        cli("enroll", case, "--device", camera.name, "--model", camera.model.name, world["root"] / "refs" / camera.name)
    output = cli("scan", case, world["root"] / "seized", "--workers", "2")
    cli("report", case, "--format", "json", "--out", world["root"] / "report.json")
    records = json.loads((world["root"] / "report.json").read_text())
    return {"case": case, "output": output, "records": records}


def _files(report) -> list[dict]:
    return report["records"]


def test_every_file_gets_the_right_answer(world, scanned):
    files = _files(scanned["records"])
    by_name = {Path(r["path"]).name: r for r in files}
    assert set(by_name) == set(world["truth"])
    for name, expected in world["truth"].items():
        assert by_name[name]["best_device"] == expected, (name, by_name[name])


def test_bad_files_get_one_line_errors_and_the_scan_goes_on(scanned):
    errors = {Path(r["path"]).name: r for r in _files(scanned["records"]) if r["status"] == "error"}
    assert set(errors) == {"empty.jpg", "notes [draft].jpg", "truncated.jpg"}
    for record in errors.values():
        assert record["error"] and "\n" not in record["error"] and "Traceback" not in record["error"]
    # the command line says every file's name as it is (rich markup would drop "[draft]")
    assert "notes [draft].jpg: not an image or a video" in scanned["output"]


def test_results_carry_hash_pce_pfa_and_transform(world, scanned):
    good = [r for r in _files(scanned["records"]) if r["status"] == "ok"]
    for record in good:
        assert len(record["sha256"]) == 64
        assert set(record["devices"]) == {c.name for c in world["cameras"]}
        for result in record["devices"].values():
            assert 0.0 <= result["p_fa"] <= 1.0
            assert result["decision"] in ("match", "no match", "inconclusive")
            assert "pce" in result and "transform" in result


def test_scanning_again_reads_nothing_twice(world, scanned):
    output = cli("scan", scanned["case"], world["root"] / "seized")
    assert "0 scanned now" in output
    assert f"{len(world['truth'])} already done" in output


def test_verify_two_files_of_one_camera_and_of_two(world, tmp_path):
    # one flat-field reference is a weak fingerprint: give it a megapixel, as an examiner would
    a, b = make_cameras(n_models=1, units_per_model=2, seed=11, width=1280, height=960)
    reference = a.save_jpeg(tmp_path / "a_flat.jpg", flat=True, seed=1)
    same_camera = a.save_jpeg(tmp_path / "a_scene.jpg", seed=2)
    twin_camera = b.save_jpeg(tmp_path / "b_scene.jpg", seed=3)
    same = runner.invoke(app, ["verify", str(same_camera), str(reference)])
    assert same.exit_code == 0 and "decision" in same.output and "no match" not in same.output, same.output
    # one file cannot exclude a source (no split halves: its reliability is unknown): inconclusive, never "no match"
    other = runner.invoke(app, ["verify", str(twin_camera), str(reference)])
    assert other.exit_code == 0 and "inconclusive" in other.output and "no match" not in other.output, other.output


def test_a_software_rotated_image_matches_only_when_all_orientations_are_asked(world, scanned, tmp_path):
    from PIL import Image

    name = world["cameras"][1].name
    upside_down = tmp_path / "upside_down.png"
    pixels = Image.open(world["root"] / "seized" / "dcim" / f"{name}_0.jpg")
    pixels.transpose(Image.Transpose.ROTATE_180).save(upside_down)
    as_stored = runner.invoke(app, ["verify", str(upside_down), name, "--case", str(scanned["case"])])
    # not found as stored: no match, or inconclusive where a true pair would not have been expected to show
    assert as_stored.exit_code == 0 and ("no match" in as_stored.output or "inconclusive" in as_stored.output)
    assert "180" not in as_stored.output, as_stored.output
    searched = runner.invoke(
        app, ["verify", str(upside_down), name, "--case", str(scanned["case"]), "--all-orientations"]
    )
    assert searched.exit_code == 0 and "no match" not in searched.output and "180" in searched.output, searched.output


def test_verify_against_an_enrolled_device(world, scanned):
    seized = world["root"] / "seized" / "dcim"
    name = world["cameras"][2].name
    result = runner.invoke(app, ["verify", str(seized / f"{name}_1.jpg"), name, "--case", str(scanned["case"])])
    assert result.exit_code == 0 and "no match" not in result.output, result.output


def test_bad_usage_is_one_line_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["scan", str(tmp_path / "nowhere [seized]"), str(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "nowhere [seized]" in result.output


def _committed(case: Path, mode: str = "ro") -> int:
    # after a SIGKILL, a read-write connection recovers a commit whose WAL frames were written but
    # whose index was not updated yet: the count the next scan will see
    try:
        with sqlite3.connect(f"file:{case / 'case.sqlite'}?mode={mode}", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM media WHERE role = 'evidence'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_scan_killed_with_sigkill_resumes_without_loss_or_doubles(world, tmp_path):
    camera = world["cameras"][0]
    seized = tmp_path / "seized"
    for i in range(24):
        camera.save_jpeg(seized / f"img{i:02d}.jpg", seed=2000 + i)
    case = tmp_path / "case"
    cli("init", case)
    cli("enroll", case, "--device", camera.name, world["root"] / "refs" / camera.name)
    command = [sys.executable, "-m", "sensorprint.cli", "scan", str(case), str(seized), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _committed(case) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _committed(case, mode="rw")
    assert 3 <= before < 24, f"the kill should land mid-scan, {before} files were committed"

    output = cli("scan", case, seized)
    assert f"{before} already done" in output and f"{24 - before} scanned now" in output
    with sqlite3.connect(case / "case.sqlite") as db:
        media = db.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM media WHERE role='evidence'").fetchone()
        results = db.execute("SELECT COUNT(*), COUNT(DISTINCT medium_id) FROM results").fetchone()
    assert media == (24, 24)
    assert results == (24, 24)
