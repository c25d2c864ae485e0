"""Short, downscaled, compressed phone clips: the old fixed read (5 keyframes) against the adaptive read.

Simulated phones with 4:3 sensors (4000×3000 by default) film 720p: the frame is the full
sensor width scaled by 0.32 (line-skipping readout, `simulate.record_video`) with the top
and bottom cropped. Each device is enrolled from two reference videos of its own (a wall and
the sky, 4 s, 40 frames each), as in benchmarks/video_accuracy.py. Queries: 4 s clips at
30 fps, H.264 at 8 Mbit/s, the camera panning over a random scene (one keyframe a second:
4 in a clip), and the same clips re-encoded at 2 Mbit/s (`simulate.reencode_video`), as
sharing services do.

Every query is compared with every device twice, by the scan's worker code
(`workflow.signals.query_and_match`): with the old default (5 keyframes spread over the
clip, no further frames) and with the adaptive read (the same 5 first, then more frames
until every device is decided or the clip ends). Printed for each: decided share (true
pairs matched), true matches, false matches, true pairs answered "no match", inconclusive
answers of true pairs, median true-pair PCE, mean frames used, CPU seconds per clip, and
the new/old time ratio measured in the same run. The last line holds the figures as
key=value. Media are cached under --cache.

Run: .venv/bin/python benchmarks/short_clips.py [--rates 8M,2M] [--models 5 --queries 4]
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
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD  # noqa: E402
from sensorprint.simulate import make_cameras, reencode_video  # noqa: E402
from sensorprint.store import Case  # noqa: E402
from sensorprint.workflow import SignalOptions, enroll  # noqa: E402
from sensorprint.workflow.scan import enrolled_fingerprints  # noqa: E402

VIDEO = dict(size=(1280, 720), fps=30, bitrate=8_000_000, readout="bin")
SOCIAL_BITRATE = 2_000_000
THRESHOLD = DEFAULT_PCE_THRESHOLD


def cameras(n_models: int, width: int, height: int) -> list:
    """Two units of each model (same-model pairs are the hardest wrong pairs)."""
    return make_cameras(n_models, 2, seed=11, width=width, height=height)


def _make(job: tuple) -> str:
    kind, camera, path, seed, extra = job
    path = Path(path)
    if path.exists():
        return str(path)
    partial = path.with_name(path.stem + ".partial" + path.suffix)
    if kind == "video":
        camera.record_video(partial, seed=seed, **VIDEO, **extra)
    else:  # re-encode the 8 Mbit/s clip `extra["source"]`
        reencode_video(extra["source"], partial, bitrate=SOCIAL_BITRATE)
    partial.replace(path)
    return str(path)


def make_media(cache: Path, cams: list, queries: int, workers: int) -> dict[str, dict[str, str]]:
    first, second, truth = [], [], {"8M": {}, "2M": {}}
    for camera in cams:
        for s, kind in enumerate(("wall", "sky")):
            path = cache / "ref" / camera.name / f"ref{s}.mp4"
            first.append(("video", camera, path, s, dict(seconds=4, scene_kind=kind)))
        for q in range(queries):
            path = cache / "q8M" / f"{camera.name}_q{q}.mp4"
            first.append(("video", camera, path, 100 + q, dict(seconds=4)))
            truth["8M"][str(path)] = camera.name
            social = cache / "q2M" / f"{camera.name}_q{q}.mp4"
            second.append(("reencode", camera, social, 0, dict(source=str(path))))
            truth["2M"][str(social)] = camera.name
    for job in first + second:
        Path(job[2]).parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_make, first, chunksize=1))
        list(pool.map(_make, second, chunksize=1))
    return truth


def _one(job: tuple) -> tuple:
    """One query against every device: the decisions, the true pair's PCE, frames used and CPU seconds."""
    from sensorprint.workflow.signals import query_and_match

    path, device, devices, options = job
    started = time.process_time()
    facts, rows = query_and_match(Path(path), devices, {}, options, THRESHOLD)
    seconds = time.process_time() - started
    if facts.error:
        return path, device, None, seconds, 0
    decisions = {r.target: (str(r.decision), r.score) for r in rows}
    used = max((r.evidence.frames_used or 0) for r in rows) if rows else 0
    true = next((r for r in rows if r.target == device), None)
    if true is not None and str(true.decision) != "match":  # why a true pair stays undecided
        e = true.evidence
        print(
            f"    {Path(path).parent.name}/{Path(path).name}: {true.decision} PCE {true.score:.1f} "
            f"(needed {e.threshold_at_search}, predicted {e.predicted_pce}) on {e.frames_used} frames, "
            f"{e.search_stage}",
            flush=True,
        )
    return path, device, decisions, seconds, used


