"""Stabilised phone clips through the commands: enroll from stabilised reference video, scan, verify, report.

Two simulated phones, 600×450 sensors, 480×270 HEVC clips in MOV (as iPhones write) with
electronic stabilisation (a different shift of the sensor window in every frame). One
phone is enrolled from flat photos, the other from two stabilised reference clips (their
frames aligned before summing). Each stabilised query clip must be matched to its own
phone only, frame by frame, the video said to be stabilised (scan's lines, the JSON and
HTML reports with the per-frame transform figure), `verify` must agree, and a broken
stabilised clip must give one error line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sensorprint.cli import app
from sensorprint.simulate import make_cameras

runner = CliRunner()
SENSOR = dict(width=600, height=450)
CLIP = dict(seconds=1.0, fps=10, gop=3, size=(480, 270), bitrate=2_000_000, codec="hevc", container_format="mov")


def cli(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("stabilised_world")
    stills, filmed = make_cameras(2, 1, seed=31, **SENSOR)
    for i in range(6):
        stills.save_jpeg(root / "refs" / "stills" / f"flat{i}.jpg", flat=True, seed=i)
    for s in range(2):
        filmed.record_video(
            root / "refs" / "filmed" / f"ref{s}.mov", seed=s, scene_kind="flat", motion=False, stabilise=True, **CLIP
        )
    queries = {}
    for camera in (stills, filmed):
        path = camera.record_video(
            root / "seized" / f"{camera.name}.mov", seed=40, scene_kind="sky", stabilise=True, **CLIP
        )
        queries[path.name] = camera.name
    data = (root / "seized" / f"{stills.name}.mov").read_bytes()
    (root / "seized" / "broken.mov").write_bytes(data[: len(data) // 2])
    case = root / "case"
    cli("init", case)
    enrolled = {
        stills.name: cli("enroll", case, root / "refs" / "stills", "--device", stills.name, "--workers", "1"),
        filmed.name: cli("enroll", case, root / "refs" / "filmed", "--device", filmed.name, "--workers", "1"),
    }
    scan = cli("scan", case, root / "seized", "--workers", "1")
    cli("report", case, "--format", "json", "--out", root / "report.json")
    cli("report", case, "--format", "html", "--out", root / "report.html")
    records = {Path(r["path"]).name: r for r in json.loads((root / "report.json").read_text())["records"]}
    return {"root": root, "case": case, "queries": queries, "enrolled": enrolled, "scan": scan, "records": records}


def test_enrolling_from_stabilised_clips_aligns_their_frames(world):
    lines = world["enrolled"]["SimCam-B_unit0"]
    assert "stabilised reference video" in lines and "frames aligned" in lines
    assert "stabilised reference video" not in world["enrolled"]["SimCam-A_unit0"]  # photos: nothing to align


def test_each_stabilised_clip_matches_its_phone_only_and_is_said_stabilised(world):
    for name, device in world["queries"].items():
        record = world["records"][name]
        assert record["matches"] == [device], (name, record["devices"])
        entry = record["devices"][device]
        assert entry["stabilisation"] == "stabilised" and entry["frames_decided"] >= 1
        assert entry["frame_transforms"] and {"scale", "rotation", "shift"} <= set(entry["frame_transforms"][0])
        assert record["metadata"]["codec"] == "hevc" and "HEVC 8-bit" in record["format_text"]
    assert "stabilised (its frames needed different transforms)" in world["scan"]


def test_html_report_draws_the_per_frame_transforms(world):
    html = (world["root"] / "report.html").read_text()
    assert html.count("Scale, rotation and translation of each frame") >= len(world["queries"])
    assert "<b>stabilised</b>" in html


def test_a_broken_stabilised_clip_is_one_error_line(world):
    record = world["records"]["broken.mov"]
    assert record["status"] == "error" and "\n" not in record["error"] and "truncated" in record["error"]
    errors = [line for line in world["scan"].splitlines() if line.strip().startswith("error:") and "broken.mov" in line]
    assert len(errors) == 1 and "truncated" in errors[0]  # one line, beside the file's row of the table


def test_verify_agrees_with_the_scan(world):
    for name, device in world["queries"].items():
        out = cli("verify", world["root"] / "seized" / name, device, "--case", world["case"])
        assert "match" in out.lower() and "no match" not in out.lower(), out
    other = cli("verify", world["root"] / "seized" / "SimCam-A_unit0.mov", "SimCam-B_unit0", "--case", world["case"])
    assert "no match" in other.lower() or "inconclusive" in other.lower(), other


def test_cluster_puts_a_stabilised_clip_with_the_photos_of_its_phone_and_resumes(world, tmp_path):
    from sensorprint.store import Case
    from sensorprint.store import clusters as store
    from sensorprint.workflow.cluster import stored_groups

    root, case = world["root"], tmp_path / "case"
    cli("init", case)
    paths = (root / "refs" / "stills", root / "seized")
    first = cli("cluster", case, *paths, "--workers", "1")
    assert "2 searches now, 1 videos joined a group" in first, first  # each clip against the group of photos
    assert sum("broken.mov" in line for line in first.splitlines()) == 1
    with Case.open(case, read_only=True) as opened:
        groups = {frozenset(Path(p).name for p in g.paths) for g in stored_groups(opened)}
        names = {r.id: Path(r.path).name for r in store.files(opened)}
        frame_scores = {names[s.b_id]: s for s in store.scores(opened) if s.key.endswith(":frames")}
    stills = {f"flat{i}.jpg" for i in range(6)}
    assert groups == {frozenset(stills | {"SimCam-A_unit0.mov"}), frozenset({"SimCam-B_unit0.mov"})}, groups
    assert set(frame_scores) == {"SimCam-A_unit0.mov", "SimCam-B_unit0.mov"}
    assert frame_scores["SimCam-A_unit0.mov"].details["stage"].startswith("per-frame similarity search")
    assert frame_scores["SimCam-A_unit0.mov"].score >= 60 > frame_scores["SimCam-B_unit0.mov"].score
    again = cli("cluster", case, *paths, "--workers", "1")  # resumed: the search is stored, not made again
    assert "0 searches now, 1 videos joined a group" in again, again
    with Case.open(case, read_only=True) as opened:
        assert {frozenset(Path(p).name for p in g.paths) for g in stored_groups(opened)} == groups
