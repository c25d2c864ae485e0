"""Videos everywhere images work, through the command line, on small simulated clips.

Four simulated cameras with 800×600 sensors record 640×360 H.264 video (the full sensor
width scaled by 0.8, top and bottom cropped, as a phone does): two twins of one model
enrolled from reference videos, one enrolled from flat photos only, one from both. The
seized folder holds videos of each, a photo of a video-enrolled camera, a variable frame
rate video and four videos that cannot be read.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from sensorprint.cli import app
from sensorprint.simulate import make_cameras
from sensorprint.store import Case

runner = CliRunner()
SENSOR = dict(width=800, height=600)
VIDEO = dict(size=(640, 360), fps=30, bitrate=3_000_000)
FRAMES = 12  # frames per query video
BAD = {  # file name -> a word its one-line error must contain
    "cut_short.mp4": "truncated",
    "voice_memo.m4a": "audio-only",
    "no_frames.mkv": "no frames",
    "unknown_codec.mp4": "codec",
}


def cli(*args) -> str:
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def remux_with_variable_frame_rate(source: Path, target: Path) -> Path:
    """The same H.264 packets (no B-frames) with irregular timestamps: a variable frame rate video."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream_out = dst.add_stream_from_template(stream_in)
        stream_out.time_base = Fraction(1, 1000)
        t = 0
        for i, packet in enumerate(src.demux(stream_in)):
            if not packet.size:
                continue
            packet.stream = stream_out
            packet.time_base = Fraction(1, 1000)
            packet.pts = packet.dts = t
            t += (33, 20, 50)[i % 3]  # 30, 50 and 20 frames per second in turn
            dst.mux(packet)
    return target


