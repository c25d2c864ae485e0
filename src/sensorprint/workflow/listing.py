"""Use case: the table of files a scan or a review shows — each file, its best device, score and answer.

The rows come from `file_result` (the stored matches and the fused verdict), so the
terminal table, `--json`, the web pages and the report say the same thing.

`EvidenceIndex` keeps every evidence file's row of a case for the web's evidence browser:
read once in batches, then kept current from the audit log (the store writes a line for
every write): only the files it names are read again, and every other kind of change
(an enrollment, a correction) reads the case again. Filters, search, the p_fa sort and
pages then work on the rows in memory, so a page does not grow with the case.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sensorprint.results import FileResult
from sensorprint.store import Case, Match, MediumRecord, browse
from sensorprint.workflow.review import file_result, file_results, review_context, stale_reason

ANSWERS = ("match", "inconclusive", "no match", "stale", "error", "not compared")
"""Every answer `answer_of` gives."""


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether `path` is one of `roots` or inside one of them (as recorded: absolute, resolved)."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def answer_of(result: FileResult) -> str:
    """One word for the file: 'match', 'no match', 'inconclusive', 'stale', 'error' or 'not compared'.

    'stale': no current comparison matched and some device's result was computed with a
    fingerprint corrected since (a reference file removed): that result does not count,
    and the file has no answer until it is scanned again.
    """
    if result.status == "error":
        return "error"
    if result.best_device:
        return "match"
    current = [m for m in result.prnu().values() if not stale_reason(m)]
    if len(current) < len(result.prnu()):
        return "stale"
    decisions = {str(m.decision) for m in current}
    if not decisions:
        return "not compared"
    return "inconclusive" if "inconclusive" in decisions else "no match"


def stale_devices(result: FileResult) -> list[str]:
    """The devices whose PRNU result for this file is stale (shown, not counted), by name."""
    return sorted(name for name, m in result.prnu().items() if stale_reason(m))


def file_row(result: FileResult) -> dict[str, Any]:
    """One row: path, SHA-256, status, best device with its PCE and p_fa, the answer, the CNN's label, agreement."""
    best = result.best_device
    found = result.prnu().get(best) if best else None
    cnn = result.verdict.cnn_device
    return {
        "path": result.path,
        "sha256": result.sha256,
        "status": result.status,
        "error": result.error,
        "best_device": best,
        "pce": found.score if found else None,
        "p_fa": found.p_fa if found else None,
        "answer": answer_of(result),
        "stale": stale_devices(result),
        "cnn_device": cnn.label if cnn else None,
        "agreement": str(result.verdict.agreement),
        # a video matched frame by frame (prnu.stabilised): stabilised, steady or undetermined
        "stabilisation": str(found.evidence.stabilisation) if found and found.evidence.stabilisation else None,
    }


def file_rows(case: Case, roots: Iterable[Path | str] | None = None, *, threshold: float | None = None) -> list[dict]:
    """The rows of every evidence file recorded under `roots` (all files when None), in recording order."""
    wanted = None if roots is None else [str(_recorded_root(Path(r))) for r in roots]
    return [
        file_row(result)
        for result, _ in file_results(case, threshold=threshold)
        if wanted is None or under(result.path, wanted)
    ]


