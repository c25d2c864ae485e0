"""The case database schema and its ordered migrations.

`MIGRATIONS[i]` takes a case from schema version i to version i + 1; the
current version is `len(MIGRATIONS)`. A case is migrated on open, one
migration per committed transaction, so a process killed during an upgrade
leaves the case at the last version that was fully applied. Never edit a
migration that has shipped: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


def _v1_initial(conn: sqlite3.Connection) -> None:
    """Version 1: every table of the first release."""
    statements = [
        # The schema version history: one row per applied migration.
        """CREATE TABLE IF NOT EXISTS schema_version (
               version INTEGER PRIMARY KEY,
               applied TEXT NOT NULL,
               tool_version TEXT NOT NULL)""",
        """CREATE TABLE runs (
               id INTEGER PRIMARY KEY,
               command TEXT NOT NULL,
               parameters TEXT NOT NULL,
               tool_version TEXT NOT NULL,
               started TEXT NOT NULL,
               finished TEXT,
               status TEXT NOT NULL DEFAULT 'running',
               summary TEXT,
               pid INTEGER,
               host TEXT)""",
        # Append-only: the triggers below refuse UPDATE and DELETE.
        """CREATE TABLE audit (
               id INTEGER PRIMARY KEY,
               time TEXT NOT NULL,
               run_id INTEGER REFERENCES runs(id),
               action TEXT NOT NULL,
               details TEXT NOT NULL)""",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
               BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TABLE devices (
               id INTEGER PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               model TEXT,
               notes TEXT,
               created TEXT NOT NULL)""",
        """CREATE TABLE media (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL,
               sha256 TEXT,
               size_bytes INTEGER,
               mtime_ns INTEGER,
               kind TEXT,
               width INTEGER,
               height INTEGER,
               orientation INTEGER,
               metadata TEXT,
               role TEXT NOT NULL CHECK (role IN ('reference', 'evidence')),
               device_id INTEGER REFERENCES devices(id),
               status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
               error TEXT,
               details TEXT,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL,
               updated TEXT NOT NULL,
               CHECK ((role = 'reference') = (device_id IS NOT NULL)))""",
        # NULL device_id (evidence) must still be unique per path: index the COALESCE.
        "CREATE UNIQUE INDEX media_key ON media(role, path, COALESCE(device_id, 0))",
        "CREATE INDEX media_device ON media(device_id)",
        "CREATE INDEX media_sha256 ON media(sha256)",
        """CREATE TABLE fingerprints (
               id INTEGER PRIMARY KEY,
               device_id INTEGER NOT NULL REFERENCES devices(id),
               height INTEGER NOT NULL,
               width INTEGER NOT NULL,
               array_file TEXT NOT NULL,
               array_sha256 TEXT NOT NULL,
               shape TEXT NOT NULL,
               n_media INTEGER NOT NULL,
               quality REAL,
               media_hashes TEXT NOT NULL,
               source TEXT NOT NULL CHECK (source IN ('image', 'video', 'mixed')),
               parameters TEXT NOT NULL,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL,
               UNIQUE (device_id, height, width))""",
        """CREATE TABLE transform_hints (
               device_id INTEGER NOT NULL REFERENCES devices(id),
               key TEXT NOT NULL,
               transform TEXT NOT NULL,
               updated TEXT NOT NULL,
               PRIMARY KEY (device_id, key))""",
        """CREATE TABLE results (
               id INTEGER PRIMARY KEY,
               medium_id INTEGER NOT NULL REFERENCES media(id),
               method TEXT NOT NULL CHECK (method IN ('prnu', 'cnn')),
               target_kind TEXT NOT NULL CHECK (target_kind IN ('device', 'model')),
               target TEXT NOT NULL,
               score REAL,
               ncc REAL,
               p_fa REAL,
               decision TEXT NOT NULL,
               transform TEXT,
               details TEXT,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL,
               UNIQUE (medium_id, method, target_kind, target))""",
        """CREATE TABLE models (
               id INTEGER PRIMARY KEY,
               target TEXT NOT NULL CHECK (target IN ('device', 'model')),
               path TEXT NOT NULL,
               classes TEXT NOT NULL,
               record TEXT NOT NULL,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL,
               stale INTEGER NOT NULL DEFAULT 0,
               stale_reason TEXT)""",
    ]
    for statement in statements:
        conn.execute(statement)


