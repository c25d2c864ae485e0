"""What a report says, as plain dicts: one record per scanned evidence file, and the case around them.

The HTML, JSON and CSV writers all render these same dicts, so the three
formats can never disagree. Decisions are re-derived at the report's PCE
threshold (a report may be stricter than the scan); when that changes a stored
decision, the record keeps the scan's decision beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sensorprint.store import Case, MediumRecord, ResultRow, tool_version
from sensorprint.store.jsonvalues import finite_or_none

DEFAULT_THRESHOLD = 60.0
"""The customary PCE threshold (Goljan, Fridrich & Filler, SPIE 2009)."""

REPORT_FORMAT_VERSION = 1

_BULK_AUDIT_ACTIONS = frozenset({"results recorded", "medium recorded", "transform hint set"})


def false_alarm_per_position(pce_threshold: float) -> float:
    """Q(√PCE): the chance that one searched position of an unrelated pair exceeds the threshold.

    Goljan, "Digital camera identification from images – estimating false acceptance
    probability", IWDW 2008: under the null hypothesis the normalised correlation peak
    is standard normal, so P(PCE ≥ τ) per position is Q(√τ) (one-sided, sign kept).
    Over N searched positions the probability is 1 − (1 − Q(√τ))^N.
    """
    if pce_threshold <= 0:
        return 1.0
    return 0.5 * math.erfc(math.sqrt(pce_threshold) / math.sqrt(2.0))


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


def frame_indices(frames: list[Any] | None) -> list[Any]:
    """Just the frame indices (for one CSV cell)."""
    return [f.get("index") if isinstance(f, Mapping) else f for f in frames or []]


def _prnu_decision(row: ResultRow, threshold: float | None) -> str:
    """The decision at the report's threshold; other stored decisions ('unknown', errors) are kept."""
    if threshold is None or row.score is None or row.decision not in ("match", "no match"):
        return row.decision
    return "match" if row.score >= threshold else "no match"


def _transform_text(row: ResultRow) -> str:
    text = describe_transform(row.transform)
    if (row.details or {}).get("roles_swapped"):
        # The query was larger than the fingerprint (an image against a video-enrolled device):
        # the fingerprint was searched inside the query, so the transform is the fingerprint's.
        text += " (fingerprint located inside the larger query)"
    return text


def _prnu_entries(rows: list[ResultRow], threshold: float | None) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for row in rows:
        decision = _prnu_decision(row, threshold)
        entry: dict[str, Any] = {
            "pce": row.score,
            "ncc": row.ncc,
            "p_fa": row.p_fa,
            "decision": decision,
            "transform": row.transform,
            "transform_text": _transform_text(row),
            "details": row.details,
            "run_id": row.run_id,
            # Why no comparison could be made (e.g. no geometric relation between the sizes).
            "reason": (row.details or {}).get("reason"),
        }
        if decision != row.decision:
            entry["decision_at_scan"] = row.decision
        entries[row.target] = entry
    return entries


def _cnn_entry(rows: list[ResultRow]) -> dict[str, Any]:
    """Summarise one network's rows (one per class) for one file."""
    probabilities = {row.target: row.score for row in rows}
    details: dict[str, Any] = {}
    for row in rows:
        details.update(row.details or {})
    if isinstance(details.get("probabilities"), Mapping):
        probabilities = {**probabilities, **details["probabilities"]}
    ranked = sorted(((p, name) for name, p in probabilities.items() if p is not None), reverse=True)
    top_probability, top = ranked[0] if ranked else (None, None)
    matched = [row for row in rows if row.decision == "match"]
    label = matched[0].target if len(matched) == 1 else "unknown"
    entry = {
        "label": label,
        "probability": probabilities.get(label) if label != "unknown" else top_probability,
        "top": top,
        "top_probability": top_probability,
        "probabilities": dict(sorted(probabilities.items())),
        "unknown_threshold": details.get("unknown_threshold"),
        "model_id": details.get("model_id"),
        "frames": details.get("frames"),
        "caveat": details.get("content_caveat"),
        "run_id": rows[0].run_id if rows else None,
    }
    if len(matched) > 1:  # a network answers one class; several 'match' rows are a recording error
        entry["note"] = "several classes marked as match: " + ", ".join(sorted(r.target for r in matched))
    return entry