def _recorded_root(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


# ---------------------------------------------------------------------- the evidence browser's rows

# Audit actions that change no file's row; "results recorded" and the like name the one file they change.
_NO_ROW_CHANGES = frozenset(
    {
        "run started",
        "run finished",
        "note added",
        "case identity set",
        "exhibit set",
        "acquisition hashes recorded",
        "report written",
        "transform hint set",
        "media annotated",
        "models marked stale",
        "cluster file read",
        "clusters saved",
        "fingerprint index updated",
        "unreferenced arrays removed",
    }
)
_ONE_FILE_CHANGES = frozenset({"results recorded", "results dropped", "medium recorded"})


class EvidenceIndex:
    """Every evidence file's row of one case (`file_row` plus its medium id), kept current from the audit log.

    `needs_full_read(case)` says whether the rows must be read again from the start (never
    read, or a change other than files recorded since: an enrollment, a correction);
    `read_all(case)` does it, `refresh(case)` reads only the files named since (or all,
    when needed). `select` filters, searches, sorts and pages the rows. Thread-safe.
    """

    def __init__(self, *, batch: int = 2000) -> None:
        self.batch = batch
        self.rows: list[dict[str, Any]] = []
        self.position: dict[int, int] = {}  # medium id -> index in rows (rows are in id order)
        self.mark = -1  # the newest audit line the rows include; -1: never read
        self.progress = (0, 0)  # (files read, files in all) of the full read in progress
        self.lock = threading.RLock()
        self.by_p_fa: list[dict[str, Any]] = []  # the rows by p_fa (then id), kept sorted as rows change
        self._chosen: dict[tuple[str, str, str], list[dict[str, Any]]] = {}  # recent selections, until then
        self._counts: dict[str, int] | None = None

    @property
    def ready(self) -> bool:
        return self.mark >= 0

    def _changes(self, case: Case) -> list[tuple[int, str, int | None]] | None:
        """The audit lines since the rows were read, or None when every file must be read again."""
        if not self.ready:
            return None
        changes = browse.audit_since(case, self.mark)
        return changes if all(a in _NO_ROW_CHANGES or a in _ONE_FILE_CHANGES for _, a, _ in changes) else None

    def needs_full_read(self, case: Case) -> bool:
        with self.lock:
            return self._changes(case) is None

    def refresh(self, case: Case) -> None:
        """Bring the rows up to date with the case: the files named since, or every file when needed."""
        with self.lock:
            changes = self._changes(case)
            if changes is None:
                self.read_all(case)
            elif changes:
                self._update(case, sorted({m for _, a, m in changes if a in _ONE_FILE_CHANGES and m}))
                self.mark = changes[-1][0]

    def read_all(self, case: Case) -> None:
        """Read every evidence file's row, `batch` files at a time (a file written meanwhile: next refresh)."""
        with self.lock:
            mark = browse.last_audit_id(case)
            context = self._context(case)
            total = browse.evidence_count(case)
            rows: list[dict[str, Any]] = []
            self.progress = (0, total)
            for medium, matches in browse.evidence_batches(case, batch=self.batch):
                rows.append(_row(medium, matches, context))
                if len(rows) % self.batch == 0:
                    self.progress = (len(rows), max(total, len(rows)))
            self.rows, self.position = rows, {row["id"]: i for i, row in enumerate(rows)}
            self.by_p_fa = sorted(rows, key=_by_p_fa)
            self.progress, self.mark = (len(rows), len(rows)), mark
            self._changed()

    def _changed(self) -> None:
        self._counts = None
        self._chosen.clear()

    def _resort(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        """Keep `by_p_fa` sorted: take out the old row, put in the new one (a bisection each)."""
        if old is not None:
            at = bisect.bisect_left(self.by_p_fa, _by_p_fa(old), key=_by_p_fa)
            if at < len(self.by_p_fa) and self.by_p_fa[at] is old:
                del self.by_p_fa[at]
        if new is not None:
            bisect.insort(self.by_p_fa, new, key=_by_p_fa)

    @staticmethod
    def _context(case: Case) -> dict[str, Any]:
        return review_context(case)

    def _update(self, case: Case, medium_ids: list[int]) -> None:
        """Read these files again (in chunks: SQLite limits the parameters of one query)."""
        if not medium_ids:
            return
        context = self._context(case)
        found = {}
        for start in range(0, len(medium_ids), 500):
            for medium, matches in browse.evidence_with_results(case, medium_ids[start : start + 500]):
                found[medium.id] = _row(medium, matches, context)
        for medium_id in medium_ids:
            row, at = found.get(medium_id), self.position.get(medium_id)
            self._resort(self.rows[at] if at is not None else None, row)
            if row is not None and at is not None:
                self.rows[at] = row
            elif row is not None:  # a new file: ids grow, so it goes last
                self.position[medium_id] = len(self.rows)
                self.rows.append(row)
            elif at is not None:  # no longer an evidence file
                del self.rows[at]
                self.position = {r["id"]: i for i, r in enumerate(self.rows)}
        self._changed()

    def select(
        self, answer: str | None = None, query: str | None = None, sort: str | None = None
    ) -> list[dict[str, Any]]:
        """The rows by answer ('disagree': PRNU and the CNN disagree), name or SHA-256 prefix search, p_fa sort.

        The result is kept until the rows change (paging through one selection reads it once).
        """
        key = (answer or "", (query or "").strip().lower(), "p_fa" if sort == "p_fa" else "")
        with self.lock:
            if key in self._chosen:
                return self._chosen[key]
            rows = self.by_p_fa if key[2] else self.rows
            chosen = rows if key[:2] == ("", "") else list(_chosen(rows, *key[:2]))
            if len(self._chosen) >= 16:
                self._chosen.pop(next(iter(self._chosen)))
            self._chosen[key] = chosen
            return chosen

    def counts(self) -> dict[str, int]:
        """How many files have each answer, how many PRNU and the CNN disagree on, and how many in all."""
        with self.lock:
            if self._counts is None:
                found = dict.fromkeys(ANSWERS, 0)
                for row in self.rows:
                    found[row["answer"]] += 1
                found["disagree"] = sum(row["agreement"] == "disagree" for row in self.rows)
                found["files"] = len(self.rows)
                self._counts = found
            return dict(self._counts)


def _row(medium: MediumRecord, matches: list[Match], context: dict[str, Any]) -> dict[str, Any]:
    result, _ = file_result(medium, matches, threshold=None, **context)
    return {**file_row(result), "id": medium.id, "name": medium.path.lower()}  # name: what a search looks in


def _by_p_fa(row: dict[str, Any]) -> tuple[bool, float, float, int]:
    """Strongest first: lowest p_fa of the best device (then highest PCE, where p_fa underflows to 0), files
    without a match last; then by id."""
    p_fa, pce = row["p_fa"], row["pce"]
    return (p_fa is None, p_fa if p_fa is not None else 1.0, -pce if pce is not None else 0.0, row["id"])


def _chosen(rows: list[dict[str, Any]], answer: str | None, query: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        if answer == "disagree":
            if row["agreement"] != "disagree":
                continue
        elif answer and row["answer"] != answer:
            continue
        if query and query not in row["name"] and not (row["sha256"] or "").startswith(query):
            continue
        yield row


__all__ = ["ANSWERS", "EvidenceIndex", "answer_of", "file_row", "file_rows", "stale_devices", "under"]
