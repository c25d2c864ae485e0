"""SHA-256 of evidence files, read-only and in blocks (`sensorprint.hashing`), with the media layer's error."""

from __future__ import annotations

from pathlib import Path

from sensorprint.errors import MediaError
from sensorprint.hashing import sha256_bytes, sha256_of_file

__all__ = ["sha256_bytes", "sha256_file"]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content; MediaError (one line, naming the file) when it cannot be read."""
    try:
        return sha256_of_file(path)
    except OSError as error:
        raise MediaError(
            f"{path}: cannot read the file ({error.strerror or error}); check that it exists and is readable"
        ) from error
