"""Benchmark: the founding papers' CNN inside the case workflow, beside PRNU, on the same files.

--corpus dresden (default): the six Nikon cameras are enrolled from their flat-field JPEGs (10
each) with their camera model (labels from the file names: device = everything before the last
underscore, model = the part before the unit number); the 16 natural images are the queries.
--corpus simulated-video: 8 simulated cameras (4 models × 2 units, `sensorprint.simulate`),
each enrolled from 4 H.264 videos (1080p, 5 s, an I-frame a second), queried with 2 other
videos each (same-model pairs, as in the video issue's set); PRNU and CNN both use the scan's
default 5 I-frames per query (I-frames as in the SN CS 2022 authors' code).
`train --target model` then `train --target device` run through the workflow (validation split
by file, early stopping, open-set threshold); the queries are scanned (PRNU and both networks in
the same worker). Prints CNN model and device accuracy (top class, and after the unknown-camera
rule), PRNU accuracy on the same files, the fused verdicts, and the time on this machine.

    .venv/bin/python benchmarks/cnn_case.py [--corpus dresden|simulated-video] [--workers 2] [--epochs N]
        [--units-per-file N] [--keep DIR]

--keep DIR writes the case there; if DIR already holds the enrolled case, enrollment is skipped.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

from sensorprint.cli.text import scan_lines, train_lines
from sensorprint.report import report_records
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan
from sensorprint.workflow.train import train

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def device_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]  # Nikon_D70s_1


def model_of(path: Path) -> str:
    return device_of(path).rsplit("_", 1)[0]  # Nikon_D70s


def dresden_corpus(data: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Reference files per device (the flats) and the query files (the natural images)."""
    root = data / "dresden-nikon"
    flats = collections.defaultdict(list)
    for path in sorted((root / "flat").iterdir()):
        flats[device_of(path)].append(path)
    return dict(flats), sorted((root / "natural").iterdir())


def simulated_video_corpus(
    folder: Path, n_reference: int = 4, n_query: int = 2
) -> tuple[dict[str, list[Path]], list[Path]]:
    """8 simulated cameras' videos (recorded into ``folder`` once, reused after): references, queries."""
    from sensorprint.simulate import make_cameras

    references, queries = {}, []
    for camera in make_cameras(4, 2, width=1920, height=1080):
        paths = []
        for k in range(n_reference + n_query):
            path = folder / ("references" if k < n_reference else "queries") / f"{camera.name}_{k}.mp4"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                camera.record_video(path, seconds=5.0, fps=30, size=(1920, 1080), bitrate=10_000_000, seed=1000 + k)
                report_progress("simulate", len(paths) + 1, n_reference + n_query)
            paths.append(path)
        references[camera.name] = paths[:n_reference]
        queries += paths[n_reference:]
    return references, queries


def report_progress(phase: str, done: int, total: int) -> None:
    print(f"{time.strftime('%H:%M:%S')} {phase} {done}/{total}", file=sys.stderr, flush=True)


