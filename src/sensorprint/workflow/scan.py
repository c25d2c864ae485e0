"""Use case: scan seized storage against every enrolled device.

Every file under the given paths is read (read-only), hashed, reduced to its noise
signal and compared with every enrolled device. Each file's results are committed to
the case in one transaction as soon as they are computed (DESIGN.md, "The case
store"), so a scan killed at any moment, even with SIGKILL, resumes where it stopped:
files whose results are committed and that did not change on disk (same size and
modification time) are not read again, and a file is only compared with the devices
it has no result for yet (e.g. a device enrolled after the first scan).
"""

from __future__ import annotations

from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

from sensorprint.errors import CaseError
from sensorprint.media import discover
from sensorprint.store import Case
from sensorprint.workflow.options import ScanOptions, SignalOptions
from sensorprint.workflow.parallel import open_executor
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.signals import FileFacts, FingerprintRef, match_device, query_signal, size_key, stat_file


@dataclass
class ScanSummary:
    run_id: int
    files: int = 0
    skipped: int = 0
    scanned: int = 0
    errors: int = 0
    matched: int = 0
    error_lines: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        text = [
            f"scan run {self.run_id}: {self.files} files, {self.scanned} scanned now, "
            f"{self.skipped} already done, {self.matched} matched an enrolled device, {self.errors} unreadable"
        ]
        text += [f"  error: {line}" for line in self.error_lines]
        return text


def enrolled_fingerprints(case: Case) -> dict[str, list[FingerprintRef]]:
    """{device name: its fingerprints}, for the workers to load."""
    devices: dict[str, list[FingerprintRef]] = {}
    for device in case.list_devices():
        refs = [
            FingerprintRef(device.name, record.id, str(record.path), tuple(record.shape), record.source)
            for record in case.fingerprints(device.id)
        ]
        if refs:
            devices[device.name] = refs
    return devices


def files_to_scan(case: Case, paths: list[Path], devices: dict) -> tuple[list[tuple[str, dict]], int, int]:
    """Which files still need work, and against which devices; plus the count of all files and skipped ones."""
    todo, total, skipped = [], 0, 0
    for path in discover(paths):
        total += 1
        name = str(Path(path).resolve())
        record = case.find_medium("evidence", name)
        wanted = devices
        if record is not None and (record.size_bytes, record.mtime_ns) == stat_file(Path(name)):
            if record.status == "error":
                skipped += 1  # unchanged and unreadable: the error line is already in the case
                continue
            done = case.done_targets(record.id, "prnu")
            wanted = {device: refs for device, refs in devices.items() if device not in done}
            if not wanted:
                skipped += 1
                continue
        todo.append((name, wanted))
    return todo, total, skipped


@dataclass
class ScanOutcome:
    """What a worker returns for one evidence file: its facts and its result rows."""

    facts: FileFacts
    results: list[dict]


def scan_file(
    path: str,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    options: SignalOptions,
    threshold: float,
) -> ScanOutcome:
    """Read one evidence file and compare it with every given device (PRNU)."""
    facts, signal = query_signal(Path(path), options)
    if signal is None:
        return ScanOutcome(facts, [])
    key = size_key(signal.residual.shape)
    results = [
        match_device(signal, refs, hints.get(f"{device}|{key}"), threshold) for device, refs in devices.items()
    ]
    for row in results:
        row["details"]["size_key"] = key
    return ScanOutcome(facts, results)


def scan(
    case: Case,
    paths: list[Path],
    *,
    options: ScanOptions = ScanOptions(),
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = no_progress,
) -> ScanSummary:
    """Compare every file under `paths` with every enrolled device and commit each file's results."""
    devices = enrolled_fingerprints(case)
    if not devices:
        raise CaseError(f"no device is enrolled in {case.root}: run `sensorprint enroll` first")
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: check the path of the seized storage")
    parameters = {"paths": [str(Path(p).resolve()) for p in paths], "devices": sorted(devices), **options.to_dict()}
    run_id = case.start_run("scan", parameters)
    summary = ScanSummary(run_id)
    status = "interrupted"
    try:
        progress("discover", 0, 1)
        todo, summary.files, summary.skipped = files_to_scan(case, paths, devices)
        progress("discover", 1, 1)
        hints = case.all_hints()
        progress("scan", 0, len(todo))
        with open_executor(workers, scheduler) as executor:
            futures = [
                executor.submit(scan_file, name, wanted, hints, options.signal, options.threshold)
                for name, wanted in todo
            ]
            for done, future in enumerate(as_completed(futures), start=1):
                commit(case, future.result(), run_id, summary)
                progress("scan", done, len(todo))
        status = "completed"
    finally:
        case.finish_run(run_id, status, summary.__dict__ | {"error_lines": summary.error_lines[:100]})
    return summary


def commit(case: Case, outcome: ScanOutcome, run_id: int, summary: ScanSummary) -> None:
    """Commit one file's results in one transaction, and remember transforms found for its size."""
    facts = outcome.facts
    case.record_results(facts.store_fields(), outcome.results, run_id)
    summary.scanned += 1
    if facts.error:
        summary.errors += 1
        summary.error_lines.append(facts.error_line())
        return
    if any(row["decision"] == "match" for row in outcome.results):
        summary.matched += 1
    for row in outcome.results:
        transform = row.get("transform")
        if row["decision"] == "match" and transform and not row["details"].get("roles_swapped"):
            if transform.get("scale", 1.0) != 1.0 or any(transform.get("offset", (0, 0))):
                device = case.get_device(row["target"])
                case.set_hint(device.id, row["details"]["size_key"], transform)
