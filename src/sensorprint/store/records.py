"""The plain records the case store returns (and, for results, accepts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorprint.hashing import sha256_of_file
from sensorprint.results import Method, TargetKind

METHODS = tuple(Method)
TARGET_KINDS = tuple(TargetKind)
ROLES = ("reference", "evidence")
MEDIUM_STATUSES = ("ok", "error")
FINGERPRINT_SOURCES = ("image", "video", "mixed")


@dataclass(frozen=True)
class Device:
    """An enrolled camera (a seized device, or a device named by the examiner)."""

    id: int
    name: str
    model: str | None = None
    notes: str | None = None
    created: str | None = None


@dataclass(frozen=True)
class MediumRecord:
    """One file as the case knows it: where it was, its hash, and what reading it gave."""

    id: int
    path: str
    sha256: str | None
    size_bytes: int | None
    mtime_ns: int | None
    kind: str | None
    width: int | None
    height: int | None
    orientation: int | None
    metadata: dict[str, Any] | None
    role: str
    device_id: int | None
    status: str
    error: str | None
    details: dict[str, Any] | None
    run_id: int | None
    created: str
    updated: str


@dataclass(frozen=True)
class FingerprintRecord:
    """A stored PRNU fingerprint K of one device at one resolution (height × width)."""

    id: int
    device_id: int
    device_name: str
    height: int
    width: int
    path: Path
    array_sha256: str
    shape: tuple[int, ...]
    n_media: int
    quality: float | None
    media_hashes: list[str]
    source: str
    parameters: dict[str, Any]
    run_id: int | None
    created: str

    def load(self) -> np.ndarray:
        """K as a read-only float32 array memory-mapped from the case's `arrays/` folder."""
        array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if array.dtype != np.float32 or tuple(array.shape) != tuple(self.shape):
            from sensorprint.errors import CaseError

            raise CaseError(
                f"fingerprint file {self.path} does not match the case record "
                f"(dtype {array.dtype}, shape {array.shape}); re-enroll device {self.device_name!r}"
            )
        return array

    def verify(self) -> None:
        """CaseError unless the array file still has the SHA-256 recorded when it was saved."""
        from sensorprint.errors import CaseError

        try:
            digest = sha256_of_file(self.path)
        except OSError as exc:
            raise CaseError(
                f"fingerprint of {self.device_name!r} is missing ({self.path}: {exc.strerror}); re-enroll the device"
            ) from exc
        if digest != self.array_sha256:
            raise CaseError(
                f"fingerprint of {self.device_name!r} ({self.path.name}) was changed after it was "
                "saved (SHA-256 differs); re-enroll the device"
            )


@dataclass(frozen=True)
class ModelRecord:
    """A trained network saved in the case's `models/` folder, with its training record."""

    id: int
    target: str
    path: Path
    classes: list[str]
    record: dict[str, Any]
    run_id: int | None
    created: str
    stale: bool
    stale_reason: str | None


@dataclass(frozen=True)
class RunRecord:
    """One command run against the case, with its parameters and the tool version."""

    id: int
    command: str
    parameters: dict[str, Any]
    tool_version: str
    started: str
    finished: str | None
    status: str
    summary: dict[str, Any] | None
    pid: int | None
    host: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log."""

    id: int
    time: str
    run_id: int | None
    action: str
    details: dict[str, Any]