def share(n: int, total: int) -> str:
    return f"{n}/{total} = {100 * n / max(1, total):.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["dresden", "simulated-video"], default="dresden")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--videos",
        type=Path,
        default=Path(tempfile.gettempdir()) / "sp_cnn_case_videos_5s",
        help="where the simulated videos are recorded (reused when present)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the method's)")
    parser.add_argument(
        "--units-per-file", type=int, default=None, help="patches per reference file (default: the method's)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, default=None, help="write the case here instead of a temporary folder")
    args = parser.parse_args()
    if args.corpus == "dresden":
        references, queries = dresden_corpus(args.data)
    else:
        references, queries = simulated_video_corpus(args.videos)
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp) / "case"
        reuse = (where / "case.sqlite").exists()
        case = Case.open(where) if reuse else Case.create(where)
        started = time.perf_counter()
        if not reuse:
            for device, paths in sorted(references.items()):
                enroll(case, device, paths, model=model_of(paths[0]), workers=args.workers)
        enrolled = time.perf_counter()
        summaries = {}
        seconds = {}
        cpu_seconds = {}
        for target in ("model", "device"):
            t0 = time.perf_counter()
            c0 = time.process_time()  # CPU seconds of every thread of this process: less sensitive to other load
            summaries[target] = train(
                case,
                target=target,
                epochs=args.epochs,
                units_per_file=args.units_per_file,
                seed=args.seed,
                progress=report_progress,
            )
            seconds[target] = time.perf_counter() - t0
            cpu_seconds[target] = time.process_time() - c0
        trained = time.perf_counter()
        scan_summary = scan(case, queries, workers=args.workers, progress=report_progress)
        scanned = time.perf_counter()
        records = report_records(case)
        case.close()

    print(
        f"{args.corpus} through the workflow, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"
    )
    for target in ("model", "device"):
        for line in train_lines(summaries[target]):
            print(line)
    for line in scan_lines(scan_summary):
        print(line)
    counts = collections.Counter()
    agreement = collections.Counter()
    print(f"\n{'file':26s} {'truth':14s} {'PRNU':14s} {'CNN model':22s} {'CNN device':24s} verdict")
    for record in sorted(records, key=lambda r: r["path"]):
        path = Path(record["path"])
        truth_device, truth_model = device_of(path), model_of(path)
        cnn_model, cnn_device = record["cnn"]["model"], record["cnn"]["device"]
        counts["prnu"] += record["best_device"] == truth_device
        counts["model_top"] += cnn_model["top"] == truth_model
        counts["model_decided"] += cnn_model["label"] == truth_model
        counts["model_unknown"] += cnn_model["label"] == "unknown"
        counts["device_top"] += cnn_device["top"] == truth_device
        counts["device_decided"] += cnn_device["label"] == truth_device
        counts["device_unknown"] += cnn_device["label"] == "unknown"
        agreement[record["agreement"]] += 1
        print(
            f"{path.name:26s} {truth_device:14s} {record['best_device'] or 'no match':14s} "
            f"{cnn_model['label'] + ' ' + format(cnn_model['top_probability'], '.2f'):22s} "
            f"{cnn_device['label'] + ' ' + format(cnn_device['top_probability'], '.2f'):24s} {record['verdict']}"
        )
    n = len(records)
    print(f"\nPRNU device accuracy: {share(counts['prnu'], n)}")
    print(
        f"CNN camera-model accuracy: top class {share(counts['model_top'], n)}; after the unknown-camera rule "
        f"{share(counts['model_decided'], n)} right, {counts['model_unknown']} unknown (goal >= 95%)"
    )
    print(
        f"CNN camera-device accuracy: top class {share(counts['device_top'], n)}; after the unknown-camera rule "
        f"{share(counts['device_decided'], n)} right, {counts['device_unknown']} unknown"
    )
    print("fused verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(agreement.items())))
    print(
        f"time: enroll {enrolled - started:.0f} s{' (reused)' if reuse else ''}, train model {seconds['model']:.0f} s "
        f"({cpu_seconds['model']:.0f} CPU s), train device {seconds['device']:.0f} s ({cpu_seconds['device']:.0f} CPU s), "
        f"scan {scanned - trained:.0f} s (with {args.workers} workers)"
    )
    # the figures above, one key=value line for the record
    print(
        f"benchmark=cnn_case corpus={args.corpus} files={n} prnu_correct={counts['prnu']} "
        f"model_top={counts['model_top']} model_right={counts['model_decided']} model_unknown={counts['model_unknown']} "
        f"device_top={counts['device_top']} device_right={counts['device_decided']} "
        f"device_unknown={counts['device_unknown']} "
        + " ".join(f"verdicts_{'_'.join(str(k).split())}={v}" for k, v in sorted(agreement.items()))
        + f" enroll_s={enrolled - started:.1f} enroll_reused={int(reuse)} train_model_s={seconds['model']:.1f} "
        f"train_model_cpu_s={cpu_seconds['model']:.1f} train_device_s={seconds['device']:.1f} "
        f"train_device_cpu_s={cpu_seconds['device']:.1f} scan_s={scanned - trained:.1f} workers={args.workers}"
    )


if __name__ == "__main__":
    main()
