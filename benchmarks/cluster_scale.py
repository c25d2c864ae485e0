"""Speed and memory of `sensorprint cluster` as the collection grows (2 cores).

Media: simulated cameras (`sensorprint.simulate`: each unit's true multiplicative pattern K,
`Camera.prnu()`, its twins' model pattern included), `--per-camera` photos each, made the
quick way so that thousands of full-size files can be written on two cores: a smooth
random scene I (grey, 40..220) times (1 + K), shot and read noise, JPEG quality 90. The
camera simulator's full pipeline (`Camera.save_jpeg`) takes about 5 s for one 8 MP photo,
which would make the media, not the clustering, the cost of this benchmark.

For each N in --sizes (each a new case): the whole run end to end (read and cache the
residuals, screen all pairs, score the candidates, grow groups), its seconds per stage,
the units per second of each stage, the peak resident memory of the main process and of
the workers, and the ARI and pair precision against the cameras.

Run: .venv/bin/python benchmarks/cluster_scale.py --sizes 100,200,400 [--width 3264 --height 2448]
[--per-camera 10] [--workers 2] [--side 512] [--denoiser spatial|wavelet] [--extrapolate 1000,10000];
the bars: `--sizes 1000` (8 MP) and `--sizes 10000 --width 1024 --height 768`. A growth table
of every N measured is printed before the extrapolation. Between the smallest
and the largest N each stage's work (files, pairs screened, pairs scored, group tests) is
fitted as a·N^b and divided by its rate at the largest N to predict the --extrapolate sizes
(printed as extrapolated, never as measured). The last line reads
`images=N seconds=S ari=A precision=P peak_mb=M` (for the largest N).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_accuracy import scores  # noqa: E402
from sensorprint.simulate import make_cameras  # noqa: E402
from sensorprint.store import Case  # noqa: E402
from sensorprint.workflow.cluster import ClusterOptions, cluster, stored_groups  # noqa: E402


def _photo(job: tuple) -> str:
    """One quick simulated photo of a camera (see the module doc); cached on disk."""
    camera, path, seed = job
    path = Path(path)
    if path.exists():
        return str(path)
    rng = np.random.default_rng(seed)
    h, w = camera.model.height, camera.model.width
    coarse = rng.uniform(40, 220, (max(2, h // 64), max(2, w // 64))).astype(np.float32)
    scene = ndimage.zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=1)[:h, :w]
    scene += rng.normal(0, 6, scene.shape).astype(np.float32) * (rng.uniform() < 0.5)  # some texture
    image = scene * (1 + camera.prnu()) + rng.normal(0, 1.5, scene.shape).astype(np.float32) * np.sqrt(scene / 64)
    rgb = np.repeat(np.clip(image, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    partial = path.with_name(".partial-" + path.name)
    Image.fromarray(rgb).save(partial, format="JPEG", quality=90)
    partial.replace(path)
    return str(path)


def media(cache: Path, n: int, width: int, height: int, per_camera: int, workers: int) -> dict[str, str]:
    """{path: camera} of the first n photos (cameras of 2 units per model, in order)."""
    n_cameras = -(-n // per_camera)
    cameras = make_cameras(-(-n_cameras // 2), 2, width=width, height=height, seed=77)[:n_cameras]
    jobs, truth = [], {}
    for c, camera in enumerate(cameras):
        for k in range(per_camera):
            if len(jobs) == n:
                break
            path = cache / f"cam{c:04d}_{k:02d}.jpg"
            jobs.append((camera, str(path), c * 1000 + k))
            truth[str(path)] = f"cam{c:04d}"
    cache.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_photo, jobs, chunksize=4))
    return truth


def _peak_mb() -> tuple[float, float]:
    """Peak resident memory (MB) of this process and of its largest finished child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def cpu_seconds() -> float:
    """User and system CPU seconds of this process and of its finished children (the workers) so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(truth: dict[str, str], folder: Path, workers: int, side: int, work: Path, denoiser: str) -> dict:
    """Cluster the files of `truth` (a folder of links to them) in a new case; figures of the run."""
    links = work / f"media-{len(truth)}"
    links.mkdir()
    for path in truth:
        (links / Path(path).name).symlink_to(path)
    case = Case.create(work / f"case-{len(truth)}")
    started, cpu = time.perf_counter(), cpu_seconds()
    options = ClusterOptions(signature_side=side, denoiser=denoiser)
    summary = cluster(case, [links], options=options, workers=workers)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu  # the workers are joined when cluster returns
    groups = [[str(folder / Path(p).name) for p in g.paths] for g in stored_groups(case)]
    case.close()
    found = scores(truth, groups)
    own, children = _peak_mb()
    s = summary.seconds
    rates = {
        "read files/s": summary.read / max(s.get("read", 0), 1e-9),
        "screened pairs/s": summary.screened / max(s.get("candidates", 0), 1e-9),
        "scored pairs/s": summary.scored / max(s.get("pairs", 0), 1e-9),
        "group tests/s": summary.group_tests / max(s.get("groups", 0), 1e-9),
    }
    print(
        f"N={len(truth)}: {seconds:.0f} s end to end, {cpu:.0f} CPU s ({', '.join(f'{k} {v:.1f} s' for k, v in s.items())}); "
        f"{', '.join(f'{k} {v:.3g}' for k, v in rates.items())}; {summary.candidates} candidates of "
        f"{summary.screened} pairs, {summary.scored} scored ({summary.spared} not needed: already linked or left to group fingerprints), "
        f"{summary.group_tests} group tests; "
        f"ARI {found['ari']:.4f}, precision {found['precision']:.4f}, recall {found['recall']:.4f}; "
        f"peak memory main {own:.0f} MB, worker {children:.0f} MB",
        flush=True,
    )
    units = {
        "read": summary.read,
        "candidates": summary.screened,
        "pairs": summary.scored,
        "groups": summary.group_tests,
    }
    per_second = dict(zip(units, rates.values(), strict=True))
    return {
        "n": len(truth),
        "seconds": seconds,
        "cpu": cpu,
        "stages": dict(s),
        "load": os.getloadavg()[0],
        "peak_mb": max(own, children),
        "units": units,
        "rates": per_second,
        **found,
    }


def reference_seconds(width: int, height: int, repeats: int = 5) -> float:
    """Median seconds of one float32 rfft2 + irfft2 round trip of a width×height frame in this process:
    the unit that makes the stage times comparable between runs on a shared machine."""
    frame = np.random.default_rng(0).normal(size=(height, width)).astype(np.float32)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        np.fft.irfft2(np.fft.rfft2(frame), s=frame.shape)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def extrapolate(first: dict, last: dict, targets: list[int]) -> None:
    """Print how each stage's work grew between two measured sizes, and the seconds it predicts at `targets`.

    Wall seconds on a shared machine follow the load more than N, so the prediction counts
    work instead: each stage's units at N (files read ∝ N, pairs screened = N(N-1)/2, pairs
    scored and group tests as grown from `first` to `last`) at the rate (units per second)
    measured at the largest N. These figures are extrapolated, not measured.
    """
    ratio = last["n"] / first["n"]
    growth = {
        k: float(np.log(max(last["units"][k], 1) / max(first["units"][k], 1)) / np.log(ratio)) for k in last["units"]
    }
    print("work grows per stage as: " + ", ".join(f"{k} N^{b:.2f}" for k, b in growth.items()))
    for n in targets:
        parts = {
            k: last["units"][k] * (n / last["n"]) ** growth[k] / max(last["rates"][k], 1e-9) for k in last["units"]
        }
        print(
            f"extrapolated (not measured) N={n}: {sum(parts.values()):.0f} s at the rates of N={last['n']} "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in parts.items())})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,200,400")
    parser.add_argument("--width", type=int, default=3264)
    parser.add_argument("--height", type=int, default=2448)
    parser.add_argument("--per-camera", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--denoiser", default="wavelet", choices=("spatial", "wavelet"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "sensorprint-cluster-scale")
    parser.add_argument("--extrapolate", default="1000", help="sizes N to extrapolate the time to (comma-separated)")
    args = parser.parse_args()
    sizes = sorted(int(v) for v in args.sizes.split(","))
    folder = args.cache / f"{args.width}x{args.height}-{args.per_camera}"
    started = time.perf_counter()
    truth = media(folder, sizes[-1], args.width, args.height, args.per_camera, args.workers)
    print(f"{len(truth)} media of {args.width}x{args.height} ready in {time.perf_counter() - started:.0f} s")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            unit = reference_seconds(args.width, args.height)
            subset = dict(list(truth.items())[:n])
            results.append(run(subset, folder, args.workers, args.side, Path(tmp), args.denoiser))
            unit = (unit + reference_seconds(args.width, args.height)) / 2
            last = results[-1]
            print(
                f"   reference: one {args.width}x{args.height} FFT round trip {unit * 1000:.0f} ms (before and after); "
                f"end to end {last['seconds'] / unit:.0f} round trips, "
                f"{last['seconds'] / unit / last['n']:.1f} per image; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    print(
        "growth table (measured): N, seconds end to end, CPU seconds, per stage seconds, units per second, peak MB, load"
    )
    for r in results:
        stages = " ".join(f"{k}={v:.1f}" for k, v in r["stages"].items())
        rates = " ".join(f"{k}={v:.3g}/s" for k, v in r["rates"].items())
        print(
            f"   N={r['n']}: {r['seconds']:.1f} s | {r['cpu']:.0f} CPU s | {stages} | {rates} | {r['peak_mb']:.0f} MB | load {r['load']:.1f}"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        exponent = np.log(last["seconds"] / first["seconds"]) / np.log(last["n"] / first["n"])
        print(f"time grows as N^{exponent:.2f} from N={first['n']} to N={last['n']} (measured)")
        extrapolate(first, last, [int(v) for v in args.extrapolate.split(",") if v])
    last = results[-1]
    print(
        f"images={last['n']} seconds={last['seconds']:.1f} ari={last['ari']:.4f} "
        f"precision={last['precision']:.4f} peak_mb={last['peak_mb']:.0f}"
    )


if __name__ == "__main__":
    main()
