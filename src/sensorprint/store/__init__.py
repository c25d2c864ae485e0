"""sensorprint.store: the case store (SQLite in WAL mode + fingerprint arrays on disk).

A case is a directory: `case.sqlite`, `arrays/` (fingerprints as float32 .npy),
`models/` (trained networks). Every write is one committed transaction, so a
killed process loses nothing committed and leaves no half state. Evidence is
never written: the store keeps paths and SHA-256 hashes only.
"""

from sensorprint.results import Match
from sensorprint.store.case import Case, tool_version
from sensorprint.store.records import (
    AuditEntry,
    Device,
    FingerprintRecord,
    MediumRecord,
    ModelRecord,
    RunRecord,
)
from sensorprint.store.schema import MIGRATIONS, current_version

__all__ = [
    "AuditEntry",
    "Case",
    "Device",
    "FingerprintRecord",
    "MIGRATIONS",
    "Match",
    "MediumRecord",
    "ModelRecord",
    "RunRecord",
    "current_version",
    "tool_version",
]
