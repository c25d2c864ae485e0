"""Reading a large case in parts: evidence files with their results by id range, the audit log by page.

What the evidence browser of `sensorprint serve` needs to stay fast at 100,000 files
(`workflow.listing.EvidenceIndex`): the files are read once in batches of consecutive
ids (memory bounded by one batch), then only the files the audit log names as written
since. The audit log is the store's own record of every write (`Case._audit_in`), so it
is also the list of what changed. Read-only functions over a `Case`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sensorprint.results import Match
from sensorprint.store.case import Case, match_from_row
from sensorprint.store.jsonvalues import loads
from sensorprint.store.records import AuditEntry, MediumRecord


def evidence_with_results(case: Case, medium_ids: Sequence[int]) -> list[tuple[MediumRecord, list[Match]]]:
    """The evidence files among `medium_ids` (in id order) with their stored results."""
    if not medium_ids:
        return []
    marks = ", ".join("?" * len(medium_ids))
    ids = [int(i) for i in medium_ids]
    with case.snapshot():
        media = case._rows(f"SELECT * FROM media WHERE role = 'evidence' AND id IN ({marks}) ORDER BY id", ids)
        results = case._rows(
            f"SELECT * FROM results WHERE medium_id IN ({marks}) ORDER BY medium_id, method, target_kind, target", ids
        )
    return _grouped(media, results)


def _grouped(media: list[Any], results: list[Any]) -> list[tuple[MediumRecord, list[Match]]]:
    by_medium: dict[int, list[Match]] = {}
    for r in results:
        by_medium.setdefault(r["medium_id"], []).append(match_from_row(r))
    return [(Case._medium(m), by_medium.get(m["id"], [])) for m in media]


def evidence_batches(case: Case, *, batch: int = 2000) -> Iterator[tuple[MediumRecord, list[Match]]]:
    """Every evidence file in recording (id) order with its results, read `batch` files at a time.

    Each batch is one consistent snapshot; a file written between batches is named by
    the audit log (`audit_since`), so a reader that notes `last_audit_id` first misses none.
    """
    after = 0
    while True:
        with case.snapshot():
            media = case._rows(
                "SELECT * FROM media WHERE role = 'evidence' AND id > ? ORDER BY id LIMIT ?", (after, batch)
            )
            if not media:
                return
            low, high = media[0]["id"], media[-1]["id"]
            results = case._rows(
                "SELECT * FROM results WHERE medium_id BETWEEN ? AND ? ORDER BY medium_id, method, target_kind, target",
                (low, high),
            )
        yield from _grouped(media, results)
        after = high


def evidence_count(case: Case) -> int:
    """How many evidence files the case records."""
    return int(case._rows("SELECT COUNT(*) FROM media WHERE role = 'evidence'")[0][0])


def overview_counts(case: Case) -> dict[str, int]:
    """The counts of the web's front page that stay fast in a large case (no count over every result)."""
    queries = {
        "devices": "SELECT COUNT(*) FROM devices",
        "fingerprints": "SELECT COUNT(*) FROM fingerprints",
        "reference_media": "SELECT COUNT(*) FROM media WHERE role = 'reference'",
        "evidence_media": "SELECT COUNT(*) FROM media WHERE role = 'evidence'",
        "models": "SELECT COUNT(*) FROM models",
    }
    with case.snapshot():
        return {name: int(case._rows(sql)[0][0]) for name, sql in queries.items()}


def last_audit_id(case: Case) -> int:
    """The id of the newest audit line (0 in a case without one)."""
    return int(case._rows("SELECT COALESCE(MAX(id), 0) FROM audit")[0][0])


def audit_since(case: Case, after_id: int) -> list[tuple[int, str, int | None]]:
    """(id, action, medium id named or None) of every audit line after `after_id`, oldest first.

    Only the medium id is read from each line's details: a line can be large (a removed
    device's results are kept in full in its line).
    """
    rows = case._rows(
        "SELECT id, action, CASE WHEN json_valid(details) THEN json_extract(details, '$.medium_id') END AS medium "
        "FROM audit WHERE id > ? ORDER BY id",
        (after_id,),
    )
    return [(int(r["id"]), r["action"], None if r["medium"] is None else int(r["medium"])) for r in rows]


def audit_page(
    case: Case, *, offset: int, limit: int, max_chars: int = 2000
) -> tuple[list[tuple[AuditEntry, str]], int]:
    """One page of the audit log, newest first, and the number of lines in all.

    Each line comes with its details as JSON text of at most `max_chars` characters (a
    longer one, such as a removed device's line that keeps every result, is cut there in
    SQL and says how long it is; its entry's details are then {}).
    """
    with case.snapshot():
        total = int(case._rows("SELECT COUNT(*) FROM audit")[0][0])
        rows = case._rows(
            "SELECT id, time, run_id, action, length(details) AS size, "
            "CASE WHEN length(details) <= ? THEN details ELSE substr(details, 1, ?) END AS shown "
            "FROM audit ORDER BY id DESC LIMIT ? OFFSET ?",
            (int(max_chars), int(max_chars), int(limit), int(offset)),
        )
    page = []
    for r in rows:
        whole = r["size"] <= max_chars
        entry = AuditEntry(r["id"], r["time"], r["run_id"], r["action"], loads(r["shown"]) if whole else {})
        shown = (
            json.dumps(entry.details, ensure_ascii=False, sort_keys=True)  # names as written, not \u escapes
            if whole
            else f"{r['shown']} … ({r['size']:,} characters in all: the case's audit table holds every one)"
        )
        page.append((entry, shown))
    return page, total


__all__ = [
    "audit_page",
    "audit_since",
    "evidence_batches",
    "evidence_count",
    "evidence_with_results",
    "last_audit_id",
    "overview_counts",
]
