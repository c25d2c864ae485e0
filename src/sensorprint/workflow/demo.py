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
from sensorprint.workflow.scan import scan


@dataclass
class DemoSummary:
    case: Path
    report: Path
    seconds: float
    correct: int = 0
    total: int = 0
    wrong: list[str] = field(default_factory=list)
    scan_lines: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        text = list(self.scan_lines)
        text.append(
            f"ground truth: {self.correct}/{self.total} files answered correctly "
            f"(enrolled camera, or no match for unenrolled cameras and bad files) in {self.seconds:.1f} s"
        )
        text += [f"  WRONG: {line}" for line in self.wrong]
        text.append(f"case: {self.case}")
        text.append(f"report: {self.report}")
        return text


def run_demo(root: Path, *, workers: int | None = None, seed: int = 0, progress: Progress = no_progress) -> DemoSummary:
    """Simulate cameras and seized storage in `root`, enroll, scan, report, and score against the truth."""
    from sensorprint.report import report_records, write_report
    from sensorprint.simulate import write_demo_case

    root = Path(root)
    if root.exists() and any(root.iterdir()) and not (root / "case" / "case.sqlite").exists():
        raise CaseError(f"{root} exists and is not a demo folder: choose another --out")
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    data = root / "data"
    truth = write_demo_case(data, seed=seed, progress=lambda done, total: progress("simulate", done, total))
    case = Case.create(root / "case")
    try:
        for camera in sorted(p for p in (data / "reference").iterdir() if p.is_dir()):
            model = camera.name.rsplit("_", 1)[0]
            enroll(case, camera.name, [camera], model=model, workers=workers, progress=progress)
        scanned = scan(case, [data / "evidence"], workers=workers, progress=progress)
        report = write_report(case, "html", root / "report.html", threshold=60.0)
        summary = DemoSummary(root / "case", report, 0.0, scan_lines=scanned.lines())
        enrolled = {device.name for device in case.list_devices()}
        for record in report_records(case):
            relative = str(Path(record["path"]).relative_to(data.resolve()))
            source = truth.get(relative)
            expected = source if source in enrolled else None  # an unenrolled camera must match nothing
            summary.total += 1
            if record["best_device"] == expected:
                summary.correct += 1
            else:
                summary.wrong.append(f"{relative}: answered {record['best_device']}, truth {expected}")
    finally:
        case.close()
    summary.seconds = time.perf_counter() - started
    return summary
