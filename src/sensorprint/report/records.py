"""What a report says, as plain dicts: one record per scanned evidence file, and the case around them.

The HTML, JSON and CSV writers all render these same dicts, so the three
formats can never disagree. Decisions are re-derived at the report's PCE
threshold (a report may be stricter than the scan); when that changes a stored
decision, the record keeps the scan's decision beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD, false_alarm_probability
from sensorprint.report.numbers import pce_text, probability_text, share_text
from sensorprint.results import (
    INCONCLUSIVE_ANSWER,
    NO_SOURCE,
    UNKNOWN_LABEL,
    Agreement,
    CnnAnswer,
    FileResult,
    Match,
    Verdict,
    cnn_answers,
    strength_of_evidence,
)
from sensorprint.store import Case, tool_version
from sensorprint.store.jsonvalues import finite_or_none
from sensorprint.workflow.review import file_results, stale_reason

DEFAULT_THRESHOLD = DEFAULT_PCE_THRESHOLD
"""The customary PCE threshold (Goljan, Fridrich & Filler, SPIE 2009): `prnu.DEFAULT_PCE_THRESHOLD`."""

REPORT_FORMAT_VERSION = 1

_BULK_AUDIT_ACTIONS = frozenset({"results recorded", "medium recorded", "transform hint set"})


def false_alarm_per_position(pce_threshold: float) -> float:
    """Q(√PCE): the chance that one searched position of an unrelated pair reaches the threshold (Goljan 2009)."""
    return false_alarm_probability(pce_threshold, 1) if pce_threshold > 0 else 1.0


def threshold_meaning(pce_threshold: float) -> str:
    """One paragraph for examiners: what the threshold means in false-alarm terms."""
    q = false_alarm_per_position(pce_threshold)
    return (
        f"A file is declared to come from a device when the peak-to-correlation energy (PCE) of its noise "
        f"residual against the device's fingerprint is at least {pce_threshold:g}. Under the standard model "
        f"(Goljan 2009) an unrelated file reaches this at one searched position with probability "
        f"Q(\u221a{pce_threshold:g}) = {q:.1e}; a search over N positions (rotations, crop offsets, scales) "
        f"multiplies this by about N. Each decision lists its own false-alarm probability (p_fa) for the "
        f"search actually made. This model is optimistic for real cameras: units of one model share "
        f"artefacts, and an empirical false-positive rate of 5.9e-3 at PCE 60 has been reported for "
        f"under-exposed phone images; treat decisions near the threshold with care."
    )


def describe_transform(transform: Mapping[str, Any] | None) -> str:
    """A human-readable line for the geometric transform found between a query and a fingerprint.

    Follows `sensorprint.prnu.geometry.Transform` (Goljan & Fridrich, SPIE 2008): the
    query is mirrored left-right (flip), rotated counter-clockwise by a multiple of
    90°, and lies at `offset` (row, column of its top-left corner) in the fingerprint
    resized by `scale`. Parts are named in that order; keys it does not know are
    listed as key=value so nothing is hidden.
    """
    aligned = "aligned (no rotation, mirror, scale or crop)"
    if not transform:
        return aligned
    parts: list[str] = []
    rest = dict(transform)

    def take(*names: str) -> Any:
        for name in names:
            if name in rest:
                return rest.pop(name)
        return None

    flip = take("flip", "flipped", "mirror", "mirrored")
    if flip:
        parts.append("mirrored left-right" if flip is True else f"mirrored ({flip})")
    degrees = take("rotation", "rotation_deg", "rotate", "angle")
    quarter_turns = take("rot90", "quarter_turns", "k")
    if degrees is None and quarter_turns is not None:
        degrees = 90 * int(quarter_turns)
    if degrees is not None and float(degrees) % 360 != 0:
        parts.append(f"rotated {float(degrees) % 360:g}\u00b0 counter-clockwise")
    scale = take("scale", "scale_factor", "zoom")
    scaled = scale is not None and abs(float(scale) - 1.0) > 1e-9
    if scaled:
        parts.append(f"scaled \u00d7{float(scale):.4g}")
    offset = take("offset", "crop_offset", "crop", "shift")
    if offset is not None:
        if isinstance(offset, Mapping):
            y = offset.get("y", offset.get("row", offset.get("dy")))
            x = offset.get("x", offset.get("col", offset.get("dx")))
        elif isinstance(offset, (list, tuple)) and len(offset) == 2:
            y, x = offset
        else:
            y = x = None
        if y is None or x is None:
            parts.append(f"offset {offset}")
        elif y or x:
            where = "the scaled fingerprint" if scaled else "the fingerprint"
            parts.append(f"cropped at row {y}, column {x} of {where}")
    for key in sorted(rest):
        value = rest[key]
        if value not in (None, False, 0, "", [], {}):
            parts.append(f"{key}={value}")
    return ", ".join(parts) if parts else aligned


def describe_frames(frames: list[Any] | None) -> str:
    """The frames a video's result rests on, e.g. "#0 (0.000 s, keyframe), #48 (1.600 s, weight 0.42)".

    Frames are frame indices, or dicts with 'index', 'time_s', 'keyframe', 'weight'
    as the scan records them; a frame of weight 0 was read but not used (dark,
    saturated or a duplicate of the previous one), which is said.
    """
    if not frames:
        return ""
    parts = []
    for frame in frames:
        if not isinstance(frame, Mapping):
            parts.append(f"#{frame}")
            continue
        notes = []
        if frame.get("time_s") is not None:
            notes.append(f"{float(frame['time_s']):.3f} s")
        if frame.get("keyframe"):
            notes.append("keyframe")
        weight = frame.get("weight")
        if weight is not None:
            notes.append(
                "not used: dark, saturated or duplicate" if float(weight) <= 0 else f"weight {float(weight):.2f}"
            )
        index = frame.get("index", "?")
        parts.append(f"#{index}" + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts)


def describe_format(metadata: Mapping[str, Any] | None, kind: str | None) -> str:
    """What a phone's file format says about how it was recorded, in words ("" when nothing is notable).

    Codec and bit depth, HDR transfer (HLG / PQ) and primaries, the display rotation stored
    in the container (the pixels are analysed as stored), slow motion and high or variable
    frame rate, and the other half of a Live Photo (its still beside the clip, or the clip
    beside the still), with Apple's content identifier when the clip carries one.
    """
    m = metadata or {}
    parts: list[str] = []
    if kind == "video":
        codec = str(m.get("codec") or "").upper()
        if codec:
            parts.append(f"{codec} {m.get('bit_depth') or 8}-bit")
        if m.get("hdr"):
            parts.append(
                f"HDR {m['hdr']} ({m.get('color_transfer')}, {m.get('color_primaries') or 'primaries untagged'})"
            )
        if m.get("rotation_deg"):
            parts.append(f"display rotation {m['rotation_deg']}° in the container (pixels analysed as stored)")
        if m.get("slow_motion"):
            captured = m.get("capture_fps") or m.get("fps")
            parts.append(f"slow motion (captured at {float(captured):g} fps)" if captured else "slow motion")
        elif m.get("high_frame_rate") and m.get("fps"):
            parts.append(f"high frame rate ({float(m['fps']):g} fps)")
        if m.get("variable_frame_rate"):
            parts.append("variable frame rate (frame times from the timestamps)")
        if m.get("live_photo_still"):
            identifier = f", content identifier {m['content_identifier']}" if m.get("content_identifier") else ""
            parts.append(f"Live Photo clip of the still {m['live_photo_still']}{identifier}")
    elif m.get("live_photo_video"):
        parts.append(f"Live Photo still; its clip is {m['live_photo_video']}")
    return "; ".join(parts)


def frame_indices(frames: list[Any] | None) -> list[Any]:
    """Just the frame indices (for one CSV cell)."""
    return [f.get("index") if isinstance(f, Mapping) else f for f in frames or []]


def _transform_text(row: Match) -> str:
    if row.evidence.frame_transforms:  # matched frame by frame (stabilised video): a transform per frame
        return row.evidence.transform_text or "a transform per frame"
    text = describe_transform(row.transform)
    if row.evidence.roles_swapped:
        # The query was larger than the fingerprint (an image against a video-enrolled device):
        # the fingerprint was searched inside the query, so the transform is the fingerprint's.
        text += " (fingerprint located inside the larger query)"
    return text


def _prnu_entries(result: FileResult, changed: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for device, row in result.prnu().items():
        entry: dict[str, Any] = {
            "pce": row.score,
            "ncc": row.ncc,
            "p_fa": row.p_fa,
            "decision": str(row.decision),
            "transform": row.transform,
            "transform_text": _transform_text(row),
            "details": row.details,
            "run_id": row.run_id,
            # Why no comparison could be made (e.g. no geometric relation between the sizes).
            "reason": row.evidence.reason,
        }
        # the p_fa checked against the case's wrong pairs (which of Gaussian and empirical ruled), and why a
        # match became inconclusive: a device whose fingerprint correlates with this one's
        for key in ("empirical_p_fa", "model_twin"):
            if getattr(row.evidence, key):
                entry[key] = getattr(row.evidence, key)
        if row.evidence.frame_transforms:  # a video matched frame by frame (stabilised video)
            entry["stabilisation"] = str(row.evidence.stabilisation) if row.evidence.stabilisation else None
            entry["frames_decided"] = row.evidence.frames_decided
            entry["frame_transforms"] = [dict(t) for t in row.evidence.frame_transforms]
        if stale_reason(row):  # computed with a fingerprint corrected since: shown, not counted
            entry["stale"] = stale_reason(row)
        if device in changed:
            entry["decision_at_scan"] = str(changed[device])
        entries[device] = entry
    return entries


def _cnn_entry(answer: CnnAnswer, stale_reason: str | None) -> dict[str, Any]:
    """One network's answer for one file, as the report shows it."""
    entry = {
        "label": answer.label,
        "probability": answer.probability,
        "top": answer.top,
        "top_probability": answer.top_probability,
        "probabilities": dict(answer.probabilities),
        "unknown_threshold": answer.evidence.unknown_threshold,
        "model_id": answer.evidence.model_id,
        "frames": answer.evidence.frames,
        "caveat": answer.evidence.content_caveat,
        "run_id": answer.run_id,
    }
    if answer.several_matched:  # a network answers one class; several 'match' rows are a recording error
        entry["note"] = "several classes marked as match: " + ", ".join(answer.several_matched)
    if stale_reason is not None:
        entry["network_stale"] = stale_reason
    return entry


