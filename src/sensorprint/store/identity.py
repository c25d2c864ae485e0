"""The case's identity, notes and corrections: what makes a report fileable and a case correctable.

Identity: case number, examiner, organisation (table `case_identity`), the exhibit number
of each evidence root (`exhibits`), and the SHA-256 each file had at acquisition where the
examiner knows it (`acquisition_hashes`, e.g. from the imaging tool's hash list). Notes are
append-only (`notes`). Corrections remove a reference file or a device, or rename a
device; each is ONE transaction with its audit line, like every write of `Case`.

These are functions over a `Case` (not methods) so that the store's main module stays
as others edit it; they use its transaction and array-staging plumbing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.store.case import Case, _now
from sensorprint.store.jsonvalues import loads

IDENTITY_KEYS = ("case_number", "examiner", "organisation", "title")
"""The identity fields a case may carry (all optional)."""

MAX_TEXT = 10_000  # characters of one identity field or note: enough for a paragraph, not a file


@dataclass(frozen=True)
class Note:
    """One note: when, about what ('case', 'device:<name>', 'file:<path>'), its text and author."""

    id: int
    time: str
    subject: str
    text: str
    author: str | None
    run_id: int | None


@dataclass(frozen=True)
class CaseIdentity:
    """Who and what the case is: the fields of `IDENTITY_KEYS`, exhibits {evidence root: number}, notes."""

    case_number: str | None = None
    examiner: str | None = None
    organisation: str | None = None
    title: str | None = None
    exhibits: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()


def _clean(text: str | None, what: str) -> str | None:
    """Text as stored: stripped; None stays None; CaseError when too long or holding control characters."""
    if text is None:
        return None
    text = str(text).strip()
    if len(text) > MAX_TEXT:
        raise CaseError(f"the {what} is {len(text)} characters long; keep it under {MAX_TEXT}")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise CaseError(f"the {what} holds control characters; type it again as plain text")
    return text


def identity(case: Case) -> CaseIdentity:
    """The case's identity, exhibits and notes as stored."""
    with case.snapshot():
        values = {r["key"]: r["value"] for r in case._rows("SELECT key, value FROM case_identity")}
        exhibits = {r["root"]: r["exhibit"] for r in case._rows("SELECT root, exhibit FROM exhibits ORDER BY root")}
        notes = tuple(
            Note(r["id"], r["time"], r["subject"], r["text"], r["author"], r["run_id"])
            for r in case._rows("SELECT * FROM notes ORDER BY id")
        )
    known = {key: values.get(key) for key in IDENTITY_KEYS}
    return CaseIdentity(**known, exhibits=exhibits, notes=notes)


def set_identity(case: Case, values: Mapping[str, str | None], *, run_id: int | None = None) -> CaseIdentity:
    """Set identity fields (an empty string clears one); ONE transaction, audited with old and new values."""
    unknown = set(values) - set(IDENTITY_KEYS)
    if unknown:
        raise CaseError(f"unknown case fields {sorted(unknown)}; use {', '.join(IDENTITY_KEYS)}")
    cleaned = {key: _clean(value, key.replace("_", " ")) for key, value in values.items() if value is not None}
    with case._write() as conn:
        for key, value in cleaned.items():
            old = conn.execute("SELECT value FROM case_identity WHERE key = ?", (key,)).fetchone()
            if value:
                conn.execute(
                    "INSERT INTO case_identity (key, value, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
                    (key, value, _now()),
                )
            else:
                conn.execute("DELETE FROM case_identity WHERE key = ?", (key,))
            details = {"field": key, "old": old["value"] if old else None, "new": value or None}
            case._audit_in(conn, "case identity set", details, run_id)
    return identity(case)


def set_exhibit(case: Case, root: str, exhibit: str, *, run_id: int | None = None) -> None:
    """Give an evidence root (a folder or file as scanned) its exhibit number; audited."""
    root = os.path.normpath(os.path.abspath(os.fspath(root)))
    exhibit = _clean(exhibit, "exhibit number") or ""
    if not exhibit:
        raise CaseError(f"give an exhibit number for {root}, e.g. --exhibit {root}=EXH-001")
    with case._write() as conn:
        conn.execute(
            "INSERT INTO exhibits (root, exhibit, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (root) DO UPDATE SET exhibit = excluded.exhibit, updated = excluded.updated",
            (root, exhibit, _now()),
        )
        case._audit_in(conn, "exhibit set", {"root": root, "exhibit": exhibit}, run_id)


def exhibit_of(exhibits: Mapping[str, str], path: str) -> str | None:
    """The exhibit number of the longest evidence root that holds `path` (None when none does)."""
    best = None
    for root, number in exhibits.items():
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            if best is None or len(root) > len(best[0]):
                best = (root, number)
    return best[1] if best else None


