"""Reports of a small fake case: JSON, CSV and HTML say the same thing, escape everything, hide nothing."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from scipy.stats import norm

from sensorprint.errors import CaseError
from sensorprint.report import (
    describe_transform,
    false_alarm_per_position,
    report_data,
    report_records,
    write_report,
)
from sensorprint.store import Case, Match

EVIL = '<script>alert("x")</script>'
FRAMES = [
    {"index": 0, "time_s": 0.0, "keyframe": True, "weight": 0.9},
    {"index": 12, "time_s": 0.4, "keyframe": False, "weight": 0.0},
    {"index": 48, "time_s": 1.6, "keyframe": False, "weight": 0.75},
]
SHA = {name: f"{i:02x}" * 32 for i, name in enumerate(["ref1", "ref2", "ref3", "q1", "q2", "q3", "q4", "q5", "bad"])}


def _medium(path, sha, **extra):
    fields = dict(
        path=path,
        sha256=sha,
        size_bytes=1000,
        mtime_ns=1,
        kind="image",
        width=64,
        height=48,
        orientation=1,
        metadata={},
    )
    fields.update(extra)
    return fields


def _prnu(target, pce, threshold=60.0, **extra):
    return Match(
        "prnu",
        target,
        pce,
        "match" if pce >= threshold else "no match",
        ncc=0.01,
        p_fa=float(norm.sf(math.sqrt(max(pce, 0.0)))),
        **extra,
    )


def _cnn(probabilities, label, kind="device", **details):
    return [
        Match(
            "cnn",
            name,
            p,
            "match" if name == label else ("unknown" if label is None else "no match"),
            target_kind=kind,
            evidence={"model_id": 1, "unknown_threshold": 0.5, **details},
        )
        for name, p in probabilities.items()
    ]


CAVEAT = "the file's flat area (18.0%) is smaller than every reference file's (at least 99.8%)"


@pytest.fixture()
def fake_case(tmp_path):
    """Three devices (one with a hostile name), five evidence files covering every verdict, one error."""
    case = Case.create(tmp_path / "case")
    run = case.start_run("scan", {"threshold": 60.0, "workers": 2, "frames": "5 random, seed 0"})
    devices = {"D1": "Nikon D70", "D2": "Nikon D70", EVIL: "Evil $cam$"}
    for (name, model), ref in zip(devices.items(), ["ref1", "ref2", "ref3"]):
        device = case.add_device(name, model=model)
        case.add_medium(role="reference", device_id=device.id, **_medium(f"/ref/{ref}.jpg", SHA[ref]))
        case.save_fingerprint(
            device.id,
            np.ones((48, 64), np.float32),
            n_media=1,
            quality=0.8,
            media_hashes=[SHA[ref]],
            source="image",
            parameters={"sigma": 3},
        )
    case.save_model(
        "device",
        "models/device.pt",
        list(devices),
        {
            "validation": {"file_accuracy": 0.91, "files": 6},
            "open_set": {"threshold": 0.5, "rule": "0.05 quantile of the held-out true-class scores"},
            "seed": 7,
            "epochs_run": 12,
            "config": {"network": "mobilenetv3_small"},
        },
    )
    case.save_model("model", "models/model.pt", ["Nikon D70", "Evil $cam$"], {"validation_accuracy": 0.99})
    # q1: PRNU and CNN agree on D1; D2 also above the threshold (same model): must be shown.
    case.record_results(
        _medium("/ev/q1.jpg", SHA["q1"]),
        [
            _prnu("D1", 812.4, transform={"rotation": 90}),
            _prnu("D2", 75.0),
            _prnu(EVIL, 2.0),
            *_cnn({"D1": 0.93, "D2": 0.05, EVIL: 0.02}, "D1"),
            *_cnn({"Nikon D70": 0.97, "Evil $cam$": 0.03}, "Nikon D70", kind="model"),
        ],
        run_id=run,
    )
    # q2 (a video): PRNU says D2, CNN says D1: a disagreement that must lead the verdict.
    case.record_results(
        _medium("/ev/q2.mp4", SHA["q2"], kind="video", details={"frames": FRAMES}),
        [
            _prnu("D1", 4.0),
            _prnu(
                "D2",
                140.0,
                transform={"scale": 0.5, "offset": [10, 20]},
                evidence={"n_positions": 12, "fingerprint_id": 2},
            ),
            _prnu(EVIL, -3.0),
            *_cnn({"D1": 0.81, "D2": 0.15, EVIL: 0.04}, "D1"),
        ],
        run_id=run,
    )
    # q3: nothing matches, CNN answers "unknown": they agree there is no enrolled source.
    case.record_results(
        _medium("/ev/q3.jpg", SHA["q3"]),
        [
            _prnu("D1", 3.0),
            _prnu("D2", 1.0),
            _prnu(EVIL, 0.5),
            *_cnn({"D1": 0.4, "D2": 0.35, EVIL: 0.25}, None),
        ],
        run_id=run,
    )
    # q4: PRNU only, the hostile device matches; the file name is a spreadsheet formula.
    case.record_results(
        _medium('=HYPERLINK("http://x")', SHA["q4"]),
        [
            _prnu("D1", 2.0),
            _prnu("D2", 3.0),
            _prnu(EVIL, 65.0),
        ],
        run_id=run,
    )
    # q5: PRNU match, CNN unknown: still a disagreement; the file is unlike the network's references.
    case.record_results(
        _medium("/ev/q5.jpg", SHA["q5"]),
        [
            _prnu("D1", 300.0),
            _prnu("D2", 2.0),
            _prnu(EVIL, 1.0),
            *_cnn({"D1": 0.45, "D2": 0.3, EVIL: 0.25}, None, content_caveat=CAVEAT),
        ],
        run_id=run,
    )
    case.record_results(
        _medium(
            "/ev/bad.jpg",
            SHA["bad"],
            status="error",
            error="truncated JPEG (ends after 512 bytes); re-acquire the file",
        ),
        [],
        run_id=run,
    )
    case.finish_run(run, "ok", {"files": 6, "errors": 1})
    yield case
    case.close()


def _by_path(records):
    return {r["path"]: r for r in records}


def test_records_best_device_verdicts_and_disagreements(fake_case):
    records = _by_path(report_records(fake_case, threshold=60.0))
    assert len(records) == 6
    q1, q2, q3, q5 = (records[f"/ev/{n}"] for n in ("q1.jpg", "q2.mp4", "q3.jpg", "q5.jpg"))
    q4 = records['=HYPERLINK("http://x")']
    assert q1["best_device"] == "D1" and q1["best_pce"] == pytest.approx(812.4)
    assert q1["matches"] == ["D1", "D2"]
    assert q1["verdict"].startswith("PRNU: D1 (PCE 812)") and q1["verdict"].endswith("agree")
    assert "also above threshold: D2 (PCE 75.0)" in q1["verdict"] and "CNN: D1 (0.93)" in q1["verdict"]
    assert q1["agreement"] == "agree" and q1["cnn"]["model"]["label"] == "Nikon D70"
    assert q1["devices"]["D1"]["transform_text"] == "rotated 90\u00b0 counter-clockwise"
    assert q2["agreement"] == "disagree" and q2["verdict"].startswith("DISAGREE: PRNU: D2 (PCE 140)")
    assert "CNN: D1 (0.81)" in q2["verdict"]
    assert q2["frames"] == FRAMES
    assert q2["frames_text"] == (
        "#0 (0.000 s, keyframe, weight 0.90), #12 (0.400 s, not used: dark, saturated or "
        "duplicate), #48 (1.600 s, weight 0.75)"
    )
    assert (
        q2["devices"]["D2"]["transform_text"]
        == "scaled \u00d70.5, cropped at row 10, column 20 of the scaled fingerprint"
    )
    assert q3["best_device"] is None and q3["agreement"] == "agree"
    assert q3["cnn"]["device"]["label"] == "unknown" and q3["cnn"]["device"]["top"] == "D1"
    assert q3["verdict"].startswith("PRNU: no match (highest D1, PCE 3.0, p_fa 0.042); CNN: unknown camera")
    assert q4["best_device"] == EVIL and q4["agreement"] == "prnu only" and "CNN: not run" in q4["verdict"]
    assert q5["agreement"] == "disagree" and "CNN: unknown camera" in q5["verdict"]
    assert f"[{CAVEAT}]" in q5["verdict"] and "flat area" not in q1["verdict"]
    bad = records["/ev/bad.jpg"]
    assert bad["status"] == "error" and bad["best_device"] is None and bad["devices"] == {}
    assert bad["verdict"] == "ERROR: truncated JPEG (ends after 512 bytes); re-acquire the file"


def test_a_stricter_report_threshold_redecides_and_keeps_the_scan_decision(fake_case):
    records = _by_path(report_records(fake_case, threshold=100.0))
    q1 = records["/ev/q1.jpg"]
    assert q1["matches"] == ["D1"]
    assert q1["devices"]["D2"]["decision"] == "no match"
    assert q1["devices"]["D2"]["decision_at_scan"] == "match"
    assert "decision_at_scan" not in q1["devices"]["D1"]
    assert records['=HYPERLINK("http://x")']["best_device"] is None  # PCE 65 < 100
    kept = _by_path(report_records(fake_case))  # no threshold: the scan's decisions
    assert kept['=HYPERLINK("http://x")']["best_device"] == EVIL


def test_json_report(fake_case, tmp_path):
    out = write_report(fake_case, "json", tmp_path / "r.json", threshold=60.0)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["format"] == "sensorprint-report" and data["case"] == str(fake_case.root)
    assert data["threshold"]["pce"] == 60.0
    assert data["threshold"]["p_fa_per_position"] == pytest.approx(norm.sf(math.sqrt(60.0)), rel=1e-9)
    assert data["summary"] == {
        "files": 6,
        "errors": 1,
        "matched": 4,
        "several_devices_above_threshold": 1,
        "disagreements": 2,
    }
    devices = {d["name"]: d for d in data["devices"]}
    assert set(devices) == {"D1", "D2", EVIL}
    assert devices["D1"]["reference_media"][0]["sha256"] == SHA["ref1"]
    assert devices["D1"]["fingerprints"][0]["quality"] == pytest.approx(0.8)
    assert devices["D1"]["fingerprints"][0]["media_hashes"] == [SHA["ref1"]]
    (run,) = data["runs"]
    assert run["parameters"]["workers"] == 2 and run["tool_version"] and run["status"] == "ok"
    assert {m["target"] for m in data["models"]} == {"device", "model"}
    device_net = next(m for m in data["models"] if m["target"] == "device")
    assert device_net["summary"]["validation_accuracy"] == 0.91 and device_net["summary"]["unknown_threshold"] == 0.5
    assert next(m for m in data["models"] if m["target"] == "model")["summary"]["validation_accuracy"] == 0.99
    assert data["audit"]["counts"]["results recorded"] == 6 and data["audit"]["counts"]["device added"] == 3
    assert [e["details"]["device"] for e in data["audit"]["events"] if e["action"] == "fingerprint saved"] == [
        "D1",
        "D2",
        EVIL,
    ]
    records = _by_path(data["records"])
    q2 = records["/ev/q2.mp4"]
    for key in ("path", "sha256", "kind", "status", "error", "best_device", "devices", "frames", "cnn", "verdict"):
        assert key in q2
    assert q2["sha256"] == SHA["q2"] and q2["kind"] == "video" and q2["error"] is None
    assert set(q2["devices"]) == {"D1", "D2", EVIL}
    entry = q2["devices"]["D2"]
    assert entry["pce"] == 140.0 and entry["decision"] == "match"
    assert entry["p_fa"] == pytest.approx(norm.sf(math.sqrt(140.0)))
    assert entry["transform"] == {"offset": [10, 20], "scale": 0.5}
    assert q2["cnn"]["device"]["probabilities"] == {"D1": 0.81, "D2": 0.15, EVIL: 0.04}


def test_csv_report(fake_case, tmp_path):
    out = write_report(fake_case, "csv", tmp_path / "r.csv", threshold=60.0)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 5 * 3 + 1  # five scanned files × three devices, plus the unreadable file
    q2 = [r for r in rows if r["path"] == "/ev/q2.mp4"]
    assert {r["device"]: float(r["pce"]) for r in q2} == {"D1": 4.0, "D2": 140.0, EVIL: -3.0}
    d2 = next(r for r in q2 if r["device"] == "D2")
    assert d2["decision"] == "match" and d2["is_best"] == "True" and d2["best_device"] == "D2"
    assert d2["frames"] == "0 12 48" and d2["cnn_device_label"] == "D1" and d2["agreement"] == "disagree"
    assert d2["verdict"].startswith("DISAGREE") and d2["sha256"] == SHA["q2"]
    assert float(d2["cnn_this_device_probability"]) == pytest.approx(0.15)
    (bad,) = [r for r in rows if r["path"] == "/ev/bad.jpg"]
    assert bad["status"] == "error" and bad["error"].startswith("truncated JPEG") and bad["device"] == ""
    # A file name that a spreadsheet would run as a formula is neutralised.
    assert any(r["path"] == '\'=HYPERLINK("http://x")' for r in rows)
    assert not any(r["path"].startswith("=") for r in rows)
    assert next(r for r in q2 if r["device"] == EVIL)["pce"] == "-3.0"  # numbers are left alone


class _Collector(HTMLParser):
    """Collects tags and text, and checks that every element is closed in order."""

    VOID = {"meta", "br", "img", "link", "hr", "input"}

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.misnested: list[tuple[str, tuple[int, int]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.misnested.append((tag, self.getpos()))

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_is_one_escaped_self_contained_file(fake_case, tmp_path):
    out = write_report(fake_case, "html", tmp_path, threshold=60.0)
    assert out == tmp_path / "report.html"
    html = out.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    text = "".join(parser.text)
    assert parser.misnested == [] and parser.open == []
    # Escaped: the hostile device name is text, never markup; the report has no script at all.
    assert "script" not in parser.tags and "<script" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert EVIL in text
    # Self-contained: no external resources, the figure is an embedded PNG.
    assert not re.search(r'(src|href)="(?!data:|#)', html)
    (png,) = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")
    # The summary table and the evidence.
    assert parser.tags.count("table") >= 4
    for heading in (
        "Enrolled devices",
        "Summary",
        "Files that could not be read",
        "Evidence for each match",
        "Runs",
        "CNN networks",
        "Audit log",
    ):
        assert heading in text
    for sha in SHA.values():
        assert sha in text
    assert "PCE \u2265 60" in text and "false-alarm probability" in text
    assert "truncated JPEG (ends after 512 bytes); re-acquire the file" in text
    assert "DISAGREE: PRNU: D2 (PCE 140); CNN: D1 (0.81)" in text
    assert "scaled \u00d70.5, cropped at row 10, column 20 of the scaled fingerprint (12 positions searched)" in text
    assert "#12 (0.400 s, not used: dark, saturated or duplicate)" in text  # frames used for the video
    assert '"frames": "5 random, seed 0"' in text  # run parameters
    assert fake_case.root.as_posix() in text
    assert "0.910 (6)" in text and "0.05 quantile of the held-out true-class scores" in text
    assert "mobilenetv3_small, 12 epochs, seed 7" in text


def test_report_refuses_bad_formats_and_folders(fake_case, tmp_path):
    with pytest.raises(CaseError, match="unknown report format"):
        write_report(fake_case, "docx", tmp_path / "r.docx", threshold=60.0)  # pdf is a format now
    with pytest.raises(CaseError, match="positive number"):
        write_report(fake_case, "json", tmp_path / "r.json", threshold=-1.0)
    with pytest.raises(CaseError, match="does not exist"):
        write_report(fake_case, "json", tmp_path / "missing" / "r.json", threshold=60.0)


def test_report_of_an_empty_case(tmp_path):
    with Case.create(tmp_path / "empty") as case:
        for fmt in ("html", "json", "csv"):
            out = write_report(case, fmt, tmp_path / f"r.{fmt}", threshold=60.0)
            assert out.stat().st_size > 0
        assert json.loads((tmp_path / "r.json").read_text())["records"] == []
        assert "No evidence file has been scanned" in (tmp_path / "r.html").read_text()


def test_threshold_false_alarm_matches_the_normal_tail():
    for pce in (20.0, 60.0, 100.0, 400.0):
        assert false_alarm_per_position(pce) == pytest.approx(norm.sf(math.sqrt(pce)), rel=1e-9)
    assert 4e-15 < false_alarm_per_position(60.0) < 6e-15


@pytest.mark.parametrize(
    "transform, text",
    [
        (None, "aligned (no rotation, mirror, scale or crop)"),
        (
            {"rotation": 0, "flip": False, "scale": 1.0, "offset": [0, 0]},
            "aligned (no rotation, mirror, scale or crop)",
        ),
        ({"rot90": 3}, "rotated 270\u00b0 counter-clockwise"),
        ({"rotation": 90, "flip": True}, "mirrored left-right, rotated 90\u00b0 counter-clockwise"),
        (
            {"offset": [109, 204], "flip": False, "scale": 1.0, "rotation": 0},
            "cropped at row 109, column 204 of the fingerprint",
        ),
        (
            {"crop_offset": {"y": 5, "x": 7}, "scale": 0.625},
            "scaled \u00d70.625, cropped at row 5, column 7 of the scaled fingerprint",
        ),
        ({"scale": 0.5, "interp": "bilinear"}, "scaled \u00d70.5, interp=bilinear"),
    ],
)
def test_describe_transform(transform, text):
    assert describe_transform(transform) == text


def test_report_data_reads_one_snapshot(fake_case):
    data = report_data(fake_case, threshold=60.0)
    assert len(data["records"]) == data["summary"]["files"] == 6


def test_devices_not_compared_and_stale_networks_are_said(fake_case):
    late = fake_case.add_device("D4", model="Nikon D200")
    fake_case.save_fingerprint(
        late.id,
        np.ones((48, 64), np.float32),
        n_media=1,
        quality=0.5,
        media_hashes=["ee" * 32],
        source="image",
        parameters={},
    )
    fake_case.add_device("D5")  # no fingerprint (nothing readable): cannot be compared, not listed
    fake_case.mark_models_stale("device D4 enrolled")
    records = _by_path(report_records(fake_case, threshold=60.0))
    q1 = records["/ev/q1.jpg"]
    assert q1["not_compared"] == ["D4"]
    assert "[not compared with: D4]" in q1["verdict"]
    assert q1["cnn"]["device"]["network_stale"] == "device D4 enrolled"
    assert "[camera-device network is stale: device D4 enrolled]" in q1["verdict"]
    assert "[camera-model network is stale: device D4 enrolled]" in q1["verdict"]
    assert records["/ev/bad.jpg"]["not_compared"] == []


def test_figures_read_the_same_in_every_place():
    from sensorprint.report.numbers import count_text, pce_text, probability_text

    assert [pce_text(v) for v in (None, 7.25, 1234.4)] == ["n/a", "7.2", "1,234"]
    assert [probability_text(v) for v in (0.0, 3.2e-9, 0.25)] == ["< 1e-300", "3.2e-09", "0.250"]
    # A per-frame search counts ~1e17 positions: written so that it can be read.
    assert count_text(1_048_576) == "1,048,576" and count_text(1.3e17) == "1.3e+17"
