"""Use case: the runs of a case as an examiner must read them — a run whose process died is interrupted.

A run is recorded 'running' when it starts (with its process id and host) and gets its
final status when it ends. A process killed with SIGKILL never writes that status: its
run is shown as interrupted when its process is gone from this host.
"""

from __future__ import annotations

import os
import socket

from sensorprint.store import RunRecord


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this host (a zombie counts as dead)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def run_status(run: RunRecord) -> str:
    """The status to show: 'interrupted' for a 'running' run whose process on this host has died."""
    if run.status != "running" or run.finished:
        return run.status
    if run.host == socket.gethostname() and not process_alive(run.pid):
        return "interrupted"
    return run.status
