"""The plain records the case store returns (and, for results, accepts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
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


class Precision(StrEnum):
    """How a fingerprint K is kept on disk: float32, or float16 (half the bytes).

    float16 rounds each value to 11 significant bits (relative error at most 2^-11); the PCE
    is a normalised correlation, and on simulated and Dresden fingerprints (240 pairs) no PCE
    of 10 or more moved by more than 3 parts in 10,000, none by more than 0.11, and no
    decision changed (benchmarks/fingerprint_precision.py).
    A K too large for float16 (|K| ≥ `FLOAT16_LIMIT`, never met in practice) stays float32.
    Either way `FingerprintRecord.load` gives float32; cases written before float16 existed load as before.
    """

    FLOAT32 = "float32"
    FLOAT16 = "float16"


FLOAT16_LIMIT = 60000.0  # float16's largest finite value is 65504
STORED_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


def stored_precision(k: np.ndarray, precision: Precision) -> Precision:
    """The precision K is written at when `precision` is asked for: float32 when float16 cannot hold it."""
    if precision == Precision.FLOAT16 and np.size(k) and float(np.abs(k).max()) < FLOAT16_LIMIT:
        return Precision.FLOAT16
    return Precision.FLOAT32


def stored_form(k: np.ndarray, precision: Precision = Precision.FLOAT32) -> np.ndarray:
    """K as it is written to disk at `precision` (`stored_precision`)."""
    k = np.ascontiguousarray(k, dtype=np.float32)
    return k.astype(np.float16) if stored_precision(k, precision) == Precision.FLOAT16 else k


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
        """K as a read-only float32 array: memory-mapped from `arrays/`, or widened when stored as float16."""
        array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if array.dtype not in STORED_DTYPES or tuple(array.shape) != tuple(self.shape):
            from sensorprint.errors import CaseError

            raise CaseError(
                f"fingerprint file {self.path} does not match the case record "
                f"(dtype {array.dtype}, shape {array.shape}); re-enroll device {self.device_name!r}"
            )
        if array.dtype == np.float16:
            array = np.array(array, dtype=np.float32)  # a plain array, no longer mapped
            array.flags.writeable = False
        return array

    @property
    def precision(self) -> Precision:
        """How K is kept on disk (read from the array file's header)."""
        return Precision(np.load(self.path, mmap_mode="r", allow_pickle=False).dtype.name)

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
