"""The same scan on a loopback Dask cluster with 1 and with 2 worker processes: wall time and efficiency.

A `dask scheduler` and N `dask worker` processes (one thread each) are started from the
command line on 127.0.0.1, as on machines that mount the evidence and the case at the same
paths. Simulated cameras are enrolled once; each run scans a fresh copy of that case. The
workers import sensorprint and read one file before the clock starts (a cluster is
long-lived). Efficiency = T(1) / (2·T(2)) (bar: at least 0.8). The answers of both runs must
be equal.

Run: .venv/bin/python benchmarks/dask_scaling.py [--files 32] [--size 1024x768]
Last line: workers=1 s_per_file=T1 workers=2 s_per_file=T2 efficiency=E files=N identical=True|False
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client

from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan

DASK = Path(sys.executable).parent / "dask"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(workers: int, logs: Path) -> tuple[str, list[subprocess.Popen]]:
    """A scheduler and `workers` single-threaded worker processes on loopback; returns its address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": (logs / f"dask-{workers}.log").open("wb")}
    scheduler = [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    processes = [subprocess.Popen(scheduler, **quiet)]
    worker = [str(DASK), "worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1"]
    processes += [subprocess.Popen([*worker, "--no-dashboard"], **quiet) for _ in range(workers)]
    deadline = time.monotonic() + 90
    while True:
        try:
            with Client(address, timeout="5s") as client:
                client.wait_for_workers(workers, timeout=60)
                client.run(lambda: __import__("sensorprint.workflow.scan"))  # imports before the clock
            return address, processes
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        process.terminate()
    for process in reversed(processes):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def make_case(folder: Path, files: int, size: tuple[int, int]) -> Path:
    """Four simulated cameras enrolled from 8 flat images each; `files` seized images among them."""
    cameras = make_cameras(n_models=2, units_per_model=2, width=size[0], height=size[1], seed=21)
    for camera in cameras:
        for i in range(8):
            camera.save_jpeg(folder / "refs" / camera.name / f"flat{i}.jpg", flat=True, seed=i)
    for i in range(files):
        cameras[i % len(cameras)].save_jpeg(folder / "seized" / f"{i:03d}-{cameras[i % 4].name}.jpg", seed=100 + i)
    with Case.create(folder / "enrolled") as case:
        for camera in cameras:
            enroll(case, camera.name, [folder / "refs" / camera.name], workers=2)
    return folder / "enrolled"


def timed_scan(folder: Path, enrolled: Path, workers: int) -> tuple[float, dict]:
    """Wall seconds per file of a scan of a fresh copy of the case on `workers` worker processes, and its answers."""
    case_dir = folder / f"case-{workers}"
    shutil.copytree(enrolled, case_dir)
    address, processes = start_cluster(workers, folder)
    try:
        with Case.open(case_dir) as case:
            warm = sorted((folder / "seized").iterdir())[:workers]
            scan(case, warm, scheduler=address)  # a worker's first file pays its caches (fingerprints, FFT plans)
            started = time.perf_counter()
            summary = scan(case, [folder / "seized"], scheduler=address)
            seconds = (time.perf_counter() - started) / summary.scanned
            answers = {
                Path(m.path).name: sorted((r.target, str(r.decision), round(r.score, 4)) for r in case.results(m.id))
                for m in case.list_media(role="evidence")
            }
    finally:
        stop(processes)
    return seconds, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--size", default="1024x768")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="dask-scaling-") as tmp:
        folder = Path(tmp)
        enrolled = make_case(folder, args.files, size)
        one, answers_one = timed_scan(folder, enrolled, 1)
        two, answers_two = timed_scan(folder, enrolled, 2)
    efficiency = one / (2 * two)
    print(
        f"{args.files} images of {args.size} against 4 devices, seconds per file: 1 worker {one:.3f}, 2 workers {two:.3f}"
    )
    print(
        f"workers=1 s_per_file={one:.3f} workers=2 s_per_file={two:.3f} efficiency={efficiency:.2f} files={args.files} "
        f"identical={answers_one == answers_two}"
    )


if __name__ == "__main__":
    main()
