"""SHA-256 of evidence files, read-only and in chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sensorprint.errors import MediaError


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes already in memory (the bytes that are then decoded)."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content, read in `chunk`-byte blocks.

    The file is opened read-only; nothing about it is changed.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as error:
        raise MediaError(
            f"{path}: cannot read the file ({error.strerror or error}); check that it exists and is readable"
        ) from error
    return digest.hexdigest()