def evaluate(truth: dict[str, str], devices: dict, options: SignalOptions, workers: int, title: str) -> dict:
    jobs = [(p, d, devices, options) for p, d in sorted(truth.items())]
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(_one, jobs, chunksize=1))
    n = len(done)
    true_match = false_match = true_no = true_inconclusive = top1 = errors = 0
    true_pce, seconds, frames = [], [], []
    for _path, device, decisions, spent, used in done:
        seconds.append(spent)
        frames.append(used)
        if decisions is None:
            errors += 1
            continue
        decision, pce = decisions[device]
        true_pce.append(pce)
        true_match += decision == "match"
        true_no += decision == "no_match"
        true_inconclusive += decision == "inconclusive"
        top1 += max(decisions, key=lambda name: decisions[name][1]) == device
        false_match += sum(d == "match" for name, (d, _) in decisions.items() if name != device)
    figures = {
        "decided": true_match / n if n else 0.0,
        "true_matches": true_match,
        "false_matches": false_match,
        "true_no_match": true_no,
        "true_inconclusive": true_inconclusive,
        "top1": top1,
        "median_true_pce": statistics.median(true_pce) if true_pce else 0.0,
        "min_true_pce": min(true_pce) if true_pce else 0.0,
        "mean_frames": statistics.mean(frames) if frames else 0.0,
        "cpu_s_per_clip": statistics.mean(seconds) if seconds else 0.0,
        "unreadable": errors,
    }
    print(
        f"{title}: decided {true_match}/{n} ({100 * figures['decided']:.0f} %), false matches {false_match}, "
        f"true pairs 'no match' {true_no}, inconclusive {true_inconclusive}, top-1 {top1}/{n}; "
        f"true-pair PCE median {figures['median_true_pce']:.1f} (min {figures['min_true_pce']:.1f}); "
        f"frames used {figures['mean_frames']:.1f}; {figures['cpu_s_per_clip']:.2f} s CPU per clip"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sensorprint-short-clips")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--models", type=int, default=5, help="camera models (two units each)")
    parser.add_argument("--queries", type=int, default=4, help="query clips per device")
    parser.add_argument("--sensor", default="4000x3000", help="sensor width x height (4:3)")
    parser.add_argument("--rates", default="8M,2M", help="which query clips to evaluate: 8M, 2M or both")
    args = parser.parse_args()
    width, height = (int(v) for v in args.sensor.split("x"))

    cams = cameras(args.models, width, height)
    t0 = time.time()
    truth = make_media(args.cache / args.sensor, cams, args.queries, args.workers)
    print(f"{len(cams)} cameras ({width}x{height} sensors, 1280x720 video), media ready in {time.time() - t0:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="sensorprint-sc-"))
    figures: dict[str, float | int] = {}
    try:
        case = Case.create(work / "case")
        for camera in cams:
            enroll(
                case,
                camera.name,
                [args.cache / args.sensor / "ref" / camera.name],
                options=SignalOptions(frame_strategy="even", n_frames=40),
                workers=args.workers,
            )
        devices = enrolled_fingerprints(case)
        case.close()
        old = SignalOptions(frame_strategy="even_keyframes", n_frames=5, adaptive_frames=False)
        new = replace(old, adaptive_frames=True)
        for label in args.rates.split(","):
            print(f"\n{len(truth[label])} clips at {label}bit/s against {len(devices)} devices:")
            before = evaluate(truth[label], devices, old, args.workers, "  old (5 keyframes)")
            after = evaluate(truth[label], devices, new, args.workers, "  adaptive          ")
            ratio = after["cpu_s_per_clip"] / max(before["cpu_s_per_clip"], 1e-9)
            print(f"  time adaptive/old: {ratio:.1f}x (same run)")
            figures |= {f"{label}.old.{k}": v for k, v in before.items()}
            figures |= {f"{label}.new.{k}": v for k, v in after.items()}
            figures[f"{label}.time_ratio"] = ratio
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} (CPU seconds on a shared machine: compare the ratios)")
    shown = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={int(v)}" for k, v in figures.items()]
    print(" ".join(["benchmark=short_clips", f"threshold={THRESHOLD:g}", *shown]))


if __name__ == "__main__":
    main()
