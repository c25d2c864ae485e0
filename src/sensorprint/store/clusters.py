"""The case store's part for grouping media by unknown source (`sensorprint cluster`).

Functions on an open `Case`, each write one transaction (`Case._write`), as the rest of the
store. What is kept (tables of schema version 4):

- `cluster_files`: every file a clustering read: path, SHA-256, size and time (the resume
  test), its one-line error or its residual cache, an .npz in `arrays/` (`cl-….npz`: the
  residual as int8 with its step, the grey levels as uint8, the signature rows). The
  array is written to a temporary file and fsynced outside the transaction, and renamed
  under the write lock inside it (as `Case.save_fingerprint` does), so a kill leaves at
  most an unreferenced file, never a row without its array.
- group fingerprints, each an .npz in `arrays/` named after its score key (`cl-group-….npz`,
  `group_cache_path`: K as float16 in units of its standard deviation), written whole by the
  run's main process, so that the worker tasks scoring files against a group load it
  instead of estimating it again from the members; a cache only (no record names it, and a
  task that does not find it estimates K from the members as before).
- `cluster_pairs`: every score computed, at most once per (key, a, b): key "pair" for two
  files (a < b), or the key of a group fingerprint (its members' hashes) for a file
  against it (a = 0). A resumed run reuses them; `INSERT OR IGNORE` never doubles one.
- `clusters` / `cluster_members`: the groups a run formed (singletons included), with
  their link to enrolled devices; replaced as a whole when the run stores them again.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.store.case import Case, _now
from sensorprint.store.jsonvalues import dumps, loads
from sensorprint.store.names import storable

CACHE_PREFIX = "cl-"


@dataclass(frozen=True)
class ClusterFile:
    """One file as a clustering read it."""

    id: int
    path: str
    sha256: str | None
    size_bytes: int | None
    mtime_ns: int | None
    kind: str | None
    width: int | None
    height: int | None
    status: str
    error: str | None
    array_file: str | None
    details: dict[str, Any]
    run_id: int | None


@dataclass(frozen=True)
class PairScore:
    """One stored score: two files (key "pair"), or a file (b) against the group fingerprint named by `key`."""

    key: str
    a_id: int
    b_id: int
    score: float
    ncc: float | None
    p_fa: float | None
    n_positions: int | None
    transform: dict[str, Any] | None
    details: dict[str, Any]
    run_id: int | None


@dataclass(frozen=True)
class StoredCluster:
    """One group of a cluster run: its number in the run, its members (file ids), its link to a device."""

    id: int
    run_id: int
    number: int
    members: tuple[int, ...]
    member_scores: dict[int, float | None]
    device: str | None
    device_score: float | None
    details: dict[str, Any]


def _file(r) -> ClusterFile:
    return ClusterFile(
        id=r["id"],
        path=r["path"],
        sha256=r["sha256"],
        size_bytes=r["size_bytes"],
        mtime_ns=r["mtime_ns"],
        kind=r["kind"],
        width=r["width"],
        height=r["height"],
        status=r["status"],
        error=r["error"],
        array_file=r["array_file"],
        details=loads(r["details"]) or {},
        run_id=r["run_id"],
    )


def _stage_cache(case: Case, arrays: Mapping[str, np.ndarray]) -> Case._Staged:
    """Write a residual cache (.npz, uncompressed) under a temporary name, fsynced: outside any transaction."""
    case.arrays_dir.mkdir(exist_ok=True)
    name = f"{CACHE_PREFIX}{uuid.uuid4().hex[:16]}.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    data = buffer.getbuffer()
    tmp = case.arrays_dir / f".tmp-{name}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Case._Staged(tmp, case.arrays_dir / name, hashlib.sha256(data).hexdigest())


def save_file(case: Case, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None, run_id: int) -> int:
    """Record one file read by a clustering (and its residual cache); replaces an earlier record of the path.

    fields: path, sha256, size_bytes, mtime_ns, kind, width, height, status, error, details.
    Returns the file's id (kept across replacements, so stored scores keep naming it).
    """
    staged = _stage_cache(case, arrays) if arrays is not None else None
    values = (
        fields.get("sha256"),
        fields.get("size_bytes"),
        fields.get("mtime_ns"),
        fields.get("kind"),
        fields.get("width"),
        fields.get("height"),
        fields["status"],
        storable(fields.get("error")) if fields.get("error") else None,
        staged.name if staged else None,
        staged.sha256 if staged else None,
        dumps(dict(fields.get("details") or {})),
        run_id,
    )
    path = storable(str(fields["path"]))
    try:
        with case._write() as conn:
            if staged is not None:
                staged.publish(case.arrays_dir)
            old = conn.execute("SELECT id, array_file FROM cluster_files WHERE path = ?", (path,)).fetchone()
            columns = "sha256, size_bytes, mtime_ns, kind, width, height, status, error, array_file, array_sha256"
            if old is None:
                cursor = conn.execute(
                    f"INSERT INTO cluster_files (path, {columns}, details, run_id, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (path, *values, _now()),
                )
                file_id = int(cursor.lastrowid)
            else:
                file_id = int(old["id"])
                assignments = ", ".join(f"{c.strip()} = ?" for c in (columns + ", details, run_id").split(","))
                conn.execute(f"UPDATE cluster_files SET {assignments} WHERE id = ?", (*values, file_id))
                conn.execute("DELETE FROM cluster_pairs WHERE a_id = ? OR b_id = ?", (file_id, file_id))
            Case._audit_in(conn, "cluster file read", {"path": path, "sha256": values[0], "status": values[6]}, run_id)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    if old is not None and old["array_file"] and old["array_file"] != (staged.name if staged else None):
        (case.arrays_dir / old["array_file"]).unlink(missing_ok=True)
    return file_id


def files(case: Case) -> list[ClusterFile]:
    """Every file clusterings have read, by id."""
    return [_file(r) for r in case._rows("SELECT * FROM cluster_files ORDER BY id")]


def find_file(case: Case, path: str) -> ClusterFile | None:
    rows = case._rows("SELECT * FROM cluster_files WHERE path = ?", (storable(str(path)),))
    return _file(rows[0]) if rows else None


def cache_path(case: Case, record: ClusterFile) -> Path:
    """Where a file's residual cache lies; CaseError when the record names none."""
    if not record.array_file:
        raise CaseError(f"{record.path} has no residual cache in {case.root} (it could not be read)")
    return case.arrays_dir / record.array_file