def _strongest(result: FileResult) -> Match | None:
    """The PRNU comparison with the strongest evidence (lowest false-alarm probability of the search made)."""
    rows = [m for m in result.prnu().values() if m.score is not None and not stale_reason(m)]
    return min(rows, key=strength_of_evidence) if rows else None


def _prnu_words(record: Mapping[str, Any], verdict: Verdict, strongest: Match | None = None) -> str:
    devices: Mapping[str, Any] = record["devices"]
    stale = sorted(name for name, entry in devices.items() if entry.get("stale"))
    stale_text = f" [stale, not counted: {', '.join(stale)} (fingerprint corrected since; scan again)]" if stale else ""
    if verdict.prnu is None:
        return "PRNU: no current result" + stale_text if stale else "PRNU: not run"
    if verdict.prnu in (NO_SOURCE, INCONCLUSIVE_ANSWER):
        text = f"PRNU: {verdict.prnu}"
        if strongest is not None:
            text += f" (highest {strongest.target}, PCE {pce_text(strongest.score)}, p_fa {probability_text(strongest.p_fa)})"
        if verdict.prnu == INCONCLUSIVE_ANSWER:
            weak = sorted(n for n, v in devices.items() if v["decision"] == "inconclusive" and not v.get("stale"))
            text += " [cannot exclude: " + ", ".join(weak) + "]"
    else:
        text = f"PRNU: {verdict.prnu} (PCE {pce_text(devices[verdict.prnu]['pce'])})"
        others = [name for name in verdict.prnu_matches if name != verdict.prnu]
        if others:
            listed = ", ".join(f"{n} (PCE {pce_text(devices[n]['pce'])})" for n in others)
            text += f" [also above threshold: {listed}]"
    if record.get("not_compared"):
        text += " [not compared with: " + ", ".join(record["not_compared"]) + "]"
    return text + stale_text