def write_bad_videos(folder: Path, good_clip: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = good_clip.read_bytes()
    (folder / "cut_short.mp4").write_bytes(data[: len(data) * 6 // 10])
    entry = data.find(b"avc1", data.find(b"stsd"))
    (folder / "unknown_codec.mp4").write_bytes(data[:entry] + b"qqqq" + data[entry + 4 :])
    silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    silence.sample_rate = 16000
    for name, with_video in (("voice_memo.m4a", False), ("no_frames.mkv", True)):
        container = av.open(str(folder / name), "w")
        if with_video:
            video = container.add_stream("libx264", rate=30)
            video.width, video.height, video.pix_fmt = 640, 360, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        container.start_encoding()
        for i in range(10):
            silence.pts = i * 1024
            for packet in audio.encode(silence):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
        container.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("video_world")
    a0, a1, b0, b1 = make_cameras(2, 2, seed=21, **SENSOR)
    refs, seized, later = root / "refs", root / "seized", root / "later"
    for camera in (a0, a1):
        for s, kind in enumerate(("sky", "wall")):  # the examiner films bright, plain scenes with the seized phone
            camera.record_video(refs / camera.name / f"ref{s}.mp4", seconds=2, seed=s, scene_kind=kind, **VIDEO)
    for i in range(6):
        b0.save_jpeg(refs / b0.name / f"flat{i}.jpg", flat=True, seed=i)
    for i in range(4):
        b1.save_jpeg(refs / b1.name / f"flat{i}.jpg", flat=True, seed=i)
    b1.record_video(refs / b1.name / "ref0.mp4", seconds=2, seed=0, scene_kind="wall", **VIDEO)

    truth = {}
    for camera in (a0, a1, b0, b1):
        path = camera.record_video(seized / "dcim" / f"{camera.name}.mp4", seconds=3, seed=50, **VIDEO)
        truth[path.name] = camera.name
    a0.save_jpeg(seized / "dcim" / "photo_of_A0.jpg", flat=True, seed=77)
    truth["photo_of_A0.jpg"] = a0.name
    b1_clip = b1.record_video(root / "tmp" / "b1.mp4", seconds=3, seed=60, **VIDEO)
    remux_with_variable_frame_rate(b1_clip, seized / "dcim" / "variable_rate.mkv")
    truth["variable_rate.mkv"] = b1.name
    write_bad_videos(seized / "bad", b1_clip)
    # a later video of the image-enrolled camera: must be found through the transform remembered
    b0.record_video(later / "B0_later.mp4", seconds=3, seed=70, **VIDEO)
    return {
        "root": root,
        "refs": refs,
        "seized": seized,
        "later": later,
        "truth": truth,
        "cameras": {c.name: c for c in (a0, a1, b0, b1)},
    }


@pytest.fixture(scope="module")
def scanned(world) -> dict:
    case = world["root"] / "case"
    cli("init", case)
    outputs = {}
    for name in world["cameras"]:
        outputs[name] = cli("enroll", case, world["refs"] / name, "--device", name, "--frames", "30", "--workers", "1")
    scan_output = cli(
        "scan", case, world["seized"], "--workers", "2", "--frames", str(FRAMES), "--frame-strategy", "even"
    )
    report = world["root"] / "report.json"
    cli("report", case, "--format", "json", "--out", report)
    records = json.loads(report.read_text())
    records = records["records"]
    return {"case": case, "enroll": outputs, "scan": scan_output, "records": {Path(r["path"]).name: r for r in records}}


def test_enroll_from_videos_images_or_both(world, scanned):
    a0, a1, b0, b1 = world["cameras"]
    assert "fingerprint 640x360 from 2 media (60 images or frames)" in scanned["enroll"][a0]
    assert "fingerprint 800x600 from 6 media" in scanned["enroll"][b0]
    both = scanned["enroll"][b1]
    assert "fingerprint 640x360 from 1 media" in both and "fingerprint 800x600 from 4 media" in both
    with Case.open(scanned["case"]) as case:
        sources = {d.name: sorted(f.source for f in case.fingerprints(d.id)) for d in case.list_devices()}
    assert sources == {a0: ["video"], a1: ["video"], b0: ["image"], b1: ["image", "video"]}


def test_every_video_and_image_finds_its_camera(world, scanned):
    records = scanned["records"]
    for name, device in world["truth"].items():
        record = records[name]
        assert record["status"] == "ok", (name, record["error"])
        print(name, {d: round(v["pce"], 1) for d, v in record["devices"].items()})
        assert record["best_device"] == device, (name, {d: v["pce"] for d, v in record["devices"].items()})
        wrong = [d for d in record["matches"] if d != device]
        assert not wrong, (name, wrong)


def test_video_against_image_fingerprint_finds_scale_and_crop(world, scanned):
    b0 = "SimCam-B_unit0"
    entry = scanned["records"]["SimCam-B_unit0.mp4"]["devices"][b0]
    transform = entry["transform"]
    # 640x360 frames are the 800-px sensor width scaled by 0.8; 600*0.8 = 480 rows, 360 kept: 60 cropped above
    assert transform["scale"] == pytest.approx(0.8, abs=0.01)
    assert transform["offset"][1] == 0 and abs(transform["offset"][0] - 60) <= 2
    assert entry["pce"] >= 60


def test_frames_used_are_named(world, scanned):
    record = scanned["records"]["SimCam-A_unit0.mp4"]
    frames = record["frames"]
    # the strategy's frames (evenly spaced over 90) first; the adaptive read may add more until decided
    assert len(frames) >= FRAMES and {0, 89} <= {f["index"] for f in frames}
    assert all(f["weight"] > 0 for f in frames)
    assert "#0" in record["frames_text"]
    # the variable frame rate video was read, its irregular timing reported
    vfr = scanned["records"]["variable_rate.mkv"]
    assert vfr["metadata"]["variable_frame_rate"] is True and len(vfr["frames"]) >= FRAMES


def test_bad_videos_give_one_error_line_each(world, scanned):
    lines = [line.strip() for line in scanned["scan"].splitlines() if line.strip().startswith("error:")]
    for name, word in BAD.items():
        record = scanned["records"][name]
        assert record["status"] == "error" and "\n" not in record["error"]
        assert word in record["error"].lower(), (name, record["error"])
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert len(lines) == len(BAD)


def test_transform_is_remembered_and_used(world, scanned):
    case_dir = scanned["case"]
    with Case.open(case_dir) as case:
        hints = case.all_hints()
    assert "SimCam-B_unit0|640x360" in hints
    cli("scan", case_dir, world["later"], "--workers", "1", "--frames", str(FRAMES), "--frame-strategy", "even")
    with Case.open(case_dir) as case:
        medium = case.find_medium("evidence", str((world["later"] / "B0_later.mp4").resolve()))
        rows = {r.target: r for r in case.results(medium.id) if r.method == "prnu"}
    row = rows["SimCam-B_unit0"]
    assert row.decision == "match" and row.details["hint_used"] is True and row.details["n_positions"] == 1
    assert not [r for name, r in rows.items() if name != "SimCam-B_unit0" and r.decision == "match"]


def test_verify_video_against_device_and_file(world, scanned):
    video = world["seized"] / "dcim" / "SimCam-A_unit1.mp4"
    out = cli("verify", video, "SimCam-A_unit1", "--case", scanned["case"])
    assert "match" in out and "no match" not in out
    out = cli("verify", video, world["refs"] / "SimCam-A_unit0" / "ref0.mp4")
    assert "inconclusive" in out and "no match" not in out  # one reference video cannot exclude a source


def test_html_report_names_frames_and_transform(world, scanned):
    html_path = world["root"] / "report.html"
    cli("report", scanned["case"], "--format", "html", "--out", html_path)
    html = html_path.read_text()
    record = scanned["records"]["SimCam-B_unit0.mp4"]
    assert record["frames_text"] and record["frames_text"].split(",")[0] in html  # e.g. "#0 (0.000 s, keyframe, ...)"
    assert "scaled \u00d70.8" in html and "cropped at row" in html


def test_uncleaned_video_aggregate_scores_like_the_cleaned_one(world, scanned):
    from sensorprint.workflow import SignalOptions
    from sensorprint.workflow.scan import enrolled_fingerprints
    from sensorprint.workflow.signals import match_device, query_signal

    with Case.open(scanned["case"]) as case:
        devices = enrolled_fingerprints(case)
    options = SignalOptions(frame_strategy="even", n_frames=FRAMES)
    scores = {}
    for clean in (True, False):
        _facts, signal = query_signal(world["seized"] / "dcim" / "SimCam-A_unit1.mp4", options, clean_video=clean)
        assert signal.cleaned is clean
        scores[clean] = {name: match_device(signal, refs, None, 60.0).score for name, refs in devices.items()}
    assert max(scores[False], key=scores[False].get) == "SimCam-A_unit1"
    assert 0.8 < scores[False]["SimCam-A_unit1"] / scores[True]["SimCam-A_unit1"] < 1.25
    assert max(v for k, v in scores[False].items() if k != "SimCam-A_unit1") < 30
