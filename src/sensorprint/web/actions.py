"""What the browser's actions do: the same workflow calls as the CLI, and the few files the server reads.

`work(kind, parameters)` gives the function a job runs; its lines are the CLI's words
(the CLI's words are its own, `cli/text.py`; here each summary's figures are listed).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sensorprint.errors import SensorprintError
from sensorprint.hashing import sha256_of_file
from sensorprint.prnu.stats import DEFAULT_PCE_THRESHOLD
from sensorprint.store import Case
from sensorprint.workflow.runs import run_status

KINDS = ("enroll", "scan", "train", "cluster", "report")
REPORTS_DIR = "reports"
REPORT_FORMATS = {"html": "text/html", "pdf": "application/pdf", "json": "application/json", "csv": "text/csv",
                  "case-uco": "application/ld+json"}  # fmt: skip


def _paths(text: str) -> list[Path]:
    """The paths typed in the form, one per line."""
    paths = [Path(line.strip()) for line in text.splitlines() if line.strip()]
    if not paths:
        raise ValueError("give at least one file or folder, one per line")
    return paths


def work(kind: str, parameters: dict[str, Any], workers: int | None) -> Callable[[Case, Callable], list[str]]:
    """The function a job of this kind runs: (case, progress) -> lines that say what it did."""
    if kind == "scan":
        paths = _paths(parameters["paths"])
        return lambda case, progress: _scan(case, paths, workers, progress)
    if kind == "enroll":
        paths = _paths(parameters["paths"])
        device = (parameters.get("device") or "").strip()
        if not device:
            raise ValueError("give the device's name")
        model = (parameters.get("model") or "").strip() or None
        return lambda case, progress: _enroll(case, device, model, paths, workers, progress)
    if kind == "cluster":
        paths = _paths(parameters["paths"])
        return lambda case, progress: _cluster(case, paths, workers, progress)
    if kind == "train":
        target = parameters.get("target") if parameters.get("target") in ("device", "model") else "device"
        return lambda case, progress: _train(case, target, progress)
    fmt = parameters.get("format") if parameters.get("format") in REPORT_FORMATS else "html"
    return lambda case, progress: _report(case, fmt, progress)


def _scan(case: Case, paths: list[Path], workers, progress) -> list[str]:
    from sensorprint.workflow import scan

    return summary_lines(scan(case, paths, workers=workers, progress=progress))


def _enroll(case: Case, device: str, model: str | None, paths: list[Path], workers, progress) -> list[str]:
    from sensorprint.workflow import enroll
    from sensorprint.workflow.correct import drop_empty_devices

    existed = [d.name for d in case.list_devices()]
    summary = enroll(case, device, paths, model=model, workers=workers, progress=progress)
    if drop_empty_devices(case, [summary], existed):  # an enrollment that adds nothing creates nothing
        raise SensorprintError(f"nothing was enrolled for {device}: none of the files could be read")
    return summary_lines(summary)


def _cluster(case: Case, paths: list[Path], workers, progress) -> list[str]:
    from sensorprint.workflow.cluster import cluster  # groups media by unknown source camera

    return summary_lines(cluster(case, paths, workers=workers, progress=progress))


def _train(case: Case, target: str, progress) -> list[str]:
    from sensorprint.workflow import train

    return summary_lines(train(case, target=target, progress=progress))


def _report(case: Case, fmt: str, progress) -> list[str]:
    from sensorprint.report import write_report
    from sensorprint.report.writers import ReportFormat

    folder = case.root / REPORTS_DIR
    folder.mkdir(exist_ok=True)
    progress("report", 0, 1)
    out = write_report(case, fmt, folder / f"report.{ReportFormat(fmt).suffix}", threshold=DEFAULT_PCE_THRESHOLD,
                       rehash=True)  # fmt: skip
    progress("report", 1, 1)
    return [f"wrote {out.name}", f"/reports/{out.name}"]


def summary_lines(summary: Any) -> list[str]:
    """A use case's summary as 'name: value' lines (its numbers and error lines; the CLI words them in sentences)."""
    lines = []
    for name, value in vars(summary).items():
        if isinstance(value, (int, float, str)) or value is None:
            lines.append(f"{name.replace('_', ' ')}: {value}")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            lines += [f"{name.replace('_', ' ')}: {v}" for v in value[:200]]
    return lines


def foreign_writer(root: Path) -> str | None:
    """A line naming another process that is writing the case (a CLI scan), or None."""
    with Case.open(root, read_only=True) as case:
        for run in case.runs():
            if run_status(run) == "running" and run.pid != os.getpid():
                return (f"run {run.id} ({run.command}, process {run.pid} on {run.host}) is writing the case; "
                        "wait until it has finished")  # fmt: skip
    return None


def thumbnail_jpeg(path: str, sha256: str | None, size: int = 320) -> bytes | None:
    """A JPEG thumbnail of a recorded evidence image, or None when it is gone or changed (hash differs)."""
    from PIL import Image

    try:
        if not os.path.isfile(path) or (sha256 and sha256_of_file(path) != sha256):
            return None
        with Image.open(path) as image:
            image.draft("RGB", (size, size))
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=80)
            return buffer.getvalue()
    except Exception:  # noqa: BLE001 - a hostile or damaged file gives no thumbnail, never an error page
        return None


_REPORT_NAME = re.compile(r"report\.(html|pdf|json|csv|jsonld)")


def report_path(root: Path, name: str) -> Path | None:
    """A report the server wrote into the case's reports/ folder, by its exact name (nothing else)."""
    if not _REPORT_NAME.fullmatch(name):
        return None
    path = root / REPORTS_DIR / name
    return path if path.is_file() else None


def media_type(path: Path) -> str:
    suffix = path.suffix.lstrip(".")
    return REPORT_FORMATS.get("case-uco" if suffix == "jsonld" else suffix, "application/octet-stream")
