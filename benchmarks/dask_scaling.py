"""The same scan on a loopback Dask cluster with 1 and with 2 worker processes: wall time and efficiency.

A `dask scheduler` and N `dask worker` processes (one thread each) are started from the
command line on 127.0.0.1, as on machines that mount the evidence and the case at the same
paths. Simulated cameras are enrolled once; each run scans a fresh copy of that case. The
workers import sensorprint and read one file before the clock starts (a cluster is
long-lived). Efficiency = T(1) / (2·T(2)) (bar: at least 0.8). The answers of both runs must
be equal.

Run: .venv/bin/python benchmarks/dask_scaling.py [--files 32] [--size 1024x768]
The workers' CPU seconds and the load average are printed too: on a machine shared with other
work, T(1)/(2·T(2)) is bounded by the cores the others leave (c: the cores the workers
obtained, their CPU seconds over the wall time, is printed for each run). cpu_efficiency = the workers' CPU
seconds per file with 1 worker over those with 2 (1.0: splitting the work costs no extra work);
it says nothing of the client's serial part, which only the wall times show.

Last line: workers=1 s_per_file=T1 workers=2 s_per_file=T2 efficiency=E files=N identical=True|False load=L
cpu_efficiency=C
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass
class Timed:
    """One timed scan: wall seconds per file, the workers' CPU seconds per file, the load average around it."""

    seconds: float
    cpu_seconds: float
    split: list[float]  # each worker's share of the CPU seconds
    client_cpu: float  # CPU seconds per file of this process (it commits every result)
    load: tuple[float, float]  # 1-minute load average before and after
    answers: dict

    @property
    def cpu_share(self) -> float:
        """Cores the workers got on average during the scan (at most their number)."""
        return self.cpu_seconds / self.seconds


def _workers_cpu(address: str) -> list[float]:
    """CPU seconds of each worker process so far, in worker address order."""
    with Client(address) as client:
        return [seconds for _, seconds in sorted(client.run(time.process_time).items())]


def timed_scan(folder: Path, enrolled: Path, workers: int) -> Timed:
    """A scan of a fresh copy of the case on `workers` worker processes: times, load, and its answers."""
    case_dir = folder / f"case-{workers}"
    shutil.copytree(enrolled, case_dir)
    address, processes = start_cluster(workers, folder)
    try:
        with Case.open(case_dir) as case:
            warm = sorted((folder / "seized").iterdir())[:workers]
            scan(case, warm, scheduler=address)  # a worker's first file pays its caches (fingerprints, FFT plans)
            load_before, cpu_before = os.getloadavg()[0], _workers_cpu(address)
            started, client_started = time.perf_counter(), time.process_time()
            summary = scan(case, [folder / "seized"], scheduler=address)
            seconds = (time.perf_counter() - started) / summary.scanned
            client = (time.process_time() - client_started) / summary.scanned
            used = [after - before for after, before in zip(_workers_cpu(address), cpu_before, strict=True)]
            cpu = sum(used) / summary.scanned
            load = (load_before, os.getloadavg()[0])
            answers = {
                Path(m.path).name: sorted((r.target, str(r.decision), round(r.score, 4)) for r in case.results(m.id))
                for m in case.list_media(role="evidence")
            }
    finally:
        stop(processes)
    return Timed(seconds, cpu, [u / max(sum(used), 1e-9) for u in used], client, load, answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--size", default="1024x768")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory(prefix="dask-scaling-") as tmp:
        folder = Path(tmp)
        enrolled = make_case(folder, args.files, size)
        one = timed_scan(folder, enrolled, 1)
        two = timed_scan(folder, enrolled, 2)
    efficiency = one.seconds / (2 * two.seconds)
    print(f"{args.files} images of {args.size} against 4 devices on {os.cpu_count()} cores:")
    for n, t in ((1, one), (2, two)):
        print(
            f"  {n} worker(s): {t.seconds:.3f} s per file wall, {t.cpu_seconds:.3f} CPU s per file, "
            f"{t.cpu_share:.2f} cores obtained (shares {', '.join(f'{x:.2f}' for x in t.split)}), "
            f"client {t.client_cpu:.3f} CPU s per file, "
            f"load average {t.load[0]:.1f} -> {t.load[1]:.1f}"
        )
    # the workers' CPU work per file with 1 worker over that with 2: 1.0 when splitting costs nothing extra
    per_core = one.cpu_seconds / two.cpu_seconds
    print(
        f"  efficiency T1/(2*T2) {efficiency:.2f} (bounded by the cores other processes leave); worker CPU s per "
        f"file, 1 worker over 2 workers: {per_core:.2f}"
    )
    print(
        f"workers=1 s_per_file={one.seconds:.3f} workers=2 s_per_file={two.seconds:.3f} efficiency={efficiency:.2f} "
        f"files={args.files} identical={one.answers == two.answers} load={two.load[1]:.1f} cpu_efficiency={per_core:.2f}"
    )


if __name__ == "__main__":
    main()
