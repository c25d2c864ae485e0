"""The JSON report follows docs/report.schema.json, the schema is valid, and it rejects what the contract forbids."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from scipy.stats import norm

from sensorprint.report import write_report
from sensorprint.report.records import REPORT_FORMAT_VERSION
from sensorprint.results import Agreement, Decision, PrnuEvidence, TargetKind
from sensorprint.store import Case, Match
from sensorprint.store.records import FINGERPRINT_SOURCES, MEDIUM_STATUSES
from sensorprint.workflow import run_demo

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "report.schema.json"
EVIL = '<script>alert("x")</script>'
FRAMES = [
    {"index": 0, "time_s": 0.0, "keyframe": True, "weight": 0.9},
    {"index": 12, "time_s": 0.4, "keyframe": False, "weight": 0.0},
]
# Every PrnuEvidence field set, plus a key a later version might write (must be accepted).
FULL_EVIDENCE = {
    "n_positions": 12,
    "log10_p_fa": -25.5,
    "search_stage": "scale search",
    "transform_text": "scaled 0.500, cropped at (10, 20)",
    "fingerprint_shape": [48, 64],
    "fingerprint_id": 2,
    "fingerprint_source": "image",
    "size_key": "32x24",
    "roles_swapped": True,
    "hint_used": True,
    "hint_tried": True,
    "reason": "checked",
    "written_by_a_later_version": {"anything": [1, 2]},
}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(validator: Draft202012Validator, data: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(data)]


def _json_report(case: Case, out: Path, threshold: float = 60.0) -> dict:
    return json.loads(write_report(case, "json", out, threshold=threshold).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> dict:
    """The JSON report of the demo case (simulated cameras enrolled and scanned; PRNU only)."""
    root = tmp_path_factory.mktemp("schema") / "demo"
    summary = run_demo(root, workers=1)
    with Case.open(summary.case) as case:
        return _json_report(case, root / "report.json")


# ---------------------------------------------------------------------- a case with every kind of entry


def _medium(path: str, sha: str | None, **extra) -> dict:
    values = dict(path=path, sha256=sha, size_bytes=1000, mtime_ns=1, kind="image", width=64, height=48)
    return values | dict(orientation=1, metadata={"make": "<b>Evil</b>", "model": "=cmd|' /C calc'!A0"}) | extra


def _prnu(target: str, pce: float | None, decision: str | None = None, **extra) -> Match:
    p_fa = None if pce is None else float(norm.sf(math.sqrt(max(pce, 0.0))))
    decision = decision or ("match" if pce >= 60.0 else "no match")
    return Match("prnu", target, pce, decision, ncc=None if pce is None else 0.01, p_fa=p_fa, **extra)


def _cnn(probabilities: dict, matched: tuple, kind: str = "device", **evidence) -> list[Match]:
    unknown = not matched
    return [
        Match(
            "cnn",
            name,
            p,
            "unknown" if unknown else ("match" if name in matched else "no match"),
            target_kind=kind,
            evidence={"model_id": 1 if kind == "device" else 2, "unknown_threshold": 0.5, **evidence},
        )
        for name, p in probabilities.items()
    ]


def _enroll(case: Case, names: dict) -> None:
    for i, (name, model) in enumerate(names.items()):
        device = case.add_device(name, model=model, notes=f"<i>seized</i> {i}")
        sha = f"{i:02x}" * 32
        case.add_medium(role="reference", device_id=device.id, **_medium(f"/ref/<{i}>.jpg", sha))
        case.save_fingerprint(
            device.id,
            np.ones((48, 64), np.float32),
            n_media=1,
            quality=0.8,
            media_hashes=[sha],
            source="image",
            parameters={"sigma": 3},
        )


def _networks(case: Case, names: dict) -> None:
    record = {"validation": {"file_accuracy": 0.91, "files": 6}, "open_set": {"threshold": 0.5, "rule": "q"}}
    case.save_model("device", "models/device.pt", list(names), record | {"seed": 7, "epochs_run": 3})
    case.save_model("model", "models/model.pt", sorted(set(names.values())), {"validation_accuracy": 0.99})
    case.mark_models_stale("device <X> enrolled after training", target="model")


def _record_evidence(case: Case, run: int) -> None:
    probabilities = {"D1": 0.81, "D2": 0.15, EVIL: 0.04}
    # q1: agree on D1; D2 above the scan's threshold but not the report's (100); the hostile device not comparable.
    case.record_results(
        _medium("/ev/q1.jpg", "a1" * 32),
        [
            _prnu("D1", 812.4, transform={"rotation": 90}),
            _prnu("D2", 75.0),
            _prnu(EVIL, None, "inconclusive", evidence={"reason": "no geometric relation between the sizes"}),
            *_cnn(probabilities, ("D1",)),
            *_cnn({"Nikon D70": 0.97, "<b>Evil</b>": 0.03}, ("Nikon D70",), kind="model"),
        ],
        run_id=run,
    )
    # A video with a hostile name: frames, every PRNU evidence field, a CNN over frames; EVIL not compared.
    case.record_results(
        _medium(f"/ev/{EVIL}.mp4", "b2" * 32, kind="video", width=32, height=24, details={"frames": FRAMES}),
        [
            _prnu("D1", 4.0),
            _prnu("D2", 140.0, transform={"scale": 0.5, "offset": [10, 20]}, evidence=FULL_EVIDENCE),
            *_cnn(probabilities, (), frames=[{"index": 0, "time_s": 0.0, "keyframe": True}], content_caveat="flat"),
        ],
        run_id=run,
    )
    # A recording error: the network marked two classes as match (the report notes it).
    case.record_results(
        _medium("/ev/q3.jpg", "c3" * 32), [_prnu("D1", 3.0), *_cnn(probabilities, ("D1", "D2"))], run_id=run
    )
    case.record_results(
        _medium("/ev/bad.jpg", None, kind=None, width=None, height=None, orientation=None, metadata=None),
        [],
        status="error",
        error="truncated JPEG (ends after 512 bytes); re-acquire the file",
        run_id=run,
    )


@pytest.fixture()
def rich_report(tmp_path) -> dict:
    """The JSON report (threshold 100) of a fake case with CNN entries, a video, an error and hostile names."""
    names = {"D1": "Nikon D70", "D2": "Nikon D70", EVIL: "<b>Evil</b>"}
    with Case.create(tmp_path / "case") as case:
        _enroll(case, names)
        _networks(case, names)
        run = case.start_run("scan", {"threshold": 60.0, "workers": 1})
        _record_evidence(case, run)
        case.finish_run(run, "ok", {"files": 4, "errors": 1})
        case.start_run("scan", {"killed": True})  # a run that never finished: finished and summary null
        return _json_report(case, tmp_path / "report.json", threshold=100.0)


# ---------------------------------------------------------------------- tests


def test_the_schema_is_valid_draft_2020_12(schema):
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]


def test_the_demo_report_follows_the_schema(validator, demo_report):
    assert demo_report["records"] and demo_report["devices"] and demo_report["runs"]
    assert any(r["status"] == "error" for r in demo_report["records"])
    assert any(r["devices"] for r in demo_report["records"])
    assert _errors(validator, demo_report) == []


def test_a_report_with_networks_video_errors_and_html_names_follows_the_schema(validator, rich_report):
    records = {r["path"]: r for r in rich_report["records"]}
    q1, video, q3, bad = (
        records["/ev/q1.jpg"],
        records[f"/ev/{EVIL}.mp4"],
        records["/ev/q3.jpg"],
        records["/ev/bad.jpg"],
    )
    # The report holds every optional part the schema describes, so validating it is not vacuous.
    assert set(q1["cnn"]) == {"device", "model"} and "network_stale" in q1["cnn"]["model"]
    assert q1["devices"]["D2"]["decision_at_scan"] == "match" and q1["devices"][EVIL]["pce"] is None
    assert video["kind"] == "video" and video["frames"] == FRAMES and video["cnn"]["device"]["frames"]
    assert video["devices"]["D2"]["details"]["written_by_a_later_version"] and video["not_compared"] == [EVIL]
    assert "note" in q3["cnn"]["device"]
    assert bad["status"] == "error" and bad["sha256"] is None and bad["agreement"] == "error"
    assert rich_report["runs"][-1]["finished"] is None
    assert _errors(validator, rich_report) == []


def _set(path: tuple, value):
    """A mutation that sets the value at `path` (keys and list indices) of a report."""

    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple):
    """A mutation that deletes the key at `path` of a report."""

    def mutate(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _first_device_entry(data) -> dict:
    """The first PRNU entry (one file against one device) of a report."""
    return next(entry for r in data["records"] for entry in r["devices"].values())


def _set_in_device_entry(key, value):
    return lambda data: _first_device_entry(data).__setitem__(key, value)


def _ok_record(data) -> dict:
    """The first record of a file that could be examined."""
    return next(r for r in data["records"] if r["status"] == "ok")


MUTATIONS = {
    "format_version 2": _set(("format_version",), 2),
    "another format": _set(("format",), "other-report"),
    "an unknown top-level key": _set(("surprise",), 1),
    "no records": _delete(("records",)),
    "a record without sha256": _delete(("records", 0, "sha256")),
    "an upper-case sha256": _set(("records", 0, "sha256"), "AB" * 32),
    "a short sha256": _set(("records", 0, "sha256"), "ab" * 31),
    "a status 'maybe'": _set(("records", 0, "status"), "maybe"),
    "a decision 'maybe'": _set_in_device_entry("decision", "maybe"),
    "a decision_at_scan 'maybe'": _set_in_device_entry("decision_at_scan", "maybe"),
    "a p_fa above 1": _set_in_device_entry("p_fa", 1.5),
    "a PCE as text": _set_in_device_entry("pce", "812"),
    "a device entry without pce": lambda data: _first_device_entry(data).pop("pce"),
    "an unknown key in a device entry": _set_in_device_entry("score", 1.0),
    "fingerprint_shape as text": lambda data: _first_device_entry(data)["details"].__setitem__(
        "fingerprint_shape", "48x64"
    ),
    "an agreement 'maybe'": lambda data: _ok_record(data).__setitem__("agreement", "maybe"),
    "an ok record with agreement error": lambda data: _ok_record(data).__setitem__("agreement", "error"),
    "a cnn entry of an unknown kind": lambda data: _ok_record(data)["cnn"].__setitem__("brand", {}),
    "a time not in UTC": _set(("generated",), "2024-03-01T10:00:00+02:00"),
    "a time that is not a time": _set(("records", 0, "recorded"), "yesterday"),
    "a negative count": _set(("summary", "files"), -1),
    "a threshold of 0": _set(("threshold", "pce"), 0),
    "a fingerprint source 'film'": _set(("devices", 0, "fingerprints", 0, "source"), "film"),
    "a fingerprint without array_sha256": _delete(("devices", 0, "fingerprints", 0, "array_sha256")),
    "an orientation of 9": lambda data: _ok_record(data).__setitem__("orientation", 9),
    "a width of 0": lambda data: _ok_record(data).__setitem__("width", 0),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_the_schema_rejects_a_report_that_breaks_the_contract(validator, demo_report, name):
    data = copy.deepcopy(demo_report)
    MUTATIONS[name](data)
    assert _errors(validator, data), f"the schema accepted a report with {name}"


def test_the_schema_rejects_a_broken_network_entry(validator, rich_report):
    for key, value in (("label", None), ("probability", 2.0), ("model_id", "1"), ("note", None)):
        data = copy.deepcopy(rich_report)
        entry = next(r["cnn"]["device"] for r in data["records"] if r["cnn"])
        entry[key] = value
        assert _errors(validator, data), f"accepted cnn {key}={value!r}"
    data = copy.deepcopy(rich_report)
    del next(r for r in data["records"] if r["cnn"])["cnn"]["device"]["probabilities"]
    assert _errors(validator, data)


def _enum(schema: dict, *path: str) -> list:
    node = schema
    for key in path:
        node = node[key]
    return node["enum"]


def test_the_schema_enums_are_the_codes_values(schema):
    defs = schema["$defs"]
    assert _enum(defs, "decision") == [str(d) for d in Decision]
    assert _enum(defs, "record", "properties", "agreement") == [str(a) for a in Agreement]
    assert list(defs["record"]["properties"]["cnn"]["properties"]) == [str(k) for k in TargetKind]
    assert _enum(defs, "model", "properties", "target") == [str(k) for k in TargetKind]
    assert _enum(defs, "record", "properties", "status") == list(MEDIUM_STATUSES)
    assert _enum(defs, "fingerprint", "properties", "source") == list(FINGERPRINT_SOURCES)
    assert _enum(defs, "prnu_evidence", "properties", "fingerprint_source") == list(FINGERPRINT_SOURCES)
    assert schema["properties"]["format_version"]["const"] == REPORT_FORMAT_VERSION


def test_the_schema_describes_every_prnu_evidence_field(schema):
    described = set(schema["$defs"]["prnu_evidence"]["properties"])
    assert described == {f.name for f in fields(PrnuEvidence)} - {"extra"}
    assert schema["$defs"]["prnu_evidence"]["additionalProperties"] is True


def _properties(node, where="#"):
    """(location, subschema) of every property the schema declares, at any depth.

    Conditional subschemas (if/then/else) restate properties declared elsewhere: not counted.
    """
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", sub
        for key, sub in node.items():
            if key not in ("if", "then", "else"):
                yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


def test_every_property_says_what_it_means(schema):
    found = list(_properties(schema))
    assert len(found) > 100
    missing = [where for where, sub in found if not sub.get("description")]
    assert missing == []
