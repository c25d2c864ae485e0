"""Video identification throughput on this machine: 1080p H.264 clips, 5 frames each, 10 enrolled devices.

Ten simulated phones (five models, two units each; 2048×1536 sensors whose 1080p video is
the full width scaled by 0.9375 with the top and bottom cropped) are enrolled from one
reference clip each (their 1080p frame-size fingerprint). Then:

1. the whole `scan` workflow (hashing, probing, 5 keyframes per video spread over the
   clip, residuals, matching against all 10 devices, committing every result) runs with
   2 worker processes over the query clips (10 s, 12 Mbit/s): videos identified per second,
   wall clock, with the machine's load average (the bar is 5 videos/s, the founding
   paper's figure on a GPU);
2. the same worker function (`scan_file`) on every query, 2 processes, with the CPU
   seconds (process time) of each step per video: probe+hash, decoding, residuals,
   matching; their sum gives the rate 2 unloaded cores would reach. The same with the
   query aggregate left uncleaned (`query_signal(..., clean_video=False)`, what a scan
   may pass), and the reading alone: `probe` then `read_frames` (the file opened and
   demuxed twice each) against `read_video` (once), as a ratio measured in the same run;
3. the per-frame video denoisers (sensorprint.prnu.video) compared on the same
   queries: residual CPU per video, top-1, smallest true-pair PCE and largest
   wrong-pair PCE, to choose the default with figures.

Clips are cached under --cache (recording them costs about 9 CPU seconds each).
Run: .venv/bin/python benchmarks/video_throughput.py [--cache DIR] [--workers 2]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from sensorprint.media import probe, read_frames  # noqa: E402
from sensorprint.media.video import read_video  # noqa: E402
from sensorprint.prnu import DEFAULT_PCE_THRESHOLD, to_gray  # noqa: E402
from sensorprint.simulate import make_cameras  # noqa: E402
from sensorprint.store import Case  # noqa: E402
from sensorprint.workflow import ScanOptions, SignalOptions, enroll, scan  # noqa: E402
from sensorprint.workflow.scan import enrolled_fingerprints, scan_file  # noqa: E402
from sensorprint.workflow.signals import match_device, query_signal  # noqa: E402

SENSOR = dict(width=2048, height=1536)
SIZE = (1920, 1080)
BITRATE = 12_000_000  # phones record 1080p at about 12 to 20 Mbit/s


def _record(job: tuple) -> str:
    camera, path, seconds, seed, scene_kind = job
    if not Path(path).exists():
        partial = Path(str(path) + ".partial.mp4")
        camera.record_video(
            partial, seconds=seconds, fps=30, size=SIZE, bitrate=BITRATE, seed=seed, scene_kind=scene_kind
        )
        partial.replace(path)
    return str(path)


def make_clips(cache: Path, n_devices: int, queries_per_device: int, seconds: float, workers: int) -> tuple[list, dict]:
    cameras = make_cameras(n_devices // 2, 2, seed=11, **SENSOR)
    jobs, truth = [], {}
    for camera in cameras:
        jobs.append((camera, cache / "reference" / f"{camera.name}_wall.mp4", 6, 1, "wall"))
        for q in range(queries_per_device):
            path = cache / "queries" / f"{camera.name}_q{q}.mp4"
            jobs.append((camera, path, seconds, 100 + q, None))
            truth[str(path)] = camera.name
    for sub in ("reference", "queries"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_record, jobs))
    return cameras, truth


def _scan_one(args: tuple) -> tuple[str, dict, list[dict], float]:
    path, devices, options = args
    started = time.process_time()
    outcome = scan_file(path, devices, {}, options, DEFAULT_PCE_THRESHOLD)
    return path, outcome.facts.timings, outcome.results, time.process_time() - started


def _scan_one_uncleaned(args: tuple) -> tuple[str, dict, list[dict], float]:
    """As `scan_file` does it, with the query aggregate left uncleaned (clean_video=False)."""
    path, devices, options = args
    started = time.process_time()
    facts, signal = query_signal(Path(path), options, clean_video=False)
    results = [
        match_device(signal, refs, None, DEFAULT_PCE_THRESHOLD) | {"target": device} for device, refs in devices.items()
    ]
    return path, facts.timings, results, time.process_time() - started


def _read_both_ways(path: str) -> tuple[float, float]:
    """CPU seconds to get the medium and the 5 grey frames: probe + read_frames, then read_video."""
    choice = dict(strategy="even_keyframes", n=5, max_frames=5, threads=1)
    started = time.process_time()
    probe(Path(path))
    [to_gray(frame.pixels) for frame in read_frames(Path(path), **choice)]
    twice = time.process_time() - started
    started = time.process_time()
    _medium, frames = read_video(Path(path), **choice)
    [to_gray(frame.pixels) for frame in frames]
    return twice, time.process_time() - started


def worker_split(
    paths: list[str], devices: dict, options: SignalOptions, workers: int, worker=_scan_one
) -> list[tuple]:
    with ProcessPoolExecutor(workers) as pool:
        # first call per worker loads and prepares the fingerprints: warm up on one file each
        list(pool.map(worker, [(p, devices, options) for p in paths[:workers]]))
        return list(pool.map(worker, [(p, devices, options) for p in paths]))


def print_split(rows: list[tuple], truth: dict, workers: int, title: str) -> dict[str, float | int]:
    """Print the mean CPU seconds of each step per video; return the total, the rate and the identified count."""
    steps = {"probe+hash": [], "decode": [], "residual": [], "matching": [], "total": []}
    correct = 0
    for path, timings, results, total in rows:
        steps["probe+hash"].append(timings.get("probe", 0.0))
        steps["decode"].append(timings.get("decode", 0.0))
        steps["residual"].append(timings.get("residual", 0.0))
        # matching (and the worker's bookkeeping): what the other steps leave of the file's CPU time
        steps["matching"].append(total - sum(timings.get(k, 0.0) for k in ("probe", "decode", "residual")))
        steps["total"].append(total)
        best = max(results, key=lambda r: r.score)
        correct += best.target == truth[path] and best.decision == "match"
    mean_total = statistics.mean(steps["total"])
    print(f"\n{title}")
    for step, values in steps.items():
        print(f"   {step:11s} {statistics.mean(values):.3f} s  ({100 * statistics.mean(values) / mean_total:4.1f} %)")
    print(
        f"   -> {workers} unloaded cores: {workers / mean_total:.2f} videos/s; "
        f"{correct}/{len(rows)} identified (top-1 and PCE >= {DEFAULT_PCE_THRESHOLD:g})"
    )
    return {"cpu_s_per_video": mean_total, "videos_per_s_unloaded": workers / mean_total, "identified": correct}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sensorprint-video-throughput")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--queries-per-device", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--skip-denoisers", action="store_true", help="skip part 3 (denoiser comparison)")
    args = parser.parse_args()

    t0 = time.time()
    cameras, truth = make_clips(args.cache, args.devices, args.queries_per_device, args.seconds, args.workers)
    print(
        f"clips ready in {time.time() - t0:.0f} s ({len(truth)} queries of {args.seconds:g} s, "
        f"{SIZE[0]}x{SIZE[1]}, {BITRATE / 1e6:g} Mbit/s, sensors {SENSOR['width']}x{SENSOR['height']})"
    )

    work = Path(tempfile.mkdtemp(prefix="sensorprint-vt-"))
    try:
        case = Case.create(work / "case")
        t0 = time.time()
        for camera in cameras:
            enroll(
                case,
                camera.name,
                [args.cache / "reference" / f"{camera.name}_wall.mp4"],
                options=SignalOptions(frame_strategy="even", n_frames=40),
                workers=1,
            )
        print(
            f"enrolled {len(cameras)} devices from one 6 s reference clip of a wall each (40 frames) in {time.time() - t0:.0f} s"
        )

        options = SignalOptions(frame_strategy="even_keyframes", n_frames=5)
        queries = sorted(truth)
        load_before = os.getloadavg()
        t0 = time.time()
        summary = scan(case, [args.cache / "queries"], options=ScanOptions(signal=options), workers=args.workers)
        wall = time.time() - t0
        load_after = os.getloadavg()
        print(
            f"\n1. scan workflow, {args.workers} workers: {summary.scanned} videos in {wall:.2f} s wall = "
            f"{summary.scanned / wall:.2f} videos/s (bar >= 5); load average before {load_before[0]:.1f}, "
            f"after {load_after[0]:.1f} on {os.cpu_count()} cores; {summary.matched} matched, {summary.errors} errors"
        )

        figures: dict[str, float | int] = {
            "scanned": summary.scanned,
            "matched": summary.matched,
            "errors": summary.errors,
            "scan_wall_s": wall,
            "scan_videos_per_s": summary.scanned / wall,
        }
        devices = enrolled_fingerprints(case)
        rows = worker_split(queries, devices, options, args.workers)
        split = print_split(
            rows,
            truth,
            args.workers,
            f"2. per video, CPU seconds (process time), mean over {len(rows)} videos, "
            f"5 frames, 10 devices (scan_file):",
        )
        figures |= {f"split_{key}": value for key, value in split.items()}
        rows = worker_split(queries, devices, options, args.workers, worker=_scan_one_uncleaned)
        split = print_split(
            rows,
            truth,
            args.workers,
            "   the same, query aggregate not cleaned (query_signal(..., clean_video=False)):",
        )
        figures |= {f"split_uncleaned_{key}": value for key, value in split.items()}
        with ProcessPoolExecutor(args.workers) as pool:
            reads = list(pool.map(_read_both_ways, queries))
        twice, once = statistics.mean(r[0] for r in reads), statistics.mean(r[1] for r in reads)
        print(
            f"   reading a video (medium + 5 grey frames): probe then read_frames {twice:.3f} s, "
            f"read_video {once:.3f} s ({twice / once:.2f}x)"
        )
        figures |= {"read_twice_s": twice, "read_once_s": once}
        load_end = os.getloadavg()
        print(f"   load average at the end {load_end[0]:.1f} on {os.cpu_count()} cores")

        if not args.skip_denoisers:
            print("\n3. per-frame video denoiser (query side; reference always 4-level wavelet):")
            variants = {
                "spatial 3x3 Wiener": SignalOptions(
                    frame_strategy="even_keyframes", n_frames=5, video_denoiser="spatial"
                ),
                "spatial, aggregate not cleaned": SignalOptions(
                    frame_strategy="even_keyframes", n_frames=5, video_denoiser="spatial", video_clean=False
                ),
                "wavelet db4 1 level": SignalOptions(
                    frame_strategy="even_keyframes", n_frames=5, video_denoiser="wavelet", video_levels=1
                ),
                "wavelet db4 4 levels": SignalOptions(
                    frame_strategy="even_keyframes", n_frames=5, video_denoiser="wavelet", video_levels=4
                ),
            }
            for name, variant in variants.items():
                rows = worker_split(queries, devices, variant, args.workers)
                true_pce, wrong_pce, top, residual_s = [], [], 0, []
                for path, timings, results, _total in rows:
                    residual_s.append(timings.get("residual", 0.0))
                    scores = {r.target: r.score for r in results}
                    true_pce.append(scores[truth[path]])
                    wrong_pce += [s for d, s in scores.items() if d != truth[path]]
                    top += max(scores, key=scores.get) == truth[path]
                print(
                    f"   {name:32s} residual {statistics.mean(residual_s):.3f} s/video  top-1 {top}/{len(rows)}  "
                    f"true PCE min {min(true_pce):7.1f} median {statistics.median(true_pce):7.1f}  "
                    f"wrong PCE max {max(wrong_pce):5.1f}"
                )
                key = "denoiser_" + "_".join(name.replace(",", "").split())
                figures |= {
                    f"{key}.residual_s": statistics.mean(residual_s),
                    f"{key}.top1": top,
                    f"{key}.min_true_pce": min(true_pce),
                    f"{key}.max_wrong_pce": max(wrong_pce),
                }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # the figures above, one key=value line for the record
    shown = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()]
    print(" ".join(["benchmark=video_throughput", f"workers={args.workers}", *shown]))


if __name__ == "__main__":
    main()