def add_note(
    case: Case, text: str, *, subject: str = "case", author: str | None = None, run_id: int | None = None
) -> Note:
    """Append a note (append-only: a correction is a new note); audited."""
    text = _clean(text, "note") or ""
    if not text:
        raise CaseError("a note needs some text")
    author = _clean(author, "author")
    with case._write() as conn:
        cur = conn.execute(
            "INSERT INTO notes (time, subject, text, author, run_id) VALUES (?, ?, ?, ?, ?)",
            (_now(), subject, text, author, run_id),
        )
        note_id = int(cur.lastrowid)
        case._audit_in(conn, "note added", {"note_id": note_id, "subject": subject, "text": text}, run_id)
    return next(n for n in identity(case).notes if n.id == note_id)


def record_acquisition_hashes(case: Case, hashes: Mapping[str, str], *, source: str, run_id: int | None = None) -> int:
    """Keep the SHA-256 each file had at acquisition (absolute path -> hex digest); returns how many."""
    rows = []
    for path, digest in hashes.items():
        digest = digest.strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise CaseError(f"{digest[:80]!r} for {path} is not a SHA-256 (64 hex digits)")
        rows.append((os.path.normpath(os.path.abspath(path)), digest, source, _now()))
    with case._write() as conn:
        conn.executemany(
            "INSERT INTO acquisition_hashes (path, sha256, source, recorded) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, source = excluded.source, "
            "recorded = excluded.recorded",
            rows,
        )
        case._audit_in(conn, "acquisition hashes recorded", {"source": source, "count": len(rows)}, run_id)
    return len(rows)


def acquisition_hashes(case: Case) -> dict[str, str]:
    """{path: SHA-256 at acquisition} as recorded."""
    return {r["path"]: r["sha256"] for r in case._rows("SELECT path, sha256 FROM acquisition_hashes")}


# ---------------------------------------------------------------------- corrections


def mark_results_stale(conn, device: str, reason: str) -> int:
    """Mark a device's PRNU results stale inside the caller's transaction (evidence key 'stale'); returns how many.

    A stale result stays visible (the report and the web pages say why) until a scan
    computes it again (`Case.done_targets` does not count it as done).
    """
    return conn.execute(
        "UPDATE results SET details = json_set(CASE WHEN json_type(details) = 'object' THEN details ELSE '{}' END, '$.stale', ?) "
        "WHERE method = 'prnu' AND target_kind = 'device' AND target = ?",
        (reason, device),
    ).rowcount


def _drop_shape(conn, device_id: int, shape: tuple[int, int]) -> list[str]:
    """Delete a device's sums and fingerprint at one landscape size; returns their array files."""
    files = []
    for table in ("fingerprint_sums", "fingerprints"):
        where = "device_id = ? AND height = ? AND width = ?"
        files += [
            r["array_file"] for r in conn.execute(f"SELECT array_file FROM {table} WHERE {where}", (device_id, *shape))
        ]
        conn.execute(f"DELETE FROM {table} WHERE {where}", (device_id, *shape))
    return files


def remove_reference(
    case: Case,
    medium_id: int,
    estimates: Mapping[tuple[int, int], tuple[Mapping[str, np.ndarray], np.ndarray, float | None]],
    *,
    emptied: Sequence[tuple[int, int]] = (),
    parameters: Mapping[str, Any],
    reason: str,
    run_id: int | None = None,
) -> dict[str, Any]:
    """Remove one reference file of a device and replace its fingerprint, in ONE transaction.

    estimates: {landscape size: (sums, K, quality)} re-estimated without the file;
    emptied: sizes left with no reference (their sums and fingerprint are deleted).
    The device's PRNU results are marked stale (not deleted), the device's networks
    too. Returns the audit details.
    """
    medium = case.get_medium(medium_id)
    if medium is None or medium.role != "reference":
        raise CaseError(f"reference file id {medium_id} is not in this case")
    device = case.get_device_by_id(medium.device_id)  # type: ignore[arg-type]
    staged: list[tuple[tuple[int, int], Any, Any, float | None, int]] = []
    try:
        for shape, (sums, k, quality) in estimates.items():
            k = case._checked_fingerprint(k)
            staged.append((shape, case._stage_sums(device.id, shape, sums), case._stage_fingerprint(device.id, k),
                           quality, int(sums["n_media"])))  # fmt: skip
        with case._write() as conn:
            details, replaced = _remove_reference_in(
                case, conn, medium, device, staged, emptied, parameters, reason, run_id
            )
    except BaseException:
        for _, sums_file, k_file, _, _ in staged:
            sums_file.discard()
            k_file.discard()
        raise
    case._drop_replaced(replaced, [f.name for _, s, k, _, _ in staged for f in (s, k)])
    return details


def _remove_reference_in(case, conn, medium, device, staged, emptied, parameters, reason, run_id):
    """The body of `remove_reference`'s transaction; returns (audit details, array files replaced)."""
    conn.execute("DELETE FROM media WHERE id = ?", (medium.id,))
    replaced: list[str | None] = []
    for shape, sums_file, k_file, quality, n_summed in staged:
        replaced.append(case._put_sums(conn, device.id, shape, sums_file, n_summed, run_id))
        fields = {**case._behind(conn, device.id, shape), "quality": quality, "parameters": dict(parameters)}
        replaced.append(case._put_fingerprint(conn, device, k_file, shape, fields, run_id, False))
    for shape in emptied:
        replaced += _drop_shape(conn, device.id, shape)
    stale = mark_results_stale(conn, device.name, reason)
    case._mark_stale_in(conn, f"device {device.name}: {reason}", run_id)
    details = {"device_id": device.id, "device": device.name, "medium_id": medium.id, "path": medium.path}
    details.update(sha256=medium.sha256, reason=reason, results_marked_stale=stale)
    details.update(fingerprints=[list(s[0]) for s in staged], fingerprints_removed=[list(s) for s in emptied])
    case._audit_in(conn, "reference removed", details, run_id)
    return details, replaced


