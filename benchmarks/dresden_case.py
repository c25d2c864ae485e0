"""The whole dresden-nikon identification through the case workflow, timed.

Enrolls each of the six Nikon cameras from its 10 flat-field JPEGs (60 files), scans the
16 natural images (full resolution, 2 workers), and prints top-1 accuracy, wrong decisions
at the threshold, the separation (smallest true-pair PCE / largest wrong-pair PCE) and the
wall time. Goal (issue 2): 100% top-1, no wrong decision, separation >= 5, under 30 s on 2 cores.

    .venv/bin/python benchmarks/dresden_case.py [--workers 2] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import tempfile
import time
from pathlib import Path

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD
from sensorprint.report import report_records
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def device_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--set", default="dresden-nikon", help="dresden-nikon or vision-trio")
    args = parser.parse_args()
    root = args.data / args.set
    flats = collections.defaultdict(list)
    for path in sorted((root / "flat").iterdir()):
        flats[device_of(path) if args.set == "dresden-nikon" else path.name[:3]].append(path)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        cpu_started = cpu_seconds()
        case = Case.create(Path(tmp) / "case")
        for device, paths in sorted(flats.items()):
            enroll(case, device, paths, workers=args.workers)
        enrolled = time.perf_counter()
        scan(case, [root / "natural"], workers=args.workers)
        finished = time.perf_counter()
        cpu_total = cpu_seconds() - cpu_started
        records = report_records(case)
        case.close()
    true_pce, wrong_pce, wrong_same_size, correct = [], [], [], 0
    for record in records:
        name = Path(record["path"]).name
        truth = device_of(Path(name)) if args.set == "dresden-nikon" else name[:3]
        scores = {device: entry["pce"] for device, entry in record["devices"].items()}
        ranked = max(scores, key=scores.get)
        correct += ranked == truth
        true_pce.append(scores[truth])
        wrong_pce += [score for device, score in scores.items() if device != truth]
        query_size = sorted((record["width"], record["height"]))
        wrong_same_size += [
            entry["pce"]
            for device, entry in record["devices"].items()
            if device != truth and sorted(entry["details"].get("fingerprint_shape", [])) == query_size
        ]
        print(
            f"{name:32s} truth {truth:16s} best {record['best_device'] or '-':16s} "
            + " ".join(f"{d}={s:.0f}" for d, s in sorted(scores.items()))
        )
    threshold = DEFAULT_PCE_THRESHOLD
    wrong_decisions = sum(p >= threshold for p in wrong_pce) + sum(p < threshold for p in true_pce)
    separation_same_size = min(true_pce) / max(max(wrong_same_size), 1e-9)
    separation_all = min(true_pce) / max(max(wrong_pce), 1e-9)
    print(
        f"\n{args.set}: {len(records)} queries, top-1 {100 * correct / len(records):.1f}%, "
        f"wrong decisions at PCE {threshold:g}: {wrong_decisions}"
    )
    print(
        f"smallest true-pair PCE {min(true_pce):.1f}; largest wrong-pair PCE, same-size pairs (the reference's "
        f"protocol) {max(wrong_same_size):.1f}, separation {separation_same_size:.2f}; "
        f"all pairs incl. crop searches {max(wrong_pce):.1f}, separation {separation_all:.2f}"
    )
    print(
        f"time: enroll {enrolled - started:.1f} s, scan {finished - enrolled:.1f} s, "
        f"total {finished - started:.1f} s wall with {args.workers} workers; {cpu_total:.1f} CPU-s "
        f"(all processes); load average {os.getloadavg()[0]:.1f}"
    )
    # the figures above, one key=value line for the record
    print(
        f"benchmark=dresden_case set={args.set} queries={len(records)} top1={correct} threshold={threshold:g} "
        f"wrong_decisions={wrong_decisions} min_true_pce={min(true_pce):.1f} "
        f"max_wrong_pce_same_size={max(wrong_same_size):.1f} separation_same_size={separation_same_size:.2f} "
        f"max_wrong_pce_all={max(wrong_pce):.1f} separation_all={separation_all:.2f} "
        f"enroll_s={enrolled - started:.1f} scan_s={finished - enrolled:.1f} total_s={finished - started:.1f} "
        f"cpu_s={cpu_total:.1f} workers={args.workers}"
    )


if __name__ == "__main__":
    main()