def _v2_fingerprint_sums(conn: sqlite3.Connection) -> None:
    """Version 2: the partial sums behind each fingerprint, committed with the reference media they include.

    Before version 2 the enrollment workflow wrote `arrays/device<id>_sums_<W>x<H>.npz`
    outside any transaction; the store still reads those files where a device has no
    row here (they need the case folder, which a migration does not see).
    """
    conn.execute(
        # height × width: the landscape sensor size (rows < columns) of the sums; n_media:
        # the images or video frames summed (Chen et al. 2008: K = ΣWᵢIᵢ / ΣIᵢ²).
        """CREATE TABLE fingerprint_sums (
               device_id INTEGER NOT NULL REFERENCES devices(id),
               height INTEGER NOT NULL,
               width INTEGER NOT NULL,
               array_file TEXT NOT NULL,
               array_sha256 TEXT NOT NULL,
               n_media INTEGER NOT NULL,
               run_id INTEGER REFERENCES runs(id),
               updated TEXT NOT NULL,
               PRIMARY KEY (device_id, height, width))"""
    )


def _v3_case_identity(conn: sqlite3.Connection) -> None:
    """Version 3: the case's identity (case number, examiner, organisation), exhibits, notes, acquisition hashes.

    Notes are append-only like the audit log (a correction is a new note). See `store/identity.py`.
    """
    for statement in (
        "CREATE TABLE case_identity (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL)",
        """CREATE TABLE exhibits (
               root TEXT PRIMARY KEY,
               exhibit TEXT NOT NULL,
               description TEXT,
               updated TEXT NOT NULL)""",
        """CREATE TABLE notes (
               id INTEGER PRIMARY KEY,
               time TEXT NOT NULL,
               subject TEXT NOT NULL,
               text TEXT NOT NULL,
               author TEXT,
               run_id INTEGER REFERENCES runs(id))""",
        """CREATE TRIGGER notes_no_update BEFORE UPDATE ON notes
               BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END""",
        """CREATE TRIGGER notes_no_delete BEFORE DELETE ON notes
               BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END""",
        """CREATE TABLE acquisition_hashes (
               path TEXT PRIMARY KEY,
               sha256 TEXT NOT NULL,
               source TEXT,
               recorded TEXT NOT NULL)""",
    ):
        conn.execute(statement)


def _v4_clusters(conn: sqlite3.Connection) -> None:
    """Version 4: grouping media by unknown source (`sensorprint cluster`, store/clusters.py).

    cluster_files: each file a clustering read, with its hash and its residual cache (an
    .npz in arrays/, named here); cluster_pairs: every score computed (a pair of files, or
    a file against a group fingerprint, keyed by the group's members), at most once;
    clusters and cluster_members: the groups each cluster run formed.
    """
    statements = (
        """CREATE TABLE cluster_files (
               id INTEGER PRIMARY KEY,
               path TEXT NOT NULL UNIQUE,
               sha256 TEXT,
               size_bytes INTEGER,
               mtime_ns INTEGER,
               kind TEXT,
               width INTEGER,
               height INTEGER,
               status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
               error TEXT,
               array_file TEXT,
               array_sha256 TEXT,
               details TEXT,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL)""",
        """CREATE TABLE cluster_pairs (
               key TEXT NOT NULL,
               a_id INTEGER NOT NULL,
               b_id INTEGER NOT NULL REFERENCES cluster_files(id),
               score REAL,
               ncc REAL,
               p_fa REAL,
               n_positions INTEGER,
               transform TEXT,
               details TEXT,
               run_id INTEGER REFERENCES runs(id),
               created TEXT NOT NULL,
               PRIMARY KEY (key, a_id, b_id))""",
        """CREATE TABLE clusters (
               id INTEGER PRIMARY KEY,
               run_id INTEGER NOT NULL REFERENCES runs(id),
               number INTEGER NOT NULL,
               n_members INTEGER NOT NULL,
               device TEXT,
               device_score REAL,
               details TEXT NOT NULL,
               created TEXT NOT NULL,
               UNIQUE (run_id, number))""",
        """CREATE TABLE cluster_members (
               cluster_id INTEGER NOT NULL REFERENCES clusters(id),
               file_id INTEGER NOT NULL REFERENCES cluster_files(id),
               score REAL,
               details TEXT,
               PRIMARY KEY (cluster_id, file_id))""",
    )
    for statement in statements:
        conn.execute(statement)


MIGRATIONS: list[Migration] = [_v1_initial, _v2_fingerprint_sums, _v3_case_identity, _v4_clusters]
"""Ordered migrations; index i upgrades version i to i + 1 (module-level so tests can extend it)."""


def current_version() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)