def load_cache(case: Case, record: ClusterFile, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a file's residual cache (all, or only `names`)."""
    with np.load(cache_path(case, record), allow_pickle=False) as data:
        return {key: data[key] for key in (names or data.files)}


def group_cache_path(case: Case, key: str) -> Path:
    """Where the fingerprint of the group whose scores are stored under `key` is kept (it may not exist yet).

    The name derives from the key (the hashes of the files it is estimated from), so a
    resumed run finds it without a record: the file is renamed into place whole.
    """
    return case.arrays_dir / f"{CACHE_PREFIX}group-{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"


def save_group_cache(case: Case, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Keep a group fingerprint's arrays (written whole under a temporary name, then renamed), so that the worker
    tasks scoring files against it load it instead of estimating it again from the members' caches."""
    staged = _stage_cache(case, arrays)
    target = group_cache_path(case, key)
    Case._Staged(staged.tmp, target, staged.sha256).publish(case.arrays_dir)  # renamed, and the rename fsynced
    return target


def save_scores(case: Case, rows: Sequence[PairScore], run_id: int) -> int:
    """Store scores in one transaction; a score already stored for its (key, a, b) is kept. Returns how many were new."""
    if not rows:
        return 0
    added = 0
    with case._write() as conn:
        for row in rows:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO cluster_pairs (key, a_id, b_id, score, ncc, p_fa, n_positions, transform, "
                "details, run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.key,
                    int(row.a_id),
                    int(row.b_id),
                    float(row.score),
                    None if row.ncc is None else float(row.ncc),
                    None if row.p_fa is None else float(row.p_fa),
                    None if row.n_positions is None else int(row.n_positions),
                    dumps(dict(row.transform)) if row.transform else None,
                    dumps(dict(row.details or {})),
                    run_id,
                    _now(),
                ),
            )
            added += cursor.rowcount
    return added


def scores(case: Case, key: str | None = None) -> list[PairScore]:
    """Stored scores (all, or those of one key), in key, a, b order."""
    where, params = ("WHERE key = ?", (key,)) if key is not None else ("", ())
    rows = case._rows(f"SELECT * FROM cluster_pairs {where} ORDER BY key, a_id, b_id", params)
    return [
        PairScore(
            r["key"],
            r["a_id"],
            r["b_id"],
            r["score"],
            r["ncc"],
            r["p_fa"],
            r["n_positions"],
            loads(r["transform"]) if r["transform"] else None,
            loads(r["details"]) or {},
            r["run_id"],
        )
        for r in rows
    ]


def save_groups(case: Case, run_id: int, groups: Sequence[Mapping[str, Any]]) -> None:
    """Store the groups of a run in one transaction, replacing any it stored before.

    groups: dicts with "members" (file ids), optional "scores" {file id: PCE against the
    group fingerprint}, "device", "device_score" and "details".
    """
    with case._write() as conn:
        old = [r["id"] for r in conn.execute("SELECT id FROM clusters WHERE run_id = ?", (run_id,))]
        for cluster_id in old:
            conn.execute("DELETE FROM cluster_members WHERE cluster_id = ?", (cluster_id,))
        conn.execute("DELETE FROM clusters WHERE run_id = ?", (run_id,))
        for number, group in enumerate(groups, start=1):
            cursor = conn.execute(
                "INSERT INTO clusters (run_id, number, n_members, device, device_score, details, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    number,
                    len(group["members"]),
                    group.get("device"),
                    group.get("device_score"),
                    dumps(dict(group.get("details") or {})),
                    _now(),
                ),
            )
            member_scores = group.get("scores") or {}
            for file_id in group["members"]:
                score = member_scores.get(file_id)
                conn.execute(
                    "INSERT INTO cluster_members (cluster_id, file_id, score, details) VALUES (?, ?, ?, '{}')",
                    (cursor.lastrowid, int(file_id), None if score is None else float(score)),
                )
        details = {
            "groups": sum(1 for g in groups if len(g["members"]) > 1),
            "media": sum(len(g["members"]) for g in groups),
        }
        Case._audit_in(conn, "clusters saved", details, run_id)


