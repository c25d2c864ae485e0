"""Residual extraction speed, as a ratio to an FFT round trip measured in the same run, one core.

Prints, for real images of dresden-nikon (or a synthetic image when the data is
missing): seconds per megapixel of `extract_residual`, of one float32
rfft2+irfft2 round trip of the same image (scipy.fft, workers=1), their ratio
(bar: <= 4.6; the public reference implementation: about 46), and the
correlation of the fast residual with the plain implementation of the same steps
(benchmarks/prnu_plain.py, per-channel denoising; bar: >= 0.99).
With --pipeline it also times the whole dresden identification with 2 processes
(enroll 60 flats, scan 16 naturals against the 6 fingerprints; bar: < 30 s).

Run: .venv/bin/python benchmarks/prnu_speed.py [--pipeline]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prnu_plain import plain_residual  # noqa: E402
from sensorprint import prnu  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def round_trip(gray: np.ndarray) -> None:
    scipy.fft.irfft2(scipy.fft.rfft2(gray, workers=1), s=gray.shape, workers=1)


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def measure(image: np.ndarray, repeats: int = 5) -> dict:
    """Interleaved timings (min over repeats: the least disturbed run on a shared machine)."""
    gray = prnu.to_gray(image)
    mp = gray.size / 1e6
    fft_times, residual_times = [], []
    with scipy.fft.set_workers(1):
        for _ in range(repeats):
            fft_times.append(timed(round_trip, gray))
            residual_times.append(timed(prnu.extract_residual, image))
    fft = min(fft_times) / mp
    res = min(residual_times) / mp
    pairs = [r / f for r, f in zip(residual_times, fft_times)]
    return {
        "megapixels": round(mp, 2),
        "residual_s_per_mp": res,
        "fft_s_per_mp": fft,
        "ratio": res / fft,
        "paired": float(np.median(pairs)),
        "paired_low": float(min(pairs)),
        "paired_high": float(max(pairs)),
        "residual_median_s_per_mp": float(np.median(residual_times)) / mp,
    }


def load_images() -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    names = ["natural/Nikon_D70_0_19445.JPG", "natural/Nikon_D200_1_17226.JPG"]
    out = []
    for name in names:
        path = DATA / "dresden-nikon" / name
        if path.exists():
            with Image.open(path) as im:
                out.append((path.name, np.asarray(im.convert("RGB"), dtype=np.float32)))
    if not out:
        rng = np.random.default_rng(0)
        out.append(("synthetic 2000x3008", rng.uniform(0, 255, (2000, 3008, 3)).astype(np.float32)))
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def pipeline_time(workers: int = 2) -> dict:
    """The whole dresden identification: enroll 60 flats, scan 16 naturals (reading included)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import prnu_accuracy as acc

    t0 = time.perf_counter()
    root = DATA / "dresden-nikon"
    from collections import defaultdict
    from concurrent.futures import ProcessPoolExecutor

    by_device = defaultdict(list)
    for p in acc.list_images(root / "flat"):
        by_device[acc.device_of(p, "dresden-nikon")].append(p)
    devices = sorted(by_device)
    with ProcessPoolExecutor(workers) as pool:
        ks = dict(zip(devices, pool.map(acc.enroll_device, [by_device[d] for d in devices])))
    t1 = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=acc._init_worker, initargs=(ks,)) as pool:
        scans = list(pool.map(acc.scan_query, acc.list_images(root / "natural")))
    t2 = time.perf_counter()
    return {
        "enroll_s": round(t1 - t0, 1),
        "scan_s": round(t2 - t1, 1),
        "total_s": round(t2 - t0, 1),
        "top1": acc.summarise("dresden-nikon", scans)["top1"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", action="store_true", help="also time the whole dresden identification")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    ratios, paired, correlations, per_channels, s_per_mp = [], [], [], [], []
    for name, image in load_images():
        m = measure(image, args.repeats)
        fast = prnu.extract_residual(image)
        plain = plain_residual(image)
        luminance_plain = correlation(fast, plain)
        per_channel = correlation(prnu.extract_residual(image, per_channel=True), plain)
        print(
            f"{name}: {m['megapixels']} MP  residual {m['residual_s_per_mp']:.4f} s/MP (median "
            f"{m['residual_median_s_per_mp']:.4f})  FFT round trip {m['fft_s_per_mp']:.4f} s/MP  "
            f"ratio {m['ratio']:.2f} of minima, {m['paired']:.2f} median of adjacent pairs "
            f"[{m['paired_low']:.2f}..{m['paired_high']:.2f}] (bar <= 4.6)  "
            f"corr to plain {luminance_plain:.4f} (bar >= 0.99; per_channel=True: {per_channel:.4f})  "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        ratios.append(m["ratio"])
        s_per_mp.append(m["residual_s_per_mp"])
        paired.append(m["paired"])
        correlations.append(luminance_plain)
        per_channels.append(per_channel)
    pipeline = {}
    if args.pipeline:
        pipeline = pipeline_time()
        print("dresden identification, 2 processes:", pipeline)
    # the figures above (the worst image for each bar), one key=value line for the record
    print(
        f"benchmark=prnu_speed images={len(ratios)} residual_s_per_mp_max={max(s_per_mp):.4f} "
        f"ratio_max={max(ratios):.2f} paired_max={max(paired):.2f} "
        f"corr_plain_min={min(correlations):.4f} corr_plain_per_channel_min={min(per_channels):.4f}"
        + "".join(f" pipeline_{key}={value}" for key, value in pipeline.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
