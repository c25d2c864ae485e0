"""SHA-256 of files and bytes: the one implementation every layer uses.

Files are opened read-only and read in blocks; nothing about them is changed. Errors are
the operating system's (OSError): each layer turns them into its own error type.
"""

from __future__ import annotations

import hashlib
import os

BLOCK_BYTES = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes already in memory (e.g. the bytes that are then decoded)."""
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: str | os.PathLike[str], *, block: int = BLOCK_BYTES) -> str:
    """Hex SHA-256 of a file's content, read in `block`-byte blocks. Raises OSError."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()
