"""Accuracy of `sensorprint cluster` (grouping media by unknown source): simulated cameras and real data.

1. simulated: 30 cameras (15 models × 2 units: every camera has a same-model twin), in three
   sensor sizes (1024×768, 1280×960, 1600×1200), 20 media each: 5 resized to 50% and
   recompressed (JPEG 85), 2 stored in portrait, 2 H.264 videos (5 s, 30 fps, the sensor
   width scaled and cropped to 16:9), 11 full-size landscape photos; every other photo a
   flat field (sky or wall), the rest natural scenes. With --stabilised N (default 1), N of
   each camera's videos are electronically stabilised (every frame a different shift of the
   sensor window; with zoom and rotation too the per-frame search finds few, see
   benchmarks/video_accuracy.py --stabilise-zoom): they can join their camera's group only
   frame by frame (`workflow.cluster`'s frame stage); printed: how many did.
2. dresden-nikon: all 76 images (60 flats, 16 naturals, 6 devices: two units of each of
   three Nikon models); vision-trio: all 39 images of 3 phones. Read from ../shared/data.

Printed per set: adjusted Rand index (Hubert & Arabie 1985), pair precision and recall
(pairs of media put in one group that share / that should share a camera), groups formed
and true cameras, single media, seconds. Bars (simulated): ARI >= 0.95 and pair precision 1.0.

Run: .venv/bin/python benchmarks/cluster_accuracy.py [--sets simulated,dresden,vision]
[--cameras 30] [--media 20] [--workers 2] [--cache DIR] [--work DIR: keep the cases there; a case
found there is resumed, as `sensorprint cluster` resumes]. The last line is one key=value line.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

from sensorprint.simulate import make_cameras  # noqa: E402
from sensorprint.store import Case  # noqa: E402
from sensorprint.workflow.cluster import cluster, stored_groups  # noqa: E402

SHARED = (Path(__file__).resolve().parents[1].parent / "shared" / "data").resolve()  # as the case records paths
SIZES = ((1024, 768, (640, 360)), (1280, 960, (800, 450)), (1600, 1200, (960, 540)))


def _comb2(n: int) -> int:
    return n * (n - 1) // 2


def scores(truth: dict[str, str], groups: list[list[str]]) -> dict[str, float]:
    """ARI, pair precision and recall of `groups` (lists of paths) against `truth` {path: camera}."""
    label = {p: g for g, members in enumerate(groups) for p in members}
    items = [p for p in truth if p in label]
    table = Counter((truth[p], label[p]) for p in items)
    same_both = sum(_comb2(n) for n in table.values())
    same_truth = sum(_comb2(n) for n in Counter(truth[p] for p in items).values())
    same_found = sum(_comb2(n) for n in Counter(label[p] for p in items).values())
    total = _comb2(len(items))
    expected = same_truth * same_found / total if total else 0.0
    top = (same_truth + same_found) / 2
    ari = (same_both - expected) / (top - expected) if top != expected else 1.0
    return {
        "ari": ari,
        "precision": same_both / same_found if same_found else 1.0,
        "recall": same_both / same_truth if same_truth else 1.0,
        "groups": sum(1 for g in groups if len(g) > 1),
        "singles": sum(1 for g in groups if len(g) == 1),
        "cameras": len(set(truth.values())),
        "media": len(items),
    }


def _make(job: tuple) -> None:
    camera, path, kind, seed, options = job
    path = Path(path)
    if path.exists():
        return
    partial = path.with_name(".partial-" + path.name)
    if kind == "video":
        camera.record_video(partial, seed=seed, **options)
    else:
        camera.save_jpeg(partial, seed=seed, **options)
    partial.replace(path)


STABILISED = dict(stabilise=True)


def _jobs(camera, folder: Path, video_size, n_media: int, name: str, n_stabilised: int) -> list[tuple]:
    """The media of one simulated camera (see the module doc), as jobs for `_make`."""
    jobs = []
    first_video = n_media // 4 + max(1, n_media // 10)
    n_resized, n_portrait, n_video = n_media // 4, max(1, n_media // 10), max(1, n_media // 10)
    for k in range(n_media):
        flat = k % 2 == 0
        options: dict = {"flat": flat}
        if k < n_resized:
            options.update(scale=0.5, quality=85)
        elif k < n_resized + n_portrait:
            options.update(orientation=90 if k % 2 else 270)
        elif k < n_resized + n_portrait + n_video:
            options = dict(seconds=5, size=video_size, bitrate=3_000_000, threads=1)
            stabilised = k - first_video < n_stabilised
            options |= STABILISED if stabilised else {}
            path = folder / f"{name}_{k:02d}{'_stabilised' if stabilised else ''}.mp4"
            jobs.append((camera, path, "video", 1000 + k, options))
            continue
        jobs.append(
            (camera, folder / f"{name}_{k:02d}.jpg", "image", zlib.crc32(name.encode()) % 10**6 * 100 + k, options)
        )
    return jobs


def simulated_set(cache: Path, n_cameras: int, n_media: int, n_stabilised: int, workers: int) -> dict[str, str]:
    """Write (once, cached) the simulated media; returns {path: camera}."""
    jobs, truth = [], {}
    per_size = math.ceil(n_cameras / len(SIZES) / 2)
    cameras = []
    for s, (width, height, video) in enumerate(SIZES):
        for camera in make_cameras(per_size, 2, width=width, height=height, seed=40 + s):
            cameras.append((f"s{s}-{camera.name}-{camera.unit}", camera, video))
    for name, camera, video in cameras[:n_cameras]:
        folder = cache / name
        folder.mkdir(parents=True, exist_ok=True)
        for job in _jobs(camera, folder, video, n_media, name, n_stabilised):
            jobs.append(job)
            truth[str(job[1])] = name
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_make, jobs, chunksize=4))
    return truth


def real_set(name: str) -> dict[str, str]:
    """{path: device} of a shared data set (the device is the file name up to its last "_", or the VISION id)."""
    folder = SHARED / name
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: the shared data are needed for this set")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg"))
    if name == "vision-trio":
        return {str(p): p.name.split("_")[0] for p in files}
    return {str(p): p.stem.rsplit("_", 1)[0] for p in files}


def run(title: str, truth: dict[str, str], folders: list[Path], workers: int, work: Path) -> dict[str, float]:
    """Cluster `folders` in a new case and print the figures against `truth`."""
    folder = work / f"case-{title}"
    case = Case.open(folder) if folder.exists() else Case.create(folder)  # an existing case: the run resumes it
    started = time.perf_counter()
    summary = cluster(case, folders, workers=workers)
    seconds = time.perf_counter() - started
    groups = [g.paths for g in stored_groups(case)]
    case.close()
    found = scores(truth, groups)
    found["seconds"] = seconds
    stabilised = [p for p in truth if "_stabilised" in Path(p).name]
    found["stabilised_joined"] = sum(
        any(p in g and sum(truth.get(q) == truth[p] for q in g) > 1 for g in groups) for p in stabilised
    )
    print(
        f"{title}: ARI {found['ari']:.4f}, pair precision {found['precision']:.4f}, recall {found['recall']:.4f}; "
        f"{found['groups']} groups + {found['singles']} single media for {found['cameras']} cameras "
        f"({found['media']} media) in {seconds:.0f} s; threshold PCE {summary.threshold:.1f}, "
        f"{summary.candidates} candidates of {summary.screened} pairs, {summary.group_tests} group tests, "
        f"{summary.frame_searches} frame-by-frame searches ({summary.frame_searches_left} left out); "
        f"stabilised videos in their camera's group: {found['stabilised_joined']}/{len(stabilised)}; "
        f"stages {', '.join(f'{k} {v:.0f} s' for k, v in summary.seconds.items())}"
    )
    for g in groups:
        cams = Counter(truth.get(p, "?") for p in g)
        if len(cams) > 1:
            print(f"   mixed group: {dict(cams)}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="simulated,dresden,vision")
    parser.add_argument("--cameras", type=int, default=30)
    parser.add_argument("--media", type=int, default=20)
    parser.add_argument("--stabilised", type=int, default=1, help="stabilised videos per camera (of its videos)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sensorprint-cluster-accuracy")
    parser.add_argument("--work", type=Path, default=None, help="keep the cases here (a case found there is resumed)")
    args = parser.parse_args()
    wanted = args.sets.split(",")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "simulated" in wanted:
            media = args.cache / f"sim-{args.cameras}x{args.media}-stabilised{args.stabilised}"
            started = time.perf_counter()
            truth = simulated_set(media, args.cameras, args.media, args.stabilised, args.workers)
            print(f"simulated media ready in {time.perf_counter() - started:.0f} s ({len(truth)} files)")
            results["sim"] = run("simulated", truth, [media], args.workers, work)
        for key, name in (("dresden", "dresden-nikon"), ("vision", "vision-trio")):
            if key in wanted:
                results[key] = run(name, real_set(name), [SHARED / name], args.workers, work)
    line = " ".join(
        f"{key}_{m}={value:.4f}" if isinstance(value, float) else f"{key}_{m}={value}"
        for key, found in results.items()
        for m, value in found.items()
        if m in ("ari", "precision", "recall", "groups") or (m == "stabilised_joined" and key == "sim")
    )
    print(line)


if __name__ == "__main__":
    main()
