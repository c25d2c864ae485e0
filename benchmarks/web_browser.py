"""The evidence browser of `sensorprint serve` at 100,000 files: page times of filters, sort, search, pages.

A case is filled through SQL in the store's own tables (what `Case.record_results` writes,
one audit line per file included): three enrolled devices with small fingerprints, N
evidence files (1 % unreadable), each with one PRNU result per device (a third match one
device, 2 % inconclusive) and, for one file in ten, a camera-device network's answer (one
in four of those names another device than PRNU: the PRNU/CNN disagreement filter). The
server is the real application (`web.create_app` under uvicorn, in this process) asked
over HTTP with the access cookie, as a browser asks.

Timed: from the server's start until the evidence browser lists the files (it reads every
file's results once, in the background; pages meanwhile say how far it is), each
page of the browser (its first request, and the median of --repeat more: paging through one
selection), and a page after one more file is recorded
while the server runs (the rows of that file alone are read again). The same pages on a
case of --small files are the reference measured in the same run: `ratio` is the 100k page
time over the small one (1.0: the page does not grow with the case).

Run: nice -n 5 .venv/bin/python benchmarks/web_browser.py [--files 100000] [--small 1000] [--repeat 5]
Last line: files=N cold_s=S worst_page_s=S worst_ratio=R after_one_file_s=S
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

DEVICES = ("Canon_Ixus70_0", "Nikon_D70_1", 'Phone <b>"3"</b>')
TOKEN = "benchmark-token-" + "b" * 24


def _prnu_details(rng: np.random.Generator, fingerprint_id: int, match: bool) -> tuple[float, float, dict]:
    """A PRNU result's PCE, p_fa and stored evidence, as `prnu.compare` leaves them."""
    pce = float(rng.lognormal(7.0, 1.0)) if match else float(rng.normal(0.0, 2.0))
    log_p = -pce / (2 * np.log(10)) if pce > 0 else 0.0
    details = {
        "n_positions": 1,
        "log10_p_fa": log_p,
        "threshold_at_search": 60.0,
        "search_stage": "aligned",
        "transform_text": "as recorded",
        "fingerprint_shape": [48, 64],
        "fingerprint_id": fingerprint_id,
        "fingerprint_media": 30,
        "fingerprint_quality": 0.8,
        "size_key": "4000x3000",
    }
    return pce, 10.0**log_p, details


def _file_rows(i: int, rng: np.random.Generator, fingerprints: list[int], run_id: int, now: str):
    """One evidence file's media row, result rows and audit line (medium id = i + offset)."""
    path = f"/evidence/EXH-{i // 10_000:02d}/DCIM/DSC_{i:06d}.JPG"
    sha = hashlib.sha256(f"file {i}".encode()).hexdigest()
    error = i % 100 == 99
    medium = (path, sha, 4_000_000 + i, "image", 4000, 3000, 1, json.dumps({"Make": "Canon", "Model": "Ixus 70"}),
              "evidence", "error" if error else "ok", "not a JPEG: truncated" if error else None, run_id, now, now)  # fmt: skip
    results = []
    if not error:
        source = i % 3 if i % 3 != 2 or i % 2 else None
        for d, name in enumerate(DEVICES):
            pce, p_fa, details = _prnu_details(rng, fingerprints[d], source == d)
            decision = "match" if pce >= 60 else ("inconclusive" if i % 50 == 8 and d == 2 else "no match")
            results.append(("prnu", "device", name, pce, 0.01, p_fa, decision, json.dumps(details)))
        if i % 10 == 0:
            says = DEVICES[source] if source is not None and i % 40 else DEVICES[((source or 0) + 1) % 3]
            for name in DEVICES:
                cnn = {"model_id": 1, "network": "constrained", "units": 40, "unit": "patch"}
                results.append(("cnn", "device", name, 0.9 if name == says else 0.05,
                                None, None, "match" if name == says else "no match", json.dumps(cnn)))  # fmt: skip
    audit = {"path": path, "sha256": sha, "status": "error" if error else "ok", "results": len(results)}
    return medium, results, audit


def build_case(root: Path, n_files: int, seed: int = 1):
    """A case at `root` with len(DEVICES) devices and `n_files` evidence files (see the module doc)."""
    from sensorprint.store import Case
    from sensorprint.store.case import _now

    rng = np.random.default_rng(seed)
    case = Case.create(root)
    fingerprints = []
    for name in DEVICES:
        device = case.add_device(name, model="Ixus 70")
        k = rng.standard_normal((48, 64)).astype(np.float32)
        record = case.save_fingerprint(device.id, k, n_media=30, quality=0.8, media_hashes=["0" * 64],
                                       source="image", parameters={})  # fmt: skip
        fingerprints.append(record.id)
    run_id = case.start_run("scan", {"paths": ["/evidence"]})
    now = _now()
    with case._write() as conn:
        first = int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM media").fetchone()[0]) + 1
        media, results, audit = [], [], []
        for i in range(n_files):
            medium, rows, line = _file_rows(i, rng, fingerprints, run_id, now)
            media.append(medium)
            results += [(first + i, *row, run_id, now) for row in rows]
            audit.append((now, run_id, "results recorded", json.dumps({"medium_id": first + i, **line})))
        conn.executemany(
            "INSERT INTO media (path, sha256, size_bytes, kind, width, height, orientation, metadata, role, status, "
            "error, run_id, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            media,
        )
        conn.executemany(
            "INSERT INTO results (medium_id, method, target_kind, target, score, ncc, p_fa, decision, details, "
            "run_id, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            results,
        )
        conn.executemany("INSERT INTO audit (time, run_id, action, details) VALUES (?, ?, ?, ?)", audit)
    case.finish_run(run_id, "completed", {"files": n_files})
    return case


