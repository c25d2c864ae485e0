"""The case store: one directory per case, SQLite for the records, .npy files for the arrays.

Layout of a case directory:

    case.sqlite   devices, media (paths and hashes, never the evidence), fingerprints'
                  metadata, transform hints, results, models, runs, the audit log
    arrays/       fingerprints K as float32 (or float16: `Precision`) .npy files, and the
                  enrollment sums behind them as .npz files (`commit_enrollment`)
    models/       trained networks (written by sensorprint.learn; the store keeps the table)
    backups/      a copy of case.sqlite taken before each schema upgrade

Durability: every public method that writes is ONE committed transaction
(SQLite, WAL journal, synchronous=FULL), so a process killed with SIGKILL at
any instant leaves the case as it was after the last completed call. Arrays
are written to a temporary file, fsynced and renamed before the row that
names them is committed; a kill in between leaves at most an unreferenced
file (see `unreferenced_arrays`), never a row without its array.

Concurrency: one writing process at a time (the scan) and any number of
readers (web interface, report) in other processes; `busy_timeout` makes a
second writer wait instead of failing. A `Case` object may be shared by
threads (calls are serialised by a lock) but must not cross a fork: open a
new one in each worker process.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.results import Match
from sensorprint.store import schema
from sensorprint.store.jsonvalues import dumps, loads
from sensorprint.store.records import (
    FINGERPRINT_SOURCES,
    MEDIUM_STATUSES,
    METHODS,
    ROLES,
    TARGET_KINDS,
    AuditEntry,
    Device,
    FingerprintRecord,
    MediumRecord,
    ModelRecord,
    Precision,
    RunRecord,
    stored_form,
)

DB_NAME = "case.sqlite"
ARRAYS_DIR = "arrays"
MODELS_DIR = "models"
BACKUPS_DIR = "backups"
BUSY_TIMEOUT_MS = 30_000

_MEDIUM_FIELDS = (
    "path",
    "sha256",
    "size_bytes",
    "mtime_ns",
    "kind",
    "width",
    "height",
    "orientation",
    "metadata",
    "role",
    "device_id",
    "status",
    "error",
    "details",
)
_REQUIRED_MEDIUM_FIELDS = ("path",)


def tool_version() -> str:
    """The version of sensorprint writing the case (recorded with every run and migration)."""
    from sensorprint import __version__

    return __version__


def _now() -> str:
    """UTC time as ISO 8601 with microseconds (sortable as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _connect(db: Path, *, read_only: bool, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    if read_only:
        conn = sqlite3.connect(
            f"file:{quote(str(db))}?mode=ro",
            uri=True,
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        conn = sqlite3.connect(db, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    if not read_only:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise CaseError(f"cannot put {db} in WAL mode (got {mode!r}); put the case on a local disk")
        # FULL: a committed result survives a power cut too, not only a killed process.
        conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _schema_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has_table:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate(conn: sqlite3.Connection, root: Path | None) -> None:
    """Apply pending migrations, each in its own transaction; back the database up first."""
    target = schema.current_version()
    version = _schema_version(conn)
    if version >= target:
        return
    if version > 0 and root is not None:
        backups = root / BACKUPS_DIR
        backups.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        backup = sqlite3.connect(backups / f"case-v{version}-{stamp}.sqlite")
        try:
            conn.backup(backup)
        finally:
            backup.close()
    # Table rebuilds in migrations need foreign keys off; the check below replaces them.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _schema_version(conn)  # another process may have migrated meanwhile
                if version >= target:
                    conn.execute("COMMIT")
                    break
                schema.MIGRATIONS[version](conn)
                problems = conn.execute("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise CaseError(
                        f"schema upgrade to version {version + 1} broke {len(problems)} references; "
                        "the case was left unchanged, report this as a bug"
                    )
                now = _now()
                conn.execute(
                    "INSERT INTO schema_version (version, applied, tool_version) VALUES (?, ?, ?)",
                    (version + 1, now, tool_version()),
                )
                conn.execute(
                    "INSERT INTO audit (time, run_id, action, details) VALUES (?, NULL, ?, ?)",
                    (now, "schema upgraded", dumps({"from": version, "to": version + 1})),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


def _user_error(exc: sqlite3.OperationalError, root: Path) -> Exception:
    """The SQLite failures a user can cause or fix, as CaseError; anything else stays a bug."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return CaseError(
            f"the case {root} is being changed by another sensorprint process; "
            "wait for it to finish and run the command again"
        )
    if "disk is full" in text or "database or disk is full" in text:
        return CaseError(f"the disk holding the case {root} is full; free space and run the command again")
    if "readonly" in text or "read-only" in text:
        return CaseError(f"the case {root} cannot be written (read-only file or folder); check its permissions")
    if "disk i/o error" in text:
        return CaseError(f"the disk holding the case {root} failed to write (I/O error); check the disk")
    return exc


def as_match(row: Match | Mapping[str, Any]) -> Match:
    """A `Match` from a Match or from a dict with its field names ('details' read as its evidence)."""
    if isinstance(row, Match):
        return row
    values = dict(row)
    if "details" in values:
        values["evidence"] = values.pop("details")
    try:
        return Match(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a result row ({exc}): {dict(row)!r}") from exc


def _result_row_values(r: Mapping[str, Any]) -> dict[str, Any]:
    """A stored result row as plain values (its JSON columns decoded), for an audit entry that keeps it."""
    values = dict(r)
    for column in ("transform", "details"):
        values[column] = loads(values[column])
    return values


def _is_leftover_of_create(entry: Path) -> bool:
    """Entries an interrupted `Case.create` may leave; they do not make a folder 'non-empty'."""
    return entry.name in (ARRAYS_DIR, MODELS_DIR) or entry.name.startswith(DB_NAME + ".init-")


def match_from_row(r: Mapping[str, Any]) -> Match:
    """A stored result row (of the `results` table) as the `Match` it was made from."""
    return Match(
        method=r["method"],
        target=r["target"],
        score=r["score"],
        decision=r["decision"],
        target_kind=r["target_kind"],
        ncc=r["ncc"],
        p_fa=r["p_fa"],
        transform=loads(r["transform"]),
        evidence=loads(r["details"]) or {},
        id=r["id"],
        medium_id=r["medium_id"],
        run_id=r["run_id"],
        created=r["created"],
    )


class Case:
    """A case directory. Create with `Case.create(root)`, open with `Case.open(root)`."""

    def __init__(self, root: Path, conn: sqlite3.Connection, *, read_only: bool) -> None:
        self.root = root
        self.arrays_dir = root / ARRAYS_DIR
        self.models_dir = root / MODELS_DIR
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(cls, root: Path | str) -> Case:
        """Make a new case in `root` (a new or empty folder) and open it for writing."""
        root = Path(root).expanduser().absolute()
        if root.exists() and not root.is_dir():
            raise CaseError(f"{root} is a file, not a folder; choose a new folder for the case")
        if (root / DB_NAME).exists():
            raise CaseError(f"{root} is already a sensorprint case; open it instead of creating it")
        if root.is_dir() and any(not _is_leftover_of_create(e) for e in root.iterdir()):
            raise CaseError(f"{root} is a folder that is not empty and not a case; choose a new or empty folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / ARRAYS_DIR).mkdir(exist_ok=True)
            (root / MODELS_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise CaseError(
                f"cannot create the case folder {root}: {exc.strerror}; check the path and permissions"
            ) from exc
        for leftover in root.glob(f"{DB_NAME}.init-*"):  # from an earlier `init` that was killed
            leftover.unlink(missing_ok=True)
        # Build the database under a temporary name and rename it: a killed `init` leaves no half case.
        tmp = root / f"{DB_NAME}.init-{uuid.uuid4().hex[:8]}"
        conn = _connect(tmp, read_only=False)
        try:
            _migrate(conn, None)
            conn.execute(
                "INSERT INTO audit (time, run_id, action, details) VALUES (?, NULL, 'case created', ?)",
                (_now(), dumps({"root": str(root), "tool_version": tool_version()})),
            )
        finally:
            conn.close()  # checkpoints and removes the -wal/-shm files
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        os.replace(tmp, root / DB_NAME)
        _fsync_dir(root)
        return cls.open(root)

    @classmethod
    def open(cls, root: Path | str, *, read_only: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_MS / 1000) -> Case:
        """Open an existing case; upgrades an older schema (not in read-only mode).

        `busy_timeout_s` (seconds) is how long a write waits for another process's write to end.
        """
        root = Path(root).expanduser().absolute()
        db = root / DB_NAME
        if not db.is_file():
            raise CaseError(f"{root} is not a sensorprint case; create one with `sensorprint init {root}`")
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(db, read_only=read_only, busy_timeout_ms=int(busy_timeout_s * 1000))
            version = _schema_version(conn)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise CaseError(
                    f"cannot open {db} ({exc}); check that the case folder is readable and writable"
                ) from exc
            raise CaseError(f"{db} is damaged or not a sensorprint database ({exc}); restore it from a backup") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if version == 0:
            conn.close()
            raise CaseError(f"{root} is not a sensorprint case; create one with `sensorprint init {root}`")
        newest = schema.current_version()
        if version > newest:
            conn.close()
            raise CaseError(
                f"{root} was written by a newer sensorprint (schema {version}, this one reads up to "
                f"{newest}); upgrade sensorprint to open it"
            )
        if version < newest:
            if read_only:
                conn.close()
                raise CaseError(
                    f"{root} has an older schema ({version} < {newest}); open it once for writing "
                    "(any sensorprint command that changes the case) to upgrade it"
                )
            try:
                _migrate(conn, root)
            except BaseException:
                conn.close()
                raise
        return cls(root, conn, read_only=read_only)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Case({str(self.root)!r}{', read_only=True' if self.read_only else ''})"

    @property
    def schema_version(self) -> int:
        with self._lock:
            return _schema_version(self._db)

    # ------------------------------------------------------------------ plumbing

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CaseError(f"the case {self.root} is closed; open it again")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; rolled back on any exception (including KeyboardInterrupt)."""
        if self.read_only:
            raise CaseError(f"the case {self.root} was opened read-only; open it for writing to change it")
        with self._lock:
            conn = self._db
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _user_error(exc, self.root) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise _user_error(exc, self.root) from exc
                raise

    @contextmanager
    def snapshot(self) -> Iterator[Case]:
        """Read several things from ONE consistent state of the case (e.g. for a report while a scan writes)."""
        with self._lock:
            conn = self._db
            if conn.in_transaction:  # nested: the outer snapshot already holds one
                yield self
                return
            conn.execute("BEGIN")
            try:
                yield self
            finally:
                conn.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _audit_in(conn: sqlite3.Connection, action: str, details: Mapping[str, Any], run_id: int | None) -> None:
        conn.execute(
            "INSERT INTO audit (time, run_id, action, details) VALUES (?, ?, ?, ?)",
            (_now(), run_id, action, dumps(dict(details))),
        )

    def counts(self) -> dict[str, int]:
        """How much the case holds (for a status line or the web interface's front page)."""
        queries = {
            "devices": "SELECT COUNT(*) FROM devices",
            "fingerprints": "SELECT COUNT(*) FROM fingerprints",
            "reference_media": "SELECT COUNT(*) FROM media WHERE role = 'reference'",
            "evidence_media": "SELECT COUNT(*) FROM media WHERE role = 'evidence'",
            "evidence_errors": "SELECT COUNT(*) FROM media WHERE role = 'evidence' AND status = 'error'",
            "results": "SELECT COUNT(*) FROM results",
            "matches": "SELECT COUNT(*) FROM results WHERE decision = 'match'",
            "models": "SELECT COUNT(*) FROM models",
            "runs": "SELECT COUNT(*) FROM runs",
        }
        with self.snapshot():
            return {name: int(self._rows(sql)[0][0]) for name, sql in queries.items()}

    # ------------------------------------------------------------------ runs and audit

    def start_run(self, command: str, parameters: Mapping[str, Any]) -> int:
        """Record the start of a command with its parameters and the tool version; returns the run id."""
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO runs (command, parameters, tool_version, started, status, pid, host) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (command, dumps(dict(parameters)), tool_version(), _now(), os.getpid(), socket.gethostname()),
            )
            run_id = int(cur.lastrowid)
            self._audit_in(conn, "run started", {"command": command, "parameters": dict(parameters)}, run_id)
        return run_id

    def finish_run(self, run_id: int, status: str, summary: Mapping[str, Any] | None = None) -> None:
        """Record the end of a run: status (e.g. 'ok', 'error', 'interrupted') and a summary."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE runs SET finished = ?, status = ?, summary = ? WHERE id = ?",
                (_now(), status, dumps(dict(summary or {})), run_id),
            )
            if cur.rowcount != 1:
                raise CaseError(f"run {run_id} does not exist in this case")
            self._audit_in(conn, "run finished", {"status": status, "summary": dict(summary or {})}, run_id)

    def runs(self) -> list[RunRecord]:
        return [self._run_record(r) for r in self._rows("SELECT * FROM runs ORDER BY id")]

    def get_run(self, run_id: int) -> RunRecord | None:
        rows = self._rows("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._run_record(rows[0]) if rows else None

    @staticmethod
    def _run_record(r: sqlite3.Row) -> RunRecord:
        return RunRecord(
            id=r["id"],
            command=r["command"],
            parameters=loads(r["parameters"]),
            tool_version=r["tool_version"],
            started=r["started"],
            finished=r["finished"],
            status=r["status"],
            summary=loads(r["summary"]),
            pid=r["pid"],
            host=r["host"],
        )

    def audit(self, action: str, details: Mapping[str, Any], run_id: int | None = None) -> None:
        """Append one line to the audit log (the store already logs its own writes)."""
        with self._write() as conn:
            self._audit_in(conn, action, details, run_id)

    def audit_log(self, run_id: int | None = None) -> list[AuditEntry]:
        if run_id is None:
            rows = self._rows("SELECT * FROM audit ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM audit WHERE run_id = ? ORDER BY id", (run_id,))
        return [AuditEntry(r["id"], r["time"], r["run_id"], r["action"], loads(r["details"])) for r in rows]

    # ------------------------------------------------------------------ devices

    def add_device(
        self, name: str, model: str | None = None, notes: str | None = None, *, run_id: int | None = None
    ) -> Device:
        """Enroll a new device name. CaseError if the name is empty or already taken."""
        name = (name or "").strip()
        if not name:
            raise CaseError("a device needs a non-empty name; give one with --device NAME")
        with self._write() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO devices (name, model, notes, created) VALUES (?, ?, ?, ?)",
                    (name, model, notes, _now()),
                )
            except sqlite3.IntegrityError as exc:
                raise CaseError(f"device {name!r} is already enrolled in this case; use another name") from exc
            device_id = int(cur.lastrowid)
            self._audit_in(
                conn, "device added", {"device_id": device_id, "name": name, "model": model, "notes": notes}, run_id
            )
        return self.get_device_by_id(device_id)  # type: ignore[return-value]

    def ensure_device(
        self, name: str, model: str | None = None, notes: str | None = None, *, run_id: int | None = None
    ) -> Device:
        """The device called `name`, added if new. CaseError if it exists with a different model."""
        existing = self.get_device(name.strip())
        if existing is None:
            return self.add_device(name, model, notes, run_id=run_id)
        if model is not None and existing.model not in (None, model):
            raise CaseError(
                f"device {existing.name!r} is enrolled as model {existing.model!r}, not {model!r}; "
                "check --model or use another device name"
            )
        if model is not None and existing.model is None:
            with self._write() as conn:
                conn.execute("UPDATE devices SET model = ? WHERE id = ?", (model, existing.id))
                self._audit_in(conn, "device model set", {"device_id": existing.id, "model": model}, run_id)
            return self.get_device_by_id(existing.id)  # type: ignore[return-value]
        return existing

    def get_device(self, name: str) -> Device | None:
        rows = self._rows("SELECT * FROM devices WHERE name = ?", (name,))
        return self._device(rows[0]) if rows else None

    def get_device_by_id(self, device_id: int) -> Device | None:
        rows = self._rows("SELECT * FROM devices WHERE id = ?", (device_id,))
        return self._device(rows[0]) if rows else None

    def list_devices(self) -> list[Device]:
        """All enrolled devices, in order of enrollment."""
        return [self._device(r) for r in self._rows("SELECT * FROM devices ORDER BY id")]

    @staticmethod
    def _device(r: sqlite3.Row) -> Device:
        return Device(id=r["id"], name=r["name"], model=r["model"], notes=r["notes"], created=r["created"])

    # ------------------------------------------------------------------ media

    @staticmethod
    def _medium_values(fields: Mapping[str, Any]) -> dict[str, Any]:
        """The columns of one medium, checked; its path and error text made storable (`names.storable`)."""
        from sensorprint.store.names import storable  # a local import: the lead may move it to the top

        unknown = set(fields) - set(_MEDIUM_FIELDS) - {"run_id"}
        if unknown:
            raise TypeError(f"unknown medium fields: {sorted(unknown)}")
        values = {name: fields.get(name) for name in _MEDIUM_FIELDS}
        if not values["path"]:
            raise ValueError("a medium needs a path")
        # a name that is not UTF-8 (lone surrogates) cannot be stored as it is: find_medium escapes alike
        values["path"] = storable(os.fspath(values["path"]))
        if values["error"] is not None:
            values["error"] = storable(str(values["error"]))
        values["role"] = values["role"] or "evidence"
        values["status"] = values["status"] or "ok"
        if values["role"] not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {values['role']!r}")
        if values["status"] not in MEDIUM_STATUSES:
            raise ValueError(f"status must be one of {MEDIUM_STATUSES}, not {values['status']!r}")
        if (values["role"] == "reference") != (values["device_id"] is not None):
            raise ValueError("reference media need a device_id; evidence media must not have one")
        for name in ("metadata", "details"):
            values[name] = None if values[name] is None else dumps(values[name])
        for name in ("size_bytes", "mtime_ns", "width", "height", "orientation", "device_id"):
            if values[name] is not None:
                values[name] = int(values[name])
        return values

    def _upsert_medium(self, conn: sqlite3.Connection, fields: Mapping[str, Any], run_id: int | None) -> int:
        """Insert or update one medium inside the caller's transaction; returns its id.

        When the file's content changed (another SHA-256) or it can no longer be read,
        its earlier results no longer describe it: they leave the results table, and their
        whole rows, with the old content's hash, are kept in the audit entry that says so
        (nothing an examiner once saw is lost).
        """
        v = self._medium_values(fields)
        now = _now()
        row = conn.execute(
            "SELECT id, sha256 FROM media WHERE role = ? AND path = ? AND COALESCE(device_id, 0) = ?",
            (v["role"], v["path"], v["device_id"] or 0),
        ).fetchone()
        columns = [c for c in _MEDIUM_FIELDS]
        if row is None:
            cur = conn.execute(
                f"INSERT INTO media ({', '.join(columns)}, run_id, created, updated) "
                f"VALUES ({', '.join('?' * len(columns))}, ?, ?, ?)",
                [v[c] for c in columns] + [run_id, now, now],
            )
            return int(cur.lastrowid)
        medium_id = int(row["id"])
        if row["sha256"] != v["sha256"] or v["status"] == "error":
            kept = [
                _result_row_values(r) for r in conn.execute("SELECT * FROM results WHERE medium_id = ?", (medium_id,))
            ]
            dropped = conn.execute("DELETE FROM results WHERE medium_id = ?", (medium_id,)).rowcount
            if dropped:
                self._audit_in(
                    conn,
                    "results dropped",
                    {
                        "medium_id": medium_id,
                        "path": v["path"],
                        "count": dropped,
                        "reason": "file changed" if row["sha256"] != v["sha256"] else "file no longer readable",
                        "old_sha256": row["sha256"],
                        "new_sha256": v["sha256"],
                        "results": kept,
                    },
                    run_id,
                )
        conn.execute(
            f"UPDATE media SET {', '.join(c + ' = ?' for c in columns)}, run_id = ?, updated = ? WHERE id = ?",
            [v[c] for c in columns] + [run_id, now, medium_id],
        )
        return medium_id

    def add_medium(
        self,
        *,
        role: str,
        path: str | os.PathLike[str],
        sha256: str | None,
        size_bytes: int | None,
        mtime_ns: int | None,
        kind: str | None,
        width: int | None,
        height: int | None,
        orientation: int | None,
        metadata: Mapping[str, Any] | None,
        status: str = "ok",
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        device_id: int | None = None,
        run_id: int | None = None,
    ) -> int:
        """Insert or update (same role, path and device) one medium; returns its id.

        The path is stored as `names.storable` writes it (names that are not UTF-8 escaped).
        """
        from sensorprint.store.names import storable

        fields = dict(
            role=role,
            path=path,
            sha256=sha256,
            size_bytes=size_bytes,
            mtime_ns=mtime_ns,
            kind=kind,
            width=width,
            height=height,
            orientation=orientation,
            metadata=metadata,
            status=status,
            error=error,
            details=details,
            device_id=device_id,
        )
        with self._write() as conn:
            medium_id = self._upsert_medium(conn, fields, run_id)
            self._audit_in(
                conn,
                "medium recorded",
                {
                    "medium_id": medium_id,
                    "role": role,
                    "path": storable(os.fspath(path)),
                    "sha256": sha256,
                    "device_id": device_id,
                    "status": status,
                    "error": error,
                },
                run_id,
            )
        return medium_id

    def annotate_media(self, notes: Mapping[int, Mapping[str, Any]], *, run_id: int | None = None) -> None:
        """Merge `notes` ({medium id: {key: value}}) into the media's stored details, in one transaction, audited.

        For what a later step learns about a file already recorded (e.g. a reference file's
        fit to the fingerprint of the device's other references).
        """
        with self._write() as conn:
            for medium_id, values in notes.items():
                row = conn.execute("SELECT details FROM media WHERE id = ?", (int(medium_id),)).fetchone()
                if row is None:
                    raise CaseError(f"medium id {medium_id} is not recorded in this case")
                details = {**(loads(row["details"]) or {}), **dict(values)}
                conn.execute(
                    "UPDATE media SET details = ?, updated = ? WHERE id = ?", (dumps(details), _now(), int(medium_id))
                )
            self._audit_in(conn, "media annotated", {"media": {str(k): dict(v) for k, v in notes.items()}}, run_id)

    def find_medium(self, role: str, path: str | os.PathLike[str], device_id: int | None = None) -> MediumRecord | None:
        """The medium recorded under `path` (made storable as `add_medium` stores it), or None."""
        from sensorprint.store.names import storable

        rows = self._rows(
            "SELECT * FROM media WHERE role = ? AND path = ? AND COALESCE(device_id, 0) = ?",
            (role, storable(os.fspath(path)), device_id or 0),
        )
        return self._medium(rows[0]) if rows else None

    def get_medium(self, medium_id: int) -> MediumRecord | None:
        rows = self._rows("SELECT * FROM media WHERE id = ?", (medium_id,))
        return self._medium(rows[0]) if rows else None

    def list_media(
        self, role: str | None = None, device_id: int | None = None, status: str | None = None
    ) -> list[MediumRecord]:
        """Media filtered by role, device and status, in order of first recording."""
        clauses, params = [], []
        for column, value in (("role", role), ("device_id", device_id), ("status", status)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [self._medium(r) for r in self._rows(f"SELECT * FROM media {where} ORDER BY id", params)]

    @staticmethod
    def _medium(r: sqlite3.Row) -> MediumRecord:
        return MediumRecord(
            id=r["id"],
            path=r["path"],
            sha256=r["sha256"],
            size_bytes=r["size_bytes"],
            mtime_ns=r["mtime_ns"],
            kind=r["kind"],
            width=r["width"],
            height=r["height"],
            orientation=r["orientation"],
            metadata=loads(r["metadata"]),
            role=r["role"],
            device_id=r["device_id"],
            status=r["status"],
            error=r["error"],
            details=loads(r["details"]),
            run_id=r["run_id"],
            created=r["created"],
            updated=r["updated"],
        )

    # ------------------------------------------------------------------ fingerprints

    # Array files the store names: fingerprints K (.npy) and enrollment sums (.npz), and their temporaries.
    _ARRAY_PREFIXES = ("fp-", "sums-")
    _TEMPORARY_PREFIXES = (".tmp-fp-", ".tmp-sums-")

    class _Staged:
        """An array file written (fsynced) under a temporary name, to be renamed inside a transaction."""

        def __init__(self, tmp: Path, final: Path, sha256: str) -> None:
            self.tmp, self.final, self.sha256 = tmp, final, sha256

        @property
        def name(self) -> str:
            return self.final.name

        def publish(self, directory: Path) -> None:
            """Give the file its final name; call under the write lock (see `remove_unreferenced_arrays`)."""
            os.replace(self.tmp, self.final)
            _fsync_dir(directory)

        def discard(self) -> None:
            self.final.unlink(missing_ok=True)
            self.tmp.unlink(missing_ok=True)

    @staticmethod
    def _checked_fingerprint(k: np.ndarray) -> np.ndarray:
        """K as a contiguous float32 H×W array; ValueError for an empty or non-finite one."""
        k = np.ascontiguousarray(k, dtype=np.float32)
        if k.ndim < 2 or k.shape[0] == 0 or k.shape[1] == 0:
            raise ValueError(f"a fingerprint must be a non-empty H×W array, not shape {k.shape}")
        if not np.isfinite(k).all():
            raise ValueError("a fingerprint must not contain NaN or infinity")
        return k

    def _stage_fingerprint(
        self, device_id: int, k: np.ndarray, precision: Precision = Precision.FLOAT32
    ) -> Case._Staged:
        """Write K as .npy (at `precision`: `stored_form`) under a temporary name, fsynced, outside the transaction."""
        self.arrays_dir.mkdir(exist_ok=True)
        name = f"fp-d{device_id}-{k.shape[0]}x{k.shape[1]}-{uuid.uuid4().hex[:12]}.npy"
        buffer = io.BytesIO()
        np.save(buffer, stored_form(k, precision), allow_pickle=False)
        data = buffer.getbuffer()
        tmp = self.arrays_dir / f".tmp-{name}"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return Case._Staged(tmp, self.arrays_dir / name, hashlib.sha256(data).hexdigest())

    def _stage_sums(self, device_id: int, shape: tuple[int, int], state: Mapping[str, np.ndarray]) -> Case._Staged:
        """Write enrollment sums (`FingerprintAccumulator.state()`) as .npz under a temporary name, fsynced."""
        from sensorprint.hashing import sha256_of_file

        self.arrays_dir.mkdir(exist_ok=True)
        name = f"sums-d{device_id}-{shape[0]}x{shape[1]}-{uuid.uuid4().hex[:12]}.npz"
        tmp = self.arrays_dir / f".tmp-{name}"
        with open(tmp, "wb") as fh:
            np.savez(fh, **{key: np.asarray(value) for key, value in state.items()})
            fh.flush()
            os.fsync(fh.fileno())
        return Case._Staged(tmp, self.arrays_dir / name, sha256_of_file(tmp))

    def _put_fingerprint(
        self,
        conn: sqlite3.Connection,
        device: Device,
        staged: Case._Staged,
        shape: tuple[int, ...],
        fields: Mapping[str, Any],
        run_id: int | None,
        invalidate_results: bool,
    ) -> str | None:
        """Name a staged K and record it, inside the caller's transaction; returns the array file it replaces.

        fields: n_media, quality, media_hashes, source, parameters (as `save_fingerprint` takes them).
        """
        # The array gets its final name only under the write lock, so that
        # `remove_unreferenced_arrays` (which holds the same lock) never sees it half-committed.
        staged.publish(self.arrays_dir)
        height, width = int(shape[0]), int(shape[1])
        old = conn.execute(
            "SELECT array_file FROM fingerprints WHERE device_id = ? AND height = ? AND width = ?",
            (device.id, height, width),
        ).fetchone()
        old_file = old["array_file"] if old else None
        quality = fields["quality"]
        conn.execute(
            "INSERT INTO fingerprints (device_id, height, width, array_file, array_sha256, shape, n_media, "
            "quality, media_hashes, source, parameters, run_id, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id, height, width) DO UPDATE SET array_file = excluded.array_file, "
            "array_sha256 = excluded.array_sha256, shape = excluded.shape, n_media = excluded.n_media, "
            "quality = excluded.quality, media_hashes = excluded.media_hashes, source = excluded.source, "
            "parameters = excluded.parameters, run_id = excluded.run_id, created = excluded.created",
            (
                device.id,
                height,
                width,
                staged.name,
                staged.sha256,
                dumps(list(shape)),
                int(fields["n_media"]),
                None if quality is None else float(quality),
                dumps(list(fields["media_hashes"])),
                fields["source"],
                dumps(dict(fields["parameters"])),
                run_id,
                _now(),
            ),
        )
        stale = 0
        if invalidate_results:
            # kept, visibly stale, until the next scan computes them with the new fingerprint (never deleted)
            from sensorprint.store.identity import mark_results_stale

            stale = mark_results_stale(
                conn, device.name, f"fingerprint of {device.name} estimated again (run {run_id})"
            )
        details = {
            "device_id": device.id,
            "device": device.name,
            "shape": list(shape),
            "n_media": int(fields["n_media"]),
        }
        details.update(
            array_file=staged.name, array_sha256=staged.sha256, replaced=old_file, results_marked_stale=stale
        )
        self._audit_in(conn, "fingerprint saved", details, run_id)
        return old_file

    def _drop_replaced(self, old_files: Sequence[str | None], new_files: Sequence[str]) -> None:
        """Delete array files that a committed transaction stopped naming."""
        for old_file in old_files:
            if old_file and old_file not in new_files:
                (self.arrays_dir / old_file).unlink(missing_ok=True)

    def save_fingerprint(
        self,
        device_id: int,
        k: np.ndarray,
        *,
        n_media: int,
        quality: float | None,
        media_hashes: Sequence[str],
        source: str,
        parameters: Mapping[str, Any],
        run_id: int | None = None,
        invalidate_results: bool = True,
        precision: Precision = Precision.FLOAT32,
    ) -> FingerprintRecord:
        """Store K of a device (.npy in arrays/, float32 or `precision`), replacing its fingerprint of the same size.

        With `invalidate_results` (default) the device's PRNU results are marked stale in
        the same transaction (kept, never deleted): they were computed against the old
        fingerprint, they no longer count as decisions, and a resumed scan computes them again.
        """
        if source not in FINGERPRINT_SOURCES:
            raise ValueError(f"source must be one of {FINGERPRINT_SOURCES}, not {source!r}")
        k = self._checked_fingerprint(k)
        device = self.get_device_by_id(device_id)
        if device is None:
            raise CaseError(f"device id {device_id} is not enrolled in this case")
        fields = dict(n_media=n_media, quality=quality, media_hashes=media_hashes, source=source, parameters=parameters)
        staged = self._stage_fingerprint(device_id, k, precision)
        try:
            with self._write() as conn:
                old_file = self._put_fingerprint(conn, device, staged, k.shape, fields, run_id, invalidate_results)
        except BaseException:
            staged.discard()
            raise
        self._drop_replaced([old_file], [staged.name])
        return next(f for f in self.fingerprints(device_id) if f.height == k.shape[0] and f.width == k.shape[1])

    def fingerprints(self, device_id: int | None = None) -> list[FingerprintRecord]:
        """Stored fingerprints (all, or one device's); `record.load()` gives K memory-mapped."""
        sql = (
            "SELECT f.*, d.name AS device_name FROM fingerprints f JOIN devices d ON d.id = f.device_id "
            + ("WHERE f.device_id = ? " if device_id is not None else "")
            + "ORDER BY f.device_id, f.id"
        )
        rows = self._rows(sql, (device_id,) if device_id is not None else ())
        return [
            FingerprintRecord(
                id=r["id"],
                device_id=r["device_id"],
                device_name=r["device_name"],
                height=r["height"],
                width=r["width"],
                path=self.arrays_dir / r["array_file"],
                array_sha256=r["array_sha256"],
                shape=tuple(loads(r["shape"])),
                n_media=r["n_media"],
                quality=r["quality"],
                media_hashes=loads(r["media_hashes"]),
                source=r["source"],
                parameters=loads(r["parameters"]),
                run_id=r["run_id"],
                created=r["created"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ enrollment sums

    def _legacy_sums_path(self, device_id: int, shape: tuple[int, int]) -> Path:
        """Where the enrollment workflow kept a device's sums before schema 2 (cols × rows in the name)."""
        return self.arrays_dir / f"device{device_id}_sums_{shape[1]}x{shape[0]}.npz"

    def sums_shapes(self, device_id: int) -> list[tuple[int, int]]:
        """The landscape sizes (rows, cols) at which a device has enrollment sums, in order."""
        shapes = {
            (int(r["height"]), int(r["width"]))
            for r in self._rows("SELECT height, width FROM fingerprint_sums WHERE device_id = ?", (device_id,))
        }
        prefix = f"device{device_id}_sums_"
        for path in self.arrays_dir.glob(f"{prefix}*x*.npz") if self.arrays_dir.is_dir() else []:
            cols, _, rows = path.stem[len(prefix) :].partition("x")
            if cols.isdigit() and rows.isdigit():
                shapes.add((int(rows), int(cols)))
        return sorted(shapes)

    def load_sums(self, device_id: int, shape: tuple[int, int]) -> dict[str, np.ndarray] | None:
        """The enrollment sums of a device at one landscape size (rows, cols), or None when it has none.

        They are what `FingerprintAccumulator.state()` gave (n_media, num, den: the split-half
        sums of Chen et al. 2008) when `commit_enrollment` stored them. A case enrolled
        before schema 2 kept them in `arrays/device<id>_sums_<W>x<H>.npz`; that file is read
        until an enrollment commits newer sums for the size.
        """
        rows = self._rows(
            "SELECT array_file FROM fingerprint_sums WHERE device_id = ? AND height = ? AND width = ?",
            (device_id, int(shape[0]), int(shape[1])),
        )
        path = self.arrays_dir / rows[0]["array_file"] if rows else self._legacy_sums_path(device_id, shape)
        if not rows and not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as state:
                return {name: np.array(state[name]) for name in state.files}
        except (OSError, ValueError) as exc:
            raise CaseError(
                f"the enrollment sums {path.name} of device id {device_id} cannot be read ({exc}); "
                "restore the case from a backup, or enroll the references under a new device name"
            ) from exc

    def _put_references(self, conn: sqlite3.Connection, device_id: int, media: Sequence[Mapping[str, Any]], run_id):
        """Record reference media of a device inside the caller's transaction; returns how many are readable."""
        readable = 0
        for medium in media:
            fields = {**dict(medium), "role": "reference", "device_id": device_id}
            fields.pop("run_id", None)
            medium_id = self._upsert_medium(conn, fields, run_id)
            status = fields.get("status") or "ok"
            readable += status == "ok"
            details = {"medium_id": medium_id, "role": "reference", "path": os.fspath(fields["path"])}
            details.update(sha256=fields.get("sha256"), device_id=device_id, status=status, error=fields.get("error"))
            self._audit_in(conn, "medium recorded", details, run_id)
        return readable

    def _put_sums(self, conn: sqlite3.Connection, device_id: int, shape, staged: Case._Staged, n_media: int, run_id):
        """Name staged sums and record them inside the caller's transaction; returns the file they replace."""
        staged.publish(self.arrays_dir)
        old = conn.execute(
            "SELECT array_file FROM fingerprint_sums WHERE device_id = ? AND height = ? AND width = ?",
            (device_id, shape[0], shape[1]),
        ).fetchone()
        conn.execute(
            "INSERT INTO fingerprint_sums (device_id, height, width, array_file, array_sha256, n_media, run_id, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, height, width) DO UPDATE SET "
            "array_file = excluded.array_file, array_sha256 = excluded.array_sha256, n_media = excluded.n_media, "
            "run_id = excluded.run_id, updated = excluded.updated",
            (device_id, shape[0], shape[1], staged.name, staged.sha256, int(n_media), run_id, _now()),
        )
        return old["array_file"] if old else None

    @staticmethod
    def _behind(conn: sqlite3.Connection, device_id: int, shape: tuple[int, int]) -> dict[str, Any]:
        """n_media, media_hashes and source of the fingerprint of a device at a landscape size (rows, cols)."""
        # a crop registered into a larger fingerprint (details.registration, `workflow.crops`) counts there
        rows = conn.execute(
            "SELECT sha256, kind FROM media WHERE role = 'reference' AND device_id = ? AND status = 'ok' AND ("
            "(json_extract(details, '$.registration.rows') IS NULL AND MIN(height, width) = ? AND MAX(height, width) = ?)"
            " OR (json_extract(details, '$.registration.rows') = ? AND json_extract(details, '$.registration.cols') = ?)"
            ") ORDER BY id",
            (device_id, shape[0], shape[1], shape[0], shape[1]),
        ).fetchall()
        kinds = {r["kind"] for r in rows}
        source = kinds.pop() if len(kinds) == 1 else "mixed"
        return {"n_media": len(rows), "media_hashes": sorted(r["sha256"] for r in rows), "source": source}

    def _mark_stale_in(self, conn: sqlite3.Connection, reason: str, run_id: int | None) -> None:
        """`mark_models_stale` for every network, inside the caller's transaction."""
        count = conn.execute("UPDATE models SET stale = 1, stale_reason = ? WHERE stale = 0", (reason,)).rowcount
        if count:
            self._audit_in(conn, "models marked stale", {"reason": reason, "target": None, "count": count}, run_id)

    def commit_enrollment(
        self,
        device_id: int,
        media: Sequence[Mapping[str, Any]],
        sums: Mapping[tuple[int, int], Mapping[str, np.ndarray]],
        fingerprints: Mapping[tuple[int, int], tuple[np.ndarray, float | None]],
        *,
        parameters: Mapping[str, Any],
        run_id: int | None = None,
        stale_reason: str | None = None,
        precision: Precision = Precision.FLOAT32,
    ) -> list[FingerprintRecord]:
        """THE enrollment commit: reference media, the sums that include them and their fingerprints, in ONE transaction.

        media: fields of `add_medium` (role and device are set here). sums: the device's
        whole sums per landscape size (rows, cols), as `FingerprintAccumulator.state()`
        gives them, replacing the stored ones. fingerprints: (K, quality) per size, K of
        that shape; each fingerprint's n_media, media hashes and source are those of the
        device's readable references of its size once `media` are recorded. The arrays
        are written (fsynced) before the transaction and named inside it, so a process
        killed at any instant leaves either all of it or none of it (and at most
        unreferenced array files). The device's PRNU results are invalidated; with
        `stale_reason`, readable new media mark every network stale. precision: how each
        K is kept on disk (`Precision`; the sums are always kept in full). Returns the
        fingerprints saved.
        """
        device = self.get_device_by_id(device_id)
        if device is None:
            raise CaseError(f"device id {device_id} is not enrolled in this case")
        ks = {tuple(shape): self._checked_fingerprint(k) for shape, (k, _) in fingerprints.items()}
        for shape, k in ks.items():
            if k.shape[:2] != shape:
                raise ValueError(f"the fingerprint for size {shape} has shape {k.shape}")
        sums_files: dict[tuple[int, int], tuple[Case._Staged, int]] = {}
        k_files: dict[tuple[int, int], tuple[Case._Staged, float | None]] = {}
        try:
            for shape in sorted(sums):
                sums_files[shape] = (self._stage_sums(device_id, shape, sums[shape]), int(sums[shape]["n_media"]))
            for shape in sorted(ks):
                k_files[shape] = (self._stage_fingerprint(device_id, ks[shape], precision), fingerprints[shape][1])
            with self._write() as conn:
                replaced = self._enrollment_in(
                    conn, device, media, sums_files, k_files, parameters, run_id, stale_reason
                )
        except BaseException:
            for staged, _ in (*sums_files.values(), *k_files.values()):
                staged.discard()
            raise
        self._drop_replaced(replaced, [staged.name for staged, _ in (*sums_files.values(), *k_files.values())])
        for shape in sums_files:  # the committed sums include those of the pre-schema-2 file
            self._legacy_sums_path(device_id, shape).unlink(missing_ok=True)
        return [f for f in self.fingerprints(device_id) if (f.height, f.width) in ks]

    def _enrollment_in(
        self,
        conn: sqlite3.Connection,
        device: Device,
        media: Sequence[Mapping[str, Any]],
        sums_files: Mapping[tuple[int, int], tuple[Case._Staged, int]],
        k_files: Mapping[tuple[int, int], tuple[Case._Staged, float | None]],
        parameters: Mapping[str, Any],
        run_id: int | None,
        stale_reason: str | None,
    ) -> list[str | None]:
        """The body of `commit_enrollment`'s transaction; returns the array files it replaced."""
        readable = self._put_references(conn, device.id, media, run_id)
        replaced = [
            self._put_sums(conn, device.id, shape, staged, n_media, run_id)
            for shape, (staged, n_media) in sums_files.items()
        ]
        for shape, (staged, quality) in k_files.items():
            fields = {**self._behind(conn, device.id, shape), "quality": quality, "parameters": parameters}
            replaced.append(self._put_fingerprint(conn, device, staged, shape, fields, run_id, True))
        if stale_reason and readable:
            self._mark_stale_in(conn, stale_reason, run_id)
        details = {"device_id": device.id, "device": device.name, "media": len(media), "readable": readable}
        details["sums"] = [[*shape, n_media] for shape, (_, n_media) in sums_files.items()]
        details["fingerprints"] = [list(shape) for shape in k_files]
        self._audit_in(conn, "enrollment committed", details, run_id)
        return replaced

    def verify_arrays(self) -> list[str]:
        """Check every fingerprint and enrollment-sums file against the SHA-256 recorded when it was saved.

        Returns the problems, one line each.
        """
        from sensorprint.hashing import sha256_of_file

        problems = []
        for record in self.fingerprints():
            try:
                record.verify()
            except CaseError as exc:
                problems.append(str(exc))
        rows = self._rows(
            "SELECT s.*, d.name FROM fingerprint_sums s JOIN devices d ON d.id = s.device_id ORDER BY s.device_id"
        )
        for r in rows:
            what = f"enrollment sums of {r['name']!r} at {r['width']}x{r['height']} ({r['array_file']})"
            try:
                changed = sha256_of_file(self.arrays_dir / r["array_file"]) != r["array_sha256"]
            except OSError as exc:
                problems.append(f"{what} are missing ({exc.strerror}); enroll the device's references again")
                continue
            if changed:
                problems.append(f"{what} were changed after they were saved (SHA-256 differs); re-enroll the device")
        return problems

    def _named_arrays(self, conn: sqlite3.Connection) -> set[str]:
        """The array files the records name (fingerprints and enrollment sums)."""
        rows = conn.execute("SELECT array_file FROM fingerprints UNION SELECT array_file FROM fingerprint_sums")
        return {r["array_file"] for r in rows}

    def unreferenced_arrays(self) -> list[Path]:
        """Array files no record names (left by a process killed between writing and committing)."""
        with self._lock:
            named = self._named_arrays(self._db)
        if not self.arrays_dir.is_dir():
            return []
        prefixes = self._ARRAY_PREFIXES + self._TEMPORARY_PREFIXES
        return sorted(
            p for p in self.arrays_dir.iterdir() if p.is_file() and p.name.startswith(prefixes) and p.name not in named
        )

    def remove_unreferenced_arrays(
        self, *, temporary_older_than_s: float = 3600.0, run_id: int | None = None
    ) -> list[Path]:
        """Delete array files no record names (left by killed processes); returns them.

        Runs under the write lock, which `save_fingerprint` and `commit_enrollment` hold
        while they name a new array, so an array being saved by another process is never
        removed. Temporary files of a save still writing are kept unless older than the limit.
        """
        removed: list[Path] = []
        with self._write() as conn:
            named = self._named_arrays(conn)
            now = time.time()
            for path in sorted(self.arrays_dir.iterdir()) if self.arrays_dir.is_dir() else []:
                if not path.is_file() or path.name in named:
                    continue
                orphan = path.name.startswith(self._ARRAY_PREFIXES)
                stale_tmp = (
                    path.name.startswith(self._TEMPORARY_PREFIXES)
                    and now - path.stat().st_mtime > temporary_older_than_s
                )
                if orphan or stale_tmp:
                    path.unlink(missing_ok=True)
                    removed.append(path)
            if removed:
                self._audit_in(conn, "unreferenced arrays removed", {"files": [p.name for p in removed]}, run_id)
        return removed

    # ------------------------------------------------------------------ transform hints

    def set_hint(self, device_id: int, key: str, transform: Mapping[str, Any], *, run_id: int | None = None) -> None:
        """Remember the transform found for a device and a query size (key e.g. '1920x1080')."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO transform_hints (device_id, key, transform, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (device_id, key) DO UPDATE SET transform = excluded.transform, updated = excluded.updated",
                (device_id, key, dumps(dict(transform)), _now()),
            )
            self._audit_in(
                conn, "transform hint set", {"device_id": device_id, "key": key, "transform": dict(transform)}, run_id
            )

    def all_hints(self) -> dict[str, dict[str, Any]]:
        """Every remembered transform as {"<device name>|<key>": transform} (what scan workers receive)."""
        rows = self._rows(
            "SELECT d.name, h.key, h.transform FROM transform_hints h JOIN devices d ON d.id = h.device_id "
            "ORDER BY d.name, h.key"
        )
        return {f"{r['name']}|{r['key']}": loads(r["transform"]) for r in rows}

    def get_hint(self, device_id: int, key: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT transform FROM transform_hints WHERE device_id = ? AND key = ?", (device_id, key))
        return loads(rows[0]["transform"]) if rows else None

    def hints(self, device_id: int) -> dict[str, dict[str, Any]]:
        rows = self._rows("SELECT key, transform FROM transform_hints WHERE device_id = ? ORDER BY key", (device_id,))
        return {r["key"]: loads(r["transform"]) for r in rows}

    # ------------------------------------------------------------------ results

    @staticmethod
    def _check_result(row: Match) -> None:
        if row.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {row.method!r}")
        if row.target_kind not in TARGET_KINDS:
            raise ValueError(f"target_kind must be one of {TARGET_KINDS}, not {row.target_kind!r}")
        if not row.target:
            raise ValueError("a result needs a target (device or model name)")

    @staticmethod
    def _optional_float(value: Any) -> float | None:
        return None if value is None else float(value)

    def record_results(
        self,
        medium: Mapping[str, Any] | None = None,
        results: Sequence[Match | Mapping[str, Any]] = (),
        run_id: int | None = None,
        **medium_fields: Any,
    ) -> int:
        """THE scan commit: one medium (inserted or updated) and all its results in ONE transaction.

        `medium` holds the fields of `add_medium` (role defaults to 'evidence'); they may
        also be given as keyword arguments. `results` are `Match` objects or dicts with
        the same keys. A row for the same (medium, method,
        target_kind, target) replaces the earlier one. A process killed during the call
        leaves either the whole file's records or none of them. Returns the medium id.
        """
        fields = {**dict(medium or {}), **medium_fields}
        fields.pop("run_id", None)
        fields.setdefault("role", "evidence")
        results = [as_match(row) for row in results]
        for row in results:
            self._check_result(row)
        with self._write() as conn:
            prnu_targets = {r.target for r in results if r.method == "prnu"}
            if prnu_targets:
                enrolled = {r["name"] for r in conn.execute("SELECT name FROM devices")}
                unknown = sorted(prnu_targets - enrolled)
                if unknown:
                    raise CaseError(
                        f"PRNU results name devices that are not enrolled: {', '.join(unknown)}; enroll them first"
                    )
            medium_id = self._upsert_medium(conn, fields, run_id)
            for row in results:
                self._put_result(conn, medium_id, row, run_id)
            self._audit_in(
                conn,
                "results recorded",
                {
                    "medium_id": medium_id,
                    "path": os.fspath(fields["path"]),
                    "sha256": fields.get("sha256"),
                    "status": fields.get("status") or "ok",
                    "error": fields.get("error"),
                    "results": [[str(r.method), str(r.target_kind), r.target, str(r.decision)] for r in results],
                },
                run_id,
            )
        return medium_id

    def _put_result(self, conn: sqlite3.Connection, medium_id: int, row: Match, run_id: int | None) -> None:
        conn.execute(
            "INSERT INTO results (medium_id, method, target_kind, target, score, ncc, p_fa, decision, transform, "
            "details, run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (medium_id, method, target_kind, target) DO UPDATE SET score = excluded.score, "
            "ncc = excluded.ncc, p_fa = excluded.p_fa, decision = excluded.decision, "
            "transform = excluded.transform, details = excluded.details, run_id = excluded.run_id, "
            "created = excluded.created",
            (
                medium_id,
                str(row.method),
                str(row.target_kind),
                row.target,
                self._optional_float(row.score),
                self._optional_float(row.ncc),
                self._optional_float(row.p_fa),
                str(row.decision),
                None if row.transform is None else dumps(dict(row.transform)),
                dumps(row.details),
                run_id,
                _now(),
            ),
        )

    def results(
        self, medium_id: int | None = None, method: str | None = None, target_kind: str | None = None
    ) -> list[Match]:
        """Stored results, ordered by medium, method, target kind and target."""
        clauses, params = [], []
        for column, value in (("medium_id", medium_id), ("method", method), ("target_kind", target_kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(f"SELECT * FROM results {where} ORDER BY medium_id, method, target_kind, target", params)
        return [match_from_row(r) for r in rows]

    def done_targets(self, medium_id: int, method: str, target_kind: str | None = None) -> set[str]:
        """Targets that already have a result for this medium and method (what a resumed scan skips).

        A result marked stale (`store.identity.mark_results_stale`) is not done: a scan computes it again.
        """
        fresh = "json_extract(details, '$.stale') IS NULL"
        if target_kind is None:
            rows = self._rows(
                f"SELECT target FROM results WHERE medium_id = ? AND method = ? AND {fresh}", (medium_id, method)
            )
        else:
            rows = self._rows(
                f"SELECT target FROM results WHERE medium_id = ? AND method = ? AND target_kind = ? AND {fresh}",
                (medium_id, method, target_kind),
            )
        return {r["target"] for r in rows}

    # ------------------------------------------------------------------ models

    def save_model(
        self,
        target: str,
        path: Path | str,
        classes: Sequence[str],
        record: Mapping[str, Any],
        *,
        run_id: int | None = None,
        invalidate_results: bool = True,
    ) -> ModelRecord:
        """Register a trained network (a file the caller wrote, normally under models/).

        `target` is 'device' or 'model' (what the network classifies). With
        `invalidate_results` (default) the CNN results of that target kind are
        deleted in the same transaction, so a resumed scan recomputes them with
        the new network instead of mixing two networks' answers.
        """
        if target not in TARGET_KINDS:
            raise ValueError(f"target must be one of {TARGET_KINDS}, not {target!r}")
        path = Path(path)
        if not path.is_absolute():
            path = self.root / path
        try:
            stored = str(path.relative_to(self.root))
        except ValueError:
            stored = str(path)  # outside the case: keep it absolute
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO models (target, path, classes, record, run_id, created) VALUES (?, ?, ?, ?, ?, ?)",
                (target, stored, dumps(list(classes)), dumps(dict(record)), run_id, _now()),
            )
            model_id = int(cur.lastrowid)
            dropped = 0
            if invalidate_results:
                dropped = conn.execute(
                    "DELETE FROM results WHERE method = 'cnn' AND target_kind = ?", (target,)
                ).rowcount
            self._audit_in(
                conn,
                "model saved",
                {
                    "model_id": model_id,
                    "target": target,
                    "path": stored,
                    "classes": list(classes),
                    "results_dropped": dropped,
                },
                run_id,
            )
        return self.get_model(model_id)  # type: ignore[return-value]

    def get_model(self, model_id: int) -> ModelRecord | None:
        rows = self._rows("SELECT * FROM models WHERE id = ?", (model_id,))
        return self._model(rows[0]) if rows else None

    def latest_model(self, target: str) -> ModelRecord | None:
        """The newest network for 'device' or 'model' (check `.stale` before trusting it)."""
        rows = self._rows("SELECT * FROM models WHERE target = ? ORDER BY id DESC LIMIT 1", (target,))
        return self._model(rows[0]) if rows else None

    def models(self, target: str | None = None) -> list[ModelRecord]:
        if target is None:
            rows = self._rows("SELECT * FROM models ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM models WHERE target = ? ORDER BY id", (target,))
        return [self._model(r) for r in rows]

    def mark_models_stale(self, reason: str, target: str | None = None, *, run_id: int | None = None) -> int:
        """Mark the networks (all, or one target's) stale, e.g. after a new device is enrolled; returns how many."""
        with self._write() as conn:
            if target is None:
                cur = conn.execute("UPDATE models SET stale = 1, stale_reason = ? WHERE stale = 0", (reason,))
            else:
                cur = conn.execute(
                    "UPDATE models SET stale = 1, stale_reason = ? WHERE stale = 0 AND target = ?", (reason, target)
                )
            count = cur.rowcount
            if count:
                self._audit_in(
                    conn, "models marked stale", {"reason": reason, "target": target, "count": count}, run_id
                )
        return count

    def _model(self, r: sqlite3.Row) -> ModelRecord:
        path = Path(r["path"])
        return ModelRecord(
            id=r["id"],
            target=r["target"],
            path=path if path.is_absolute() else self.root / path,
            classes=loads(r["classes"]),
            record=loads(r["record"]),
            run_id=r["run_id"],
            created=r["created"],
            stale=bool(r["stale"]),
            stale_reason=r["stale_reason"],
        )
