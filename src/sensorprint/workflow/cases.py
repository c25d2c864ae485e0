"""Use cases: create a case, and open one for the other use cases (the CLI and the web never touch the store)."""

from __future__ import annotations

from pathlib import Path

from sensorprint.store import Case


def init_case(root: Path) -> Path:
    """Create a new, empty case directory; CaseError when `root` already holds something."""
    with Case.create(root) as case:
        return case.root


def open_case(root: Path, *, read_only: bool = False) -> Case:
    """Open an existing case (a context manager); CaseError, saying what to do, when it is not one."""
    return Case.open(root, read_only=read_only)