def _cnn_words(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "CNN: not run"
    if entry["label"] != UNKNOWN_LABEL:
        text = f"CNN: {entry['label']} ({share_text(entry['probability'])})"
    else:
        top = f" (top {entry['top']}, {share_text(entry['top_probability'])})" if entry["top"] else ""
        text = "CNN: unknown camera" + top
    if entry.get("network_stale"):
        text += f" [camera-device network is stale: {entry['network_stale']}]"
    if entry.get("caveat"):
        text += f" [{entry['caveat']}]"
    return text


def _model_words(record: Mapping[str, Any], verdict: Verdict) -> str:
    device, model = record["cnn"].get("device"), record["cnn"].get("model")
    if not model:
        return ""
    label = model["label"]
    text = f"; CNN model: {label}" + (f" ({share_text(model['probability'])})" if label != UNKNOWN_LABEL else "")
    if model.get("network_stale"):
        text += f" [camera-model network is stale: {model['network_stale']}]"
    if model.get("caveat") and not (device and device.get("caveat")):
        text += f" [{model['caveat']}]"
    if verdict.model_conflict:
        text += f" vs {verdict.prnu} enrolled as {verdict.model_conflict}"
    return text


def verdict_text(record: Mapping[str, Any], verdict: Verdict, strongest: Match | None = None) -> str:
    """The fused verdict of one record in words; any disagreement between the methods leads the text.

    strongest: the PRNU comparison with the lowest false-alarm probability, named as the
    "highest" device when none matched (a wide search never outranks an aligned one).
    """
    if verdict.agreement == Agreement.ERROR:
        return f"ERROR: {record['error'] or 'unreadable'}"
    prnu, cnn, model = (
        _prnu_words(record, verdict, strongest),
        _cnn_words(record["cnn"].get("device")),
        _model_words(record, verdict),
    )
    stale = any(e.get("stale") for e in record["devices"].values())  # stale results: say so, not "no result"
    if verdict.prnu is None and verdict.cnn_says is None and not stale:
        return "no result" if not model else f"PRNU: not run; CNN device: not run{model}"
    text = f"{prnu}; {cnn}{model}"
    if verdict.agreement == Agreement.DISAGREE:
        return f"DISAGREE: {text}"
    return f"{text} \u2014 agree" if verdict.agreement == Agreement.AGREE else text


def _medium_record(result: FileResult, changed: Mapping[str, str], stale_models: Mapping[int, str]) -> dict[str, Any]:
    medium = result.medium
    devices = _prnu_entries(result, changed)
    best = result.best_device
    cnn = {
        str(kind): _cnn_entry(answer, stale_models.get(answer.evidence.model_id))
        for kind, answer in cnn_answers(result.matches).items()
    }
    details = medium.details or {}
    record: dict[str, Any] = {
        "id": medium.id,
        "path": medium.path,
        "sha256": medium.sha256,
        "size_bytes": medium.size_bytes,
        "kind": medium.kind,
        "width": medium.width,
        "height": medium.height,
        "orientation": medium.orientation,
        "status": medium.status,
        "error": medium.error,
        "best_device": best,
        "best_pce": devices[best]["pce"] if best else None,
        "best_p_fa": devices[best]["p_fa"] if best else None,
        "matches": list(result.verdict.prnu_matches),
        "devices": devices,
        # Enrolled devices with a fingerprint that this file was not (yet) compared with:
        # "no match" must never be read into a comparison that was not made.
        "not_compared": list(result.not_compared),
        "frames": details.get("frames"),
        "frame_times": details.get("frame_times"),
        "frames_text": describe_frames(details.get("frames")),
        "cnn": cnn,
        "metadata": medium.metadata,
        "format_text": describe_format(medium.metadata, medium.kind),
        "details": medium.details,
        "run_id": medium.run_id,
        "recorded": medium.updated,
    }
    record["verdict"] = verdict_text(record, result.verdict, _strongest(result))
    record["agreement"] = str(result.verdict.agreement)
    return record


def summarise_model_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a training record an examiner needs (sensorprint.learn's record; older flat keys accepted)."""
    validation = record.get("validation") if isinstance(record.get("validation"), Mapping) else {}
    open_set = record.get("open_set") if isinstance(record.get("open_set"), Mapping) else {}
    config = record.get("config") if isinstance(record.get("config"), Mapping) else {}
    media = record.get("media") if isinstance(record.get("media"), list) else []
    return {
        "validation_accuracy": validation.get("file_accuracy", record.get("validation_accuracy")),
        "validation_files": validation.get("files"),
        "unknown_threshold": open_set.get("threshold", record.get("unknown_threshold")),
        "unknown_rule": open_set.get("rule"),
        "network": config.get("network"),
        "seed": record.get("seed"),
        "epochs": record.get("epochs_run"),
        "training_seconds": record.get("training_seconds"),
        "n_media": len(media) or None,
        "tool_version": record.get("tool_version"),
        "method": record.get("method"),
    }


def report_records(case: Case, *, threshold: float | None = None) -> list[dict[str, Any]]:
    """One dict per scanned evidence file (see the module doc); `threshold` None keeps the scan's decisions."""
    with case.snapshot():
        stale_models = {m.id: m.stale_reason or "stale" for m in case.models() if m.stale}
        results = file_results(case, threshold=threshold)
        records = [_medium_record(result, changed, stale_models) for result, changed in results]
        _add_evaluation(case, records)
    return records


def _add_evaluation(case: Case, records: list[dict[str, Any]]) -> None:
    """Each comparison's likelihood ratio and JPEG-structure check (`report.evaluation`)."""
    from sensorprint.report.evaluation import add_likelihood_ratios, add_structure_checks, case_validation
    from sensorprint.workflow.review import reference_metadata

    validation, validated = case_validation(case)
    add_likelihood_ratios(records, validation, validated)
    add_structure_checks(records, reference_metadata(case))


def report_record(case: Case, medium_id: int, *, threshold: float | None = None) -> dict[str, Any] | None:
    """The record of one evidence file (as `report_records` gives it), without reading every other file's results."""
    from sensorprint.workflow.review import file_result, review_context

    with case.snapshot():
        medium = case.get_medium(medium_id)
        if medium is None or medium.role != "evidence":
            return None
        stale_models = {m.id: m.stale_reason or "stale" for m in case.models() if m.stale}
        matches = case.results(medium_id=medium_id)
        context = review_context(case)
        result, changed = file_result(medium, matches, threshold=threshold, **context)
        record = _medium_record(result, changed, stale_models)
        _add_evaluation(case, [record])
    return finite_or_none(record)


def device_entries(case: Case) -> list[dict[str, Any]]:
    """Every enrolled device with its reference media (and their hashes) and fingerprints, as the report lists them."""
    with case.snapshot():
        return finite_or_none([_device_entry(case, device) for device in case.list_devices()])


_REFERENCE_FIELDS = ("path", "sha256", "kind", "width", "height", "status", "error")
_FINGERPRINT_FIELDS = (
    "id", "height", "width", "n_media", "quality", "source", "array_sha256", "media_hashes", "parameters", "created",
    "run_id",
)  # fmt: skip
_RUN_FIELDS = ("id", "command", "parameters", "tool_version", "started", "finished", "status", "summary")


def _fields(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


def _device_entry(case: Case, device: Any) -> dict[str, Any]:
    """One enrolled device: its reference media with their hashes, and its fingerprints."""
    references = case.list_media(role="reference", device_id=device.id)
    return {
        "name": device.name,
        "model": device.model,
        "notes": device.notes,
        "enrolled": device.created,
        "n_reference_media": len(references),
        "reference_media": [_fields(m, _REFERENCE_FIELDS) for m in references],
        "fingerprints": [_fields(f, _FINGERPRINT_FIELDS) for f in case.fingerprints(device.id)],
    }


def _model_entry(model: Any) -> dict[str, Any]:
    return {
        "id": model.id,
        "target": model.target,
        "classes": model.classes,
        "created": model.created,
        "stale": model.stale,
        "stale_reason": model.stale_reason,
        "summary": summarise_model_record(model.record),
        "record": model.record,
    }


def _audit_section(audit: list[Any]) -> dict[str, Any]:
    """Counts of every audit action, and the events that change what results mean.

    The per-file lines are in the case's audit table; the report lists the events that
    change what results mean (devices, fingerprints, networks, dropped results, upgrades).
    """
    counts: dict[str, int] = {}
    for entry in audit:
        counts[entry.action] = counts.get(entry.action, 0) + 1
    events = [
        {"time": e.time, "run_id": e.run_id, "action": e.action, "details": e.details}
        for e in audit
        if e.action not in _BULK_AUDIT_ACTIONS
    ]
    return {"counts": counts, "events": events}


def _summary_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "files": len(records),
        "errors": sum(r["status"] == "error" for r in records),
        "matched": sum(r["best_device"] is not None for r in records),
        "several_devices_above_threshold": sum(len(r["matches"]) > 1 for r in records),
        "disagreements": sum(r["agreement"] == "disagree" for r in records),
    }


def report_data(case: Case, *, threshold: float = DEFAULT_THRESHOLD, rehash: bool = False) -> dict[str, Any]:
    """Everything a report shows: case, identity, threshold, devices, models, runs, records, custody, counts.

    The JSON report is this dict; its schema is docs/report.schema.json (REPORT_FORMAT_VERSION).
    rehash: read every evidence file again (read-only) for its SHA-256 at report (chain of custody).
    """
    from sensorprint.report.evaluation import case_validation, rate_lines
    from sensorprint.report.filing import custody_section, identity_section, limitations_section, methodology_section
    from sensorprint.workflow.runs import run_status

    with case.snapshot():
        records = report_records(case, threshold=threshold)
        devices = [_device_entry(case, device) for device in case.list_devices()]
        models = [_model_entry(m) for m in case.models()]
        # a run whose process died (SIGKILL) without recording its end is interrupted, not running
        runs = [{**_fields(r, _RUN_FIELDS), "status": run_status(r)} for r in case.runs()]
        schema_version = case.schema_version
        audit = case.audit_log()
        identity = identity_section(case)
        validation, validated = case_validation(case)
    exhibits = {e["root"]: e["exhibit"] for e in identity["exhibits"]}
    custody = custody_section(case, records, exhibits, rehash=rehash)
    pce = {"pce": float(threshold), "p_fa_per_position": false_alarm_per_position(float(threshold))}
    return finite_or_none(
        {
            "format": "sensorprint-report",
            "format_version": REPORT_FORMAT_VERSION,
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "tool_version": tool_version(),
            "case": str(case.root),
            "schema_version": schema_version,
            "threshold": {
                "pce": float(threshold),
                "p_fa_per_position": false_alarm_per_position(float(threshold)),
                "meaning": threshold_meaning(float(threshold)),
            },
            "identity": identity,
            "methodology": methodology_section(pce),
            "limitations": limitations_section(pce, models) + rate_lines(validation, validated),
            "custody": custody,
            "summary": _summary_counts(records),
            "devices": devices,
            "models": models,
            "runs": runs,
            "audit": _audit_section(audit),
            "records": records,
            **_clusters(case),
        }
    )


def _clusters(case: Case) -> dict[str, Any]:
    """The `clusters` section (report/clusters.py), only in a case that holds a clustering."""
    from sensorprint.report.clusters import clusters_section

    section = clusters_section(case)
    return {"clusters": section} if section is not None else {}