class Server:
    """The real application over a case, served by uvicorn in a thread on a free port."""

    def __init__(self, root: Path) -> None:
        import uvicorn

        from sensorprint.web import allowed_hosts, bind, create_app

        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(root, TOKEN, workers=1, allowed_hosts=allowed_hosts("127.0.0.1", port))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def get(self, path: str) -> tuple[float, str]:
        """(seconds, body) of one GET with the access cookie."""
        request = urllib.request.Request(self.url + path, headers={"Cookie": f"sensorprint_token={TOKEN}"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read().decode()
        return time.perf_counter() - start, body

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def pages(n_files: int) -> dict[str, str]:
    """The pages timed: every filter, the sort, both searches, the first and last page, one file, runs."""
    last = max(1, -(-n_files // 50))
    probe = n_files * 2 // 3 + 1
    sha = hashlib.sha256(f"file {probe}".encode()).hexdigest()
    return {
        "all, page 1": "/files",
        "all, last page": f"/files?page={last}",
        "match": "/files?answer=match",
        "inconclusive": "/files?answer=inconclusive",
        "no match": "/files?answer=no+match",
        "error": "/files?answer=error",
        "disagree": "/files?answer=disagree",
        "sorted by p_fa": "/files?sort=p_fa",
        "match, sorted, page 20": "/files?answer=match&sort=p_fa&page=20",
        "search name": f"/files?q=DSC_{probe:06d}",
        "search hash": f"/files?q={sha[:12]}",
        "overview": "/",
        "one file": "/files/10",
        "runs, last page": "/runs?page=100000",
    }


def measure(root: Path, n_files: int, repeat: int) -> tuple[float, dict[str, float], float]:
    """(first page s, {page: median warm s}, page s after one more file is recorded)."""
    from sensorprint.store import Case

    start = time.perf_counter()
    server = Server(root)
    try:
        while 'id="total"' not in server.get("/files")[1]:  # the server reads every file's row at start
            time.sleep(0.05)
        cold = time.perf_counter() - start
        warm = {}
        for name, path in pages(n_files).items():
            times = [server.get(path)[0] for _ in range(1 + repeat)]
            warm[name] = (times[0], statistics.median(times[1:]))  # the first asks; the next page through it
        with Case.open(root) as case:
            case.record_results({"path": "/evidence/late.jpg", "sha256": "f" * 64, "status": "ok"}, [])
        after, body = server.get("/files?q=late.jpg")
        assert "late.jpg" in body, "the file recorded while serving is not listed"
    finally:
        server.close()
    return cold, warm, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = {}
        for n in (args.small, args.files):
            start = time.perf_counter()
            build_case(Path(folder) / f"case{n}", n).close()
            print(f"{n:,} files: case built in {time.perf_counter() - start:.1f} s", flush=True)
            figures[n] = measure(Path(folder) / f"case{n}", n, args.repeat)
    (cold_s, small, _), (cold, big, after) = figures[args.small], figures[args.files]
    print(
        f"server start until the files are listed: {cold_s:.2f} s ({args.small:,} files), {cold:.2f} s ({args.files:,} files)"
    )
    print(f"{'page (first request; again)':<28} {args.small:>16,} files {args.files:>16,} files  ratio (first)")
    for name in big:
        (a, b), (c, d) = small[name], big[name]
        print(f"{name:<28} {a * 1e3:8.1f} ;{b * 1e3:7.1f} ms {c * 1e3:8.1f} ;{d * 1e3:7.1f} ms  {c / a:5.1f}")
    worst = max(big, key=lambda n: big[n][0])
    print(f"slowest first request: {worst}; a page after one more file was recorded: {after * 1000:.1f} ms")
    print("(shared machine: 2 cores for 5 agents; 'again': median of the next requests, as when paging)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak memory of this process (server and case builder): {rss:.0f} MiB")
    print(
        f"files={args.files} cold_s={cold:.2f} worst_page_s={big[worst][0]:.3f} "
        f"worst_ratio={max(big[n][0] / small[n][0] for n in big):.1f} after_one_file_s={after:.3f}"
    )


if __name__ == "__main__":
    main()
