"""Devices enrolled from stabilised reference videos, with and without aligning their frames first.

Six simulated phones (SimCam-A, B, C, two units each: the same-model pairs are the hardest
wrong pairs), 800×600 sensors, 640×360 H.264 video at 3 Mbit/s. Each device is enrolled from
2 stabilised reference videos (a wall and the sky, 3 s at 30 fps, 20 frames each: electronic
stabilisation moves the sensor window by a different shift in every frame) and the
queries are 3 stabilised videos per phone (3 s, other scenes, the scan's 5 keyframes),
scanned with the per-frame search. Enrolled twice: frames summed as read (the estimate of
a stabilised video is then blurred: its frames are misaligned), and aligned to the running
estimate first (`prnu.stabilised.align_reference`, the default). Also: 2 ordinary
(not stabilised) reference videos per phone enrolled with the alignment on, to check that
they are recognised as steady and summed exactly as before.

Printed: true matches (the true device decides 'match'), false matches (any other device
decides 'match'), the frames aligned and left out, and the reference videos found
stabilised. Media are cached under --cache. Run: .venv/bin/python benchmarks/stabilised_enrollment.py
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD  # noqa: E402
from sensorprint.simulate import make_cameras  # noqa: E402
from sensorprint.store import Case  # noqa: E402
from sensorprint.workflow import ScanOptions, SignalOptions, enroll, scan  # noqa: E402

SENSOR = dict(width=800, height=600)
VIDEO = dict(size=(640, 360), fps=30, bitrate=3_000_000, seconds=3)


def _make(job: tuple) -> str:
    camera, path, seed, extra = job
    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.stem + ".partial" + path.suffix)
        camera.record_video(partial, seed=seed, **VIDEO, **extra)
        partial.replace(path)
    return str(path)


def media(cache: Path, cams: list, queries: int, workers: int) -> dict[str, str]:
    jobs, truth = [], {}
    for camera in cams:
        for s, kind in enumerate(("wall", "sky")):
            jobs.append(
                (
                    camera,
                    cache / "ref_stabilised" / camera.name / f"ref{s}.mp4",
                    s,
                    dict(scene_kind=kind, stabilise=True),
                )
            )
            jobs.append((camera, cache / "ref_steady" / camera.name / f"ref{s}.mp4", s, dict(scene_kind=kind)))
        for q in range(queries):
            path = cache / "query" / f"{camera.name}_s{q}.mp4"
            jobs.append((camera, path, 200 + q, dict(stabilise=True)))
            truth[str(path.resolve())] = camera.name
    for job in jobs:
        Path(job[1]).parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_make, jobs))
    return truth


def evaluate(case: Case, truth: dict[str, str]) -> tuple[int, int, float, float]:
    """(true matches, false matches, smallest true-pair PCE, largest wrong-pair PCE)."""
    true_matches = false_matches = 0
    true_pce, wrong_pce = [], []
    for path, device in truth.items():
        medium = case.find_medium("evidence", path)
        rows = {r.target: r for r in case.results(medium.id) if r.method == "prnu"} if medium else {}
        if device not in rows:
            continue
        true_matches += rows[device].decision == "match"
        true_pce.append(rows[device].score)
        for name, row in rows.items():
            if name != device:
                false_matches += row.decision == "match"
                wrong_pce.append(row.score)
    return true_matches, false_matches, min(true_pce, default=0.0), max(wrong_pce, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sensorprint-stabilised-enrollment")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cameras", type=int, default=3, help="models (two units each)")
    parser.add_argument("--queries", type=int, default=3)
    args = parser.parse_args()
    cams = make_cameras(args.cameras, 2, seed=11, **SENSOR)
    t0 = time.time()
    truth = media(args.cache, cams, args.queries, args.workers)
    print(f"{len(cams)} cameras, {len(truth)} stabilised queries, media ready in {time.time() - t0:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="sensorprint-se-"))
    figures: dict[str, float] = {}
    try:
        for label, folder, align in (
            ("aligned", "ref_stabilised", True),
            ("as_read", "ref_stabilised", False),
            ("steady", "ref_steady", True),
        ):
            case = Case.create(work / label)
            options = SignalOptions(frame_strategy="even", n_frames=20, align_references=align)
            t0 = time.time()
            aligned = left_out = stabilised = 0
            for camera in cams:
                summary = enroll(
                    case, camera.name, [args.cache / folder / camera.name], options=options, workers=args.workers
                )
                stabilised += len(summary.stabilised)
                aligned += sum(a for _, a, _ in summary.stabilised)
                left_out += sum(b for _, _, b in summary.stabilised)
            enroll_s = time.time() - t0
            figures |= {
                f"{label}.enroll_s": enroll_s,
                f"{label}.refs_stabilised": stabilised,
                f"{label}.frames_aligned": aligned,
                f"{label}.frames_left_out": left_out,
            }
            print(
                f"\n{label}: enrolled in {enroll_s:.0f} s; {stabilised} of {2 * len(cams)} reference videos found stabilised, {aligned} frames aligned, {left_out} left out"
            )
            if label == "steady":
                case.close()
                continue
            t0 = time.time()
            scan(
                case, [args.cache / "query"], options=ScanOptions(threshold=DEFAULT_PCE_THRESHOLD), workers=args.workers
            )
            found = evaluate(case, truth)
            print(
                f"   scanned in {time.time() - t0:.0f} s: true matches {found[0]}/{len(truth)}, false matches {found[1]}; "
                f"true-pair PCE min {found[2]:.1f}, wrong-pair PCE max {found[3]:.1f}"
            )
            figures |= {
                f"{label}.true_matches": found[0],
                f"{label}.false_matches": found[1],
                f"{label}.min_true_pce": found[2],
                f"{label}.max_wrong_pce": found[3],
            }
            case.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shown = [f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={int(v)}" for k, v in figures.items()]
    print(" ".join(["benchmark=stabilised_enrollment", f"queries={len(truth)}", *shown]))


if __name__ == "__main__":
    main()