def remove_device(case: Case, device_id: int, *, reason: str, run_id: int | None = None) -> dict[str, Any]:
    """Remove a device with its references, sums, fingerprints and hints; ONE transaction.

    Its PRNU results leave the results table (a device that is not enrolled is not a
    source in question, and a device enrolled later under the same name must start with
    none), but nothing is lost: the audit line keeps every one in full (`removed_results`:
    file, SHA-256, PCE, NCC, p_fa, decision, transform, evidence, run), with every
    reference file's path and hash. The networks' answers stay as they were given (a
    network answered over the classes it was trained on); the networks become stale.
    """
    device = case.get_device_by_id(device_id)
    if device is None:
        raise CaseError(f"device id {device_id} is not enrolled in this case")
    with case._write() as conn:
        refs = conn.execute("SELECT path, sha256 FROM media WHERE device_id = ? ORDER BY id", (device_id,)).fetchall()
        files = [r["array_file"] for t in ("fingerprints", "fingerprint_sums")
                 for r in conn.execute(f"SELECT array_file FROM {t} WHERE device_id = ?", (device_id,))]  # fmt: skip
        kept = _results_in_full(conn, device.name)
        conn.execute(
            "DELETE FROM results WHERE method = 'prnu' AND target_kind = 'device' AND target = ?", (device.name,)
        )
        for table in ("fingerprints", "fingerprint_sums", "transform_hints", "media"):
            conn.execute(f"DELETE FROM {table} WHERE device_id = ?", (device_id,))
        conn.execute("DELETE FROM devices WHERE id = ?", (device_id,))
        case._mark_stale_in(conn, f"device {device.name} removed: {reason}", run_id)
        details = {"device_id": device_id, "device": device.name, "model": device.model, "reason": reason}
        details.update(references=[[r["path"], r["sha256"]] for r in refs], results_removed=len(kept))
        case._audit_in(conn, "device removed", {**details, "removed_results": kept}, run_id)
    case._drop_replaced(files, [])
    return details


def _results_in_full(conn, device: str) -> list[dict[str, Any]]:
    """Every PRNU result of a device with its file, as plain values (what the audit line of its removal keeps)."""
    rows = conn.execute(
        "SELECT r.*, m.path, m.sha256 FROM results r JOIN media m ON m.id = r.medium_id "
        "WHERE r.method = 'prnu' AND r.target_kind = 'device' AND r.target = ? ORDER BY r.medium_id",
        (device,),
    ).fetchall()
    columns = ("medium_id", "path", "sha256", "score", "ncc", "p_fa", "decision", "run_id", "created")
    return [
        {**{c: r[c] for c in columns}, "transform": loads(r["transform"]), "details": loads(r["details"])} for r in rows
    ]


def rename_device(case: Case, device_id: int, new_name: str, *, run_id: int | None = None) -> dict[str, Any]:
    """Rename a device, and its name in its results and hints; networks naming it become stale. ONE transaction."""
    device = case.get_device_by_id(device_id)
    if device is None:
        raise CaseError(f"device id {device_id} is not enrolled in this case")
    new_name = _clean(new_name, "device name") or ""
    if not new_name:
        raise CaseError("a device needs a non-empty name")
    if new_name != device.name and case.get_device(new_name) is not None:
        raise CaseError(f"device {new_name!r} is already enrolled in this case; choose another name")
    with case._write() as conn:
        conn.execute("UPDATE devices SET name = ? WHERE id = ?", (new_name, device_id))
        renamed = conn.execute(
            "UPDATE results SET target = ? WHERE target = ? AND target_kind = 'device'", (new_name, device.name)
        ).rowcount
        case._mark_stale_in(conn, f"device {device.name} renamed {new_name}: retrain the network", run_id)
        details = {"device_id": device_id, "old": device.name, "new": new_name, "results_renamed": renamed}
        case._audit_in(conn, "device renamed", details, run_id)
    return details


def note_subjects(notes: Sequence[Note]) -> dict[str, list[Note]]:
    """Notes grouped by subject, in order."""
    grouped: dict[str, list[Note]] = {}
    for note in notes:
        grouped.setdefault(note.subject, []).append(note)
    return grouped


__all__ = [
    "IDENTITY_KEYS",
    "CaseIdentity",
    "Note",
    "acquisition_hashes",
    "add_note",
    "exhibit_of",
    "identity",
    "mark_results_stale",
    "note_subjects",
    "record_acquisition_hashes",
    "remove_device",
    "remove_reference",
    "rename_device",
    "set_exhibit",
    "set_identity",
]