def latest_run(case: Case) -> int | None:
    """The last cluster run that stored groups (None when no clustering was done)."""
    rows = case._rows("SELECT MAX(run_id) AS run_id FROM clusters")
    return rows[0]["run_id"] if rows and rows[0]["run_id"] is not None else None


def groups(case: Case, run_id: int | None = None) -> list[StoredCluster]:
    """The groups of a cluster run (default: the latest), by number."""
    run_id = latest_run(case) if run_id is None else run_id
    if run_id is None:
        return []
    out = []
    for r in case._rows("SELECT * FROM clusters WHERE run_id = ? ORDER BY number", (run_id,)):
        members = case._rows(
            "SELECT file_id, score FROM cluster_members WHERE cluster_id = ? ORDER BY file_id", (r["id"],)
        )
        out.append(
            StoredCluster(
                id=r["id"],
                run_id=r["run_id"],
                number=r["number"],
                members=tuple(m["file_id"] for m in members),
                member_scores={m["file_id"]: m["score"] for m in members},
                device=r["device"],
                device_score=r["device_score"],
                details=loads(r["details"]) or {},
            )
        )
    return out


def get_group(case: Case, cluster_id: int) -> StoredCluster | None:
    """One stored group by its id (the ID `sensorprint clusters` shows)."""
    rows = case._rows("SELECT run_id FROM clusters WHERE id = ?", (cluster_id,))
    if not rows:
        return None
    return next(g for g in groups(case, rows[0]["run_id"]) if g.id == cluster_id)