def _fmt_pce(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _fmt_prob(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def fuse_verdict(record: Mapping[str, Any], device_models: Mapping[str, str | None]) -> tuple[str, str]:
    """The fused PRNU + CNN verdict for one record, and its agreement class.

    Agreement is one of 'agree', 'disagree', 'prnu only', 'cnn only', 'none', 'error'.
    The text always names what each method said; any difference between them
    (including one method answering a device and the other 'no match' or
    'unknown') is a DISAGREEMENT and leads the text.
    """
    if record["status"] == "error":
        return f"ERROR: {record['error'] or 'unreadable'}", "error"
    devices: Mapping[str, Any] = record["devices"]
    cnn: Mapping[str, Any] = record["cnn"]
    prnu_answer: str | None = None
    prnu_text = "PRNU: not run"
    if devices:
        if record["best_device"] is not None:
            prnu_answer = record["best_device"]
            prnu_text = f"PRNU: {prnu_answer} (PCE {_fmt_pce(record['best_pce'])})"
            others = [name for name in record["matches"] if name != prnu_answer]
            if others:
                prnu_text += (
                    " [also above threshold: "
                    + ", ".join(f"{n} (PCE {_fmt_pce(devices[n]['pce'])})" for n in others)
                    + "]"
                )
        else:
            prnu_answer = "no match"
            scored = [(v["pce"], n) for n, v in devices.items() if v["pce"] is not None]
            highest = max(scored) if scored else None
            prnu_text = "PRNU: no match" + (f" (highest {highest[1]}, PCE {_fmt_pce(highest[0])})" if highest else "")
    cnn_device = cnn.get("device")
    cnn_answer: str | None = None
    cnn_text = "CNN: not run"
    if cnn_device:
        if cnn_device["label"] != "unknown":
            cnn_answer = cnn_device["label"]
            cnn_text = f"CNN: {cnn_answer} ({_fmt_prob(cnn_device['probability'])})"
        else:
            cnn_answer = "no match"
            cnn_text = "CNN: unknown camera" + (
                f" (top {cnn_device['top']}, {_fmt_prob(cnn_device['top_probability'])})" if cnn_device["top"] else ""
            )
    if record.get("not_compared") and devices:
        prnu_text += " [not compared with: " + ", ".join(record["not_compared"]) + "]"
    if cnn_device and cnn_device.get("network_stale"):
        cnn_text += f" [camera-device network is stale: {cnn_device['network_stale']}]"
    if cnn_device and cnn_device.get("caveat"):
        cnn_text += f" [{cnn_device['caveat']}]"
    model_text = ""
    model_disagrees = False
    cnn_model = cnn.get("model")
    if cnn_model:
        model_label = cnn_model["label"]
        model_text = f"; CNN model: {model_label}" + (
            f" ({_fmt_prob(cnn_model['probability'])})" if model_label != "unknown" else ""
        )
        if cnn_model.get("network_stale"):
            model_text += f" [camera-model network is stale: {cnn_model['network_stale']}]"
        if cnn_model.get("caveat") and not (cnn_device and cnn_device.get("caveat")):
            model_text += f" [{cnn_model['caveat']}]"
        if prnu_answer not in (None, "no match"):
            enrolled_model = device_models.get(prnu_answer)
            if enrolled_model and model_label != enrolled_model:
                model_disagrees = True
                model_text += f" vs {prnu_answer} enrolled as {enrolled_model}"
    if prnu_answer is None and cnn_answer is None:
        agreement = "none" if not model_text else "cnn only"
        text = "no result" if not model_text else f"PRNU: not run; CNN device: not run{model_text}"
        return text, agreement
    if prnu_answer is None or cnn_answer is None:
        agreement = "prnu only" if cnn_answer is None else "cnn only"
        text = f"{prnu_text}; {cnn_text}{model_text}"
        if model_disagrees:
            return f"DISAGREE: {text}", "disagree"
        return text, agreement
    if prnu_answer == cnn_answer and not model_disagrees:
        return f"{prnu_text}; {cnn_text}{model_text} \u2014 agree", "agree"
    return f"DISAGREE: {prnu_text}; {cnn_text}{model_text}", "disagree"


def _medium_record(
    medium: MediumRecord,
    rows: list[ResultRow],
    threshold: float | None,
    device_models: Mapping[str, str | None],
    comparable: set[str] = frozenset(),  # type: ignore[assignment]
    stale_models: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    prnu_rows = [r for r in rows if r.method == "prnu" and r.target_kind == "device"]
    devices = _prnu_entries(prnu_rows, threshold)
    matches = sorted(
        (name for name, v in devices.items() if v["decision"] == "match"),
        key=lambda name: -(devices[name]["pce"] or -math.inf),
    )
    best = matches[0] if matches else None
    cnn: dict[str, Any] = {}
    for kind in ("device", "model"):
        kind_rows = [r for r in rows if r.method == "cnn" and r.target_kind == kind]
        if kind_rows:
            cnn[kind] = _cnn_entry(kind_rows)
            reason = (stale_models or {}).get(cnn[kind]["model_id"])
            if reason is not None:
                cnn[kind]["network_stale"] = reason
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
        "matches": matches,
        "devices": devices,
        # Enrolled devices with a fingerprint that this file was not (yet) compared with:
        # "no match" must never be read into a comparison that was not made.
        "not_compared": sorted(comparable - set(devices)) if medium.status == "ok" else [],
        "frames": details.get("frames"),
        "frame_times": details.get("frame_times"),
        "frames_text": describe_frames(details.get("frames")),
        "cnn": cnn,
        "metadata": medium.metadata,
        "details": medium.details,
        "run_id": medium.run_id,
        "recorded": medium.updated,
    }
    record["verdict"], record["agreement"] = fuse_verdict(record, device_models)
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
        device_models = {d.name: d.model for d in case.list_devices()}
        comparable = {f.device_name for f in case.fingerprints()}
        stale_models = {m.id: m.stale_reason or "stale" for m in case.models() if m.stale}
        media = case.list_media(role="evidence")
        by_medium: dict[int, list[ResultRow]] = {}
        for row in case.results():
            by_medium.setdefault(row.medium_id, []).append(row)  # type: ignore[arg-type]
    return [
        _medium_record(m, by_medium.get(m.id, []), threshold, device_models, comparable, stale_models) for m in media
    ]


def report_data(case: Case, *, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Everything a report shows: case, threshold, devices, models, runs, records, summary counts."""
    with case.snapshot():
        records = report_records(case, threshold=threshold)
        devices = []
        for device in case.list_devices():
            references = case.list_media(role="reference", device_id=device.id)
            devices.append(
                {
                    "name": device.name,
                    "model": device.model,
                    "notes": device.notes,
                    "enrolled": device.created,
                    "n_reference_media": len(references),
                    "reference_media": [
                        {
                            "path": m.path,
                            "sha256": m.sha256,
                            "kind": m.kind,
                            "width": m.width,
                            "height": m.height,
                            "status": m.status,
                            "error": m.error,
                        }
                        for m in references
                    ],
                    "fingerprints": [
                        {
                            "id": f.id,
                            "height": f.height,
                            "width": f.width,
                            "n_media": f.n_media,
                            "quality": f.quality,
                            "source": f.source,
                            "array_sha256": f.array_sha256,
                            "media_hashes": f.media_hashes,
                            "parameters": f.parameters,
                            "created": f.created,
                            "run_id": f.run_id,
                        }
                        for f in case.fingerprints(device.id)
                    ],
                }
            )
        models = [
            {
                "id": m.id,
                "target": m.target,
                "classes": m.classes,
                "created": m.created,
                "stale": m.stale,
                "stale_reason": m.stale_reason,
                "summary": summarise_model_record(m.record),
                "record": m.record,
            }
            for m in case.models()
        ]
        runs = [
            {
                "id": r.id,
                "command": r.command,
                "parameters": r.parameters,
                "tool_version": r.tool_version,
                "started": r.started,
                "finished": r.finished,
                "status": r.status,
                "summary": r.summary,
            }
            for r in case.runs()
        ]
        schema_version = case.schema_version
        audit = case.audit_log()
    audit_counts: dict[str, int] = {}
    for entry in audit:
        audit_counts[entry.action] = audit_counts.get(entry.action, 0) + 1
    # The per-file lines are in the case's audit table; the report lists the events that
    # change what results mean (devices, fingerprints, networks, dropped results, upgrades).
    audit_events = [
        {"time": e.time, "run_id": e.run_id, "action": e.action, "details": e.details}
        for e in audit
        if e.action not in _BULK_AUDIT_ACTIONS
    ]
    summary = {
        "files": len(records),
        "errors": sum(r["status"] == "error" for r in records),
        "matched": sum(r["best_device"] is not None for r in records),
        "several_devices_above_threshold": sum(len(r["matches"]) > 1 for r in records),
        "disagreements": sum(r["agreement"] == "disagree" for r in records),
    }
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
            "summary": summary,
            "devices": devices,
            "models": models,
            "runs": runs,
            "audit": {"counts": audit_counts, "events": audit_events},
            "records": records,
        }
    )
