"""Use case: the demo — a simulated case from cameras to report, checked against ground truth."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sensorprint.errors import CaseError
from sensorprint.store import Case
from sensorprint.workflow.enroll import enroll
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.review import file_results
from sensorprint.workflow.scan import ScanSummary, scan


@dataclass
class WrongAnswer:
    """A demo file whose answer differs from the ground truth (None: no enrolled device)."""

    path: str
    answered: str | None
    truth: str | None


@dataclass
class DemoSummary:
    """The demo case: where it is, how its scan went, and its answers scored against the simulated truth."""

    case: Path
    seconds: float
    scan: ScanSummary
    correct: int = 0
    total: int = 0
    wrong: list[WrongAnswer] = field(default_factory=list)


def _score(case: Case, data: Path, truth: dict[str, str], summary: DemoSummary) -> None:
    """Each scanned file's answer against the truth: its enrolled camera, or no match (unenrolled camera, bad file)."""
    enrolled = {device.name for device in case.list_devices()}
    for result, _ in file_results(case):
        relative = str(Path(result.path).relative_to(data.resolve()))
        source = truth.get(relative)
        expected = source if source in enrolled else None  # an unenrolled camera must match nothing
        summary.total += 1
        if result.best_device == expected:
            summary.correct += 1
        else:
            summary.wrong.append(WrongAnswer(relative, result.best_device, expected))


def run_demo(root: Path, *, workers: int | None = None, seed: int = 0, progress: Progress = no_progress) -> DemoSummary:
    """Simulate cameras and seized storage in `root`, enroll, scan, and score the answers against the truth.

    The case is `root/case`; the caller writes the report (the CLI writes `root/report.html`).
    """
    from sensorprint.simulate import write_demo_case

    root = Path(root)
    if root.exists() and any(root.iterdir()) and not (root / "case" / "case.sqlite").exists():
        raise CaseError(f"{root} exists and is not a demo folder: choose another --out")
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    data = root / "data"
    truth = write_demo_case(data, seed=seed, progress=lambda done, total: progress("simulate", done, total))
    with Case.create(root / "case") as case:
        for camera in sorted(p for p in (data / "reference").iterdir() if p.is_dir()):
            model = camera.name.rsplit("_", 1)[0]
            enroll(case, camera.name, [camera], model=model, workers=workers, progress=progress)
        scanned = scan(case, [data / "evidence"], workers=workers, progress=progress)
        summary = DemoSummary(root / "case", 0.0, scanned)
        _score(case, data, truth, summary)
    summary.seconds = time.perf_counter() - started
    return summary
