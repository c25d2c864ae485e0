"""More than one machine, for real: a `dask scheduler` and two `dask worker` processes on loopback.

The workers are separate programs started from the `dask` command line, as on a cluster whose
machines mount the evidence and the case at the same paths; the scan (and the grouping by
source camera) through them must give the answers of a local run.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan

distributed = pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(DASK), *args], stdout=log.open("wb"), stderr=subprocess.STDOUT)


@pytest.fixture
def loopback_cluster(tmp_path):
    """tcp://127.0.0.1:PORT of a scheduler with two single-threaded worker processes; torn down after."""
    if not DASK.exists():
        pytest.skip("the dask command line is not installed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], tmp_path / "s.log")
    ]
    try:
        for i in range(2):
            worker = ["worker", address, "--nworkers", "1", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
            processes.append(_start(worker, tmp_path / f"w{i}.log"))
        deadline = time.monotonic() + 60
        while True:  # the scheduler may take a moment to listen
            try:
                with distributed.Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    pids = client.run(lambda: __import__("os").getpid())
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    raise
                time.sleep(0.5)
        assert len(set(pids.values())) == 2  # two worker processes, none of them this one
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(case: Case) -> dict[str, dict[str, tuple[str, float]]]:
    out = {}
    for medium in case.list_media(role="evidence"):
        rows = case.results(medium.id, method="prnu")
        out[Path(medium.path).name] = {r.target: (str(r.decision), r.score) for r in rows}
    return out


def _same(got: dict[str, tuple[str, float]], expected: dict[str, tuple[str, float]]) -> bool:
    """The same decisions, and PCEs equal to float32 rounding (a worker process may sum in another order)."""
    return got.keys() == expected.keys() and all(
        got[d][0] == expected[d][0] and got[d][1] == pytest.approx(expected[d][1], rel=1e-5) for d in got
    )


def _record_tasks(monkeypatch) -> list[tuple]:
    """The arguments of every task the scan submits (`parallel.completed` wrapped)."""
    import importlib

    scan_module = importlib.import_module("sensorprint.workflow.scan")  # the module, not the function
    submitted: list[tuple] = []
    real = scan_module.completed

    def recording(executor, fn, tasks, *, window):
        return real(executor, fn, (submitted.append(task) or task for task in tasks), window=window)

    monkeypatch.setattr(scan_module, "completed", recording)
    return submitted


def _worker_loads(address: str) -> tuple[dict, dict]:
    """Per worker: how often it read each fingerprint file, and each index manifest."""
    with distributed.Client(address) as client:
        fingerprints = client.run(lambda: dict(__import__("sensorprint.workflow.signals").workflow.signals.LOADS))
        index = client.run(lambda: dict(__import__("sensorprint.workflow.screen").workflow.screen.LOADS))
    return fingerprints, index


def _check_shared_once(submitted: list[tuple], address: str, cases: Path, manifest: str) -> None:
    """The device list went to the workers once (one scattered future in every task), and each
    worker read each fingerprint file and the index at most once however many tasks used them."""
    shared = {id(task[1]) for task in submitted}
    assert len(submitted) == 8 and len(shared) == 2  # 4 files per scan, one future per scan
    assert all(
        isinstance(task[1], distributed.Future) and isinstance(task[2], distributed.Future) for task in submitted
    )
    fingerprints, index = _worker_loads(address)
    mine = [{p: n for p, n in loads.items() if Path(p).is_relative_to(cases)} for loads in fingerprints.values()]
    assert all(n == 1 for loads in mine for n in loads.values()) and any(mine)  # 4 tasks used each: read once
    assert all(len(loads) <= 2 * 2 for loads in mine)  # two devices in each of the two scanned cases
    reads = [n for loads in index.values() for key, n in loads.items() if key.endswith(manifest)]
    assert reads and all(n == 1 for n in reads)


def test_scan_through_dask_worker_processes_gives_the_local_answers(tmp_path, loopback_cluster, monkeypatch):
    cameras = make_cameras(n_models=1, units_per_model=2, width=480, height=360, seed=7)
    seized = tmp_path / "seized"
    for camera in cameras:
        for i in range(8):
            camera.save_jpeg(tmp_path / "refs" / camera.name / f"flat{i}.jpg", flat=True, seed=i)
        for i in range(2):
            camera.save_jpeg(seized / f"{camera.name}-{i}.jpg", seed=30 + i)
    with Case.create(tmp_path / "case") as case:
        for camera in cameras:
            enroll(case, camera.name, [tmp_path / "refs" / camera.name], workers=1)
    shutil.copytree(tmp_path / "case", tmp_path / "local")
    shutil.copytree(tmp_path / "case", tmp_path / "indexed")
    with Case.open(tmp_path / "local") as case:
        local = scan(case, [seized], workers=1)
        expected = _answers(case)
    submitted = _record_tasks(monkeypatch)
    with Case.open(tmp_path / "case") as case:
        remote = scan(case, [seized], scheduler=loopback_cluster)
        answers = _answers(case)
        assert answers.keys() == expected.keys() and all(_same(answers[n], expected[n]) for n in answers)
    with Case.open(tmp_path / "indexed") as case:  # screened by the index, which each worker loads
        indexed = scan(case, [seized], scheduler=loopback_cluster, exhaustive=False)
        manifest = next(iter(case.list_media(role="evidence"))).details["screening"]["index"]
        with distributed.Client(loopback_cluster) as client:  # each worker read the index itself, once
            held = client.run(
                lambda: [Path(key).name for key in __import__("sensorprint.workflow.screen").workflow.screen._cache]
            )
        assert all(names in ([manifest], []) for names in held.values()) and [manifest] in held.values()
        for name, rows in _answers(case).items():
            assert _same(rows, {d: row for d, row in expected[name].items() if d in rows})
            assert {d for d, r in rows.items() if r[0] == "match"} == {
                d for d, r in expected[name].items() if r[0] == "match"
            }
    _check_shared_once(submitted, loopback_cluster, tmp_path, manifest)
    assert (remote.files, remote.scanned, remote.errors, remote.matched) == (4, 4, 0, local.matched)
    assert indexed.matched == local.matched
    assert local.matched >= 2
    _cluster_through(tmp_path, seized, loopback_cluster)


def _cluster_through(tmp_path: Path, seized: Path, address: str) -> None:
    """The grouping by source camera through the same workers, when this version has it."""
    try:
        from sensorprint.workflow.cluster import cluster
    except ImportError:
        return
    groups = {}
    for name, scheduler in (("cluster-local", None), ("cluster-dask", address)):
        with Case.create(tmp_path / name) as case:
            summary = cluster(case, [seized], workers=1 if scheduler is None else None, scheduler=scheduler)
            groups[name] = sorted(sorted(Path(p).name for p in g.paths) for g in summary.groups)
    assert groups["cluster-dask"] == groups["cluster-local"]
