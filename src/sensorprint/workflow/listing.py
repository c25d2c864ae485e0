"""Use case: the table of files a scan or a review shows — each file, its best device, score and answer.

The rows come from `file_results` (the stored matches and the fused verdict), so the
terminal table, `--json`, the web pages and the report say the same thing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sensorprint.results import FileResult
from sensorprint.store import Case
from sensorprint.workflow.review import file_results


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether `path` is one of `roots` or inside one of them (as recorded: absolute, resolved)."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def answer_of(result: FileResult) -> str:
    """One word for the file: 'match', 'no match', 'inconclusive', 'error' or 'not compared'."""
    if result.status == "error":
        return "error"
    if result.best_device:
        return "match"
    decisions = {str(m.decision) for m in result.prnu().values()}
    if not decisions:
        return "not compared"
    return "inconclusive" if "inconclusive" in decisions else "no match"


def file_row(result: FileResult) -> dict[str, Any]:
    """One row: path, SHA-256, status, best device with its PCE and p_fa, the answer, the CNN's label, agreement."""
    best = result.best_device
    found = result.prnu().get(best) if best else None
    cnn = result.verdict.cnn_device
    return {
        "path": result.path,
        "sha256": result.sha256,
        "status": result.status,
        "error": result.error,
        "best_device": best,
        "pce": found.score if found else None,
        "p_fa": found.p_fa if found else None,
        "answer": answer_of(result),
        "cnn_device": cnn.label if cnn else None,
        "agreement": str(result.verdict.agreement),
    }


def file_rows(case: Case, roots: Iterable[Path | str] | None = None, *, threshold: float | None = None) -> list[dict]:
    """The rows of every evidence file recorded under `roots` (all files when None), in recording order."""
    wanted = None if roots is None else [str(_recorded_root(Path(r))) for r in roots]
    return [
        file_row(result)
        for result, _ in file_results(case, threshold=threshold)
        if wanted is None or under(result.path, wanted)
    ]


def _recorded_root(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()
