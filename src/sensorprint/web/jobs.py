"""Background jobs of the web interface: enroll, scan, train, report, run by the same workflow functions as the CLI.

A job runs in a thread of the server process (its per-file work in the workflow's worker
processes), with its own connection to the case, so it goes on when the browser is
closed. One job writes at a time: a second is refused with a line that says which job,
or which other process, is writing the case. Progress comes from the workflow's
`progress(phase, done, total)` callback; pages follow it by server-sent events.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensorprint.errors import SensorprintError
from sensorprint.store import Case


class Busy(SensorprintError):
    """Another job or process is writing the case."""


@dataclass
class Job:
    """One action started from the browser: its kind, parameters, progress per phase, state and outcome."""

    id: int
    kind: str
    parameters: dict[str, Any]
    state: str = "running"  # running, completed, failed
    phases: dict[str, tuple[int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    version: int = 0  # bumped on every change (server-sent events send on change)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "phases": [{"phase": p, "done": d, "total": t} for p, (d, t) in self.phases.items()],
            "lines": list(self.lines),
            "error": self.error,
        }


class Jobs:
    """The jobs of one server over one case; at most one runs at a time."""

    def __init__(self, root: Path, foreign_writer: Callable[[], str | None]) -> None:
        self.root = root
        self.foreign_writer = foreign_writer  # says which other process writes the case, or None
        self.jobs: dict[int, Job] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(self, kind: str, parameters: dict[str, Any], work: Callable[[Case, Callable], list[str]]) -> Job:
        """Start `work(case, progress) -> lines` in a thread; Busy when something else writes the case."""
        with self.lock:
            current = self.running()
            if current is not None:
                raise Busy(f"job {current.id} ({current.kind}) is writing the case; wait until it has finished")
            other = self.foreign_writer()
            if other:
                raise Busy(other)
            job = Job(len(self.jobs) + 1, kind, parameters)
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, work), name=f"job-{job.id}", daemon=True).start()
        return job

    def _update(self, job: Job, **changes: Any) -> None:
        with self.changed:
            for name, value in changes.items():
                setattr(job, name, value)
            job.version += 1
            self.changed.notify_all()

    def _run(self, job: Job, work: Callable) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            with self.changed:
                job.phases[phase] = (int(done), int(total))
                job.version += 1
                self.changed.notify_all()

        try:
            with Case.open(self.root) as case:
                lines = work(case, progress)
            self._update(job, state="completed", lines=list(lines), finished=time.time())
        except SensorprintError as error:
            self._update(job, state="failed", error=str(error), finished=time.time())
        except Exception as error:  # noqa: BLE001 - the server must go on; the job says what failed
            traceback.print_exc()
            self._update(job, state="failed", error=f"{type(error).__name__}: {error}", finished=time.time())

    def wait_change(self, job: Job, version: int, timeout_s: float) -> int:
        """Block until the job changes after `version` (or the timeout); returns its version."""
        with self.changed:
            self.changed.wait_for(lambda: job.version != version, timeout=timeout_s)
            return job.version
