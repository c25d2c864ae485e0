"""PRNU accuracy on real cameras: dresden-nikon and vision-trio (../shared/data).

Protocol (issue 2): each device's fingerprint from all its flat images at full
resolution; every natural image matched against every fingerprint with
``match(search="auto")`` (sizes and rotations handled by the search). Prints
top-1 accuracy, wrong decisions at PCE 60, the separation (smallest PCE of a
true pair ÷ largest PCE of a wrong pair), the AUC on 512×512 centre crops, and
for dresden-nikon the identification of centred 50%-area crops (offset exact?).

Run: .venv/bin/python benchmarks/prnu_accuracy.py [--data DIR] [--workers 2] [--sets dresden-nikon vision-trio]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from sensorprint import prnu  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def read_rgb(path: Path) -> np.ndarray:
    """Pixels as stored (no EXIF rotation), float32 0..255."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)


def device_of(path: Path, dataset: str) -> str:
    if dataset.startswith("vision"):
        return path.name.split("_")[0]
    return path.stem.rsplit("_", 1)[0]


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def centre_crop(image: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = image.shape[:2]
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return image[top : top + shape[0], left : left + shape[1]], (top, left)


# ---- worker functions (module level: picklable) -------------------------------------------


def enroll_device(paths: list[Path], crop: int | None = None) -> np.ndarray:
    acc = prnu.FingerprintAccumulator()
    for p in paths:
        img = read_rgb(p)
        if crop:
            img, _ = centre_crop(img, (crop, crop))
        acc.add(img)
    fp = acc.result()
    return fp.k


_FINGERPRINTS: dict[str, prnu.PreparedFingerprint] = {}


def _init_worker(fingerprints: dict[str, np.ndarray]) -> None:
    global _FINGERPRINTS
    _FINGERPRINTS = {name: prnu.PreparedFingerprint(k) for name, k in fingerprints.items()}


def scan_query(path: Path, crop_fraction: float | None = None, crop: int | None = None) -> dict:
    img = read_rgb(path)
    expected_offset = None
    if crop_fraction is not None:
        h, w = img.shape[:2]
        side = np.sqrt(crop_fraction)
        img, expected_offset = centre_crop(img, (int(round(h * side)), int(round(w * side))))
    if crop:
        img, _ = centre_crop(img, (crop, crop))
    t0 = time.perf_counter()
    residual = prnu.extract_residual(img)
    query = prnu.PreparedQuery(residual, prnu.intensity(img))
    t1 = time.perf_counter()
    results = {}
    for name, fp in _FINGERPRINTS.items():
        results[name] = prnu.match(query, None, fp)
    t2 = time.perf_counter()
    return {
        "path": path,
        "results": results,
        "expected_offset": expected_offset,
        "t_residual": t1 - t0,
        "t_match": t2 - t1,
    }


# ---- evaluation --------------------------------------------------------------------------


def auc(true_scores: list[float], wrong_scores: list[float]) -> float:
    """Area under the ROC curve (probability a true pair outscores a wrong one; ties count half)."""
    t = np.asarray(true_scores)[:, None]
    f = np.asarray(wrong_scores)[None, :]
    return float(np.mean((t > f) + 0.5 * (t == f)))


def evaluate(dataset: str, data: Path, workers: int, crops: bool) -> dict:
    root = data / dataset
    flats = list_images(root / "flat")
    naturals = list_images(root / "natural")
    by_device: dict[str, list[Path]] = defaultdict(list)
    for p in flats:
        by_device[device_of(p, dataset)].append(p)
    devices = sorted(by_device)
    out: dict = {"dataset": dataset}

    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        ks = dict(zip(devices, pool.map(enroll_device, [by_device[d] for d in devices])))
    t_enroll = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ks,)) as pool:
        scans = list(pool.map(scan_query, naturals))
    t_scan = time.perf_counter() - t0
    out["time_enroll_s"] = t_enroll
    out["time_scan_s"] = t_scan
    out.update(summarise(dataset, scans))
    print_table(dataset, devices, scans)

    if crops:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ks,)) as pool:
            crop_scans = list(pool.map(scan_query, naturals, [0.5] * len(naturals)))
        out["time_crops_s"] = time.perf_counter() - t0
        c = summarise(dataset, crop_scans)
        out["crops_top1"] = c["top1"]
        exact = 0
        for s in crop_scans:
            truth = device_of(s["path"], dataset)
            r = s["results"][truth]
            exact += tuple(r.transform.offset) == tuple(s["expected_offset"]) and r.transform.rotation == 0
        out["crops_offset_exact"] = f"{exact}/{len(crop_scans)}"
        out["crops_min_true_pce"] = c["min_true_pce"]
        out["crops_max_wrong_pce"] = c["max_wrong_pce_all_pairs"]
        print_table(dataset + " (50% centre crops)", devices, crop_scans)

    # AUC on 512×512 centre crops (fingerprints and queries cropped, aligned PCE).
    with ProcessPoolExecutor(workers) as pool:
        ks512 = dict(zip(devices, pool.map(enroll_device, [by_device[d] for d in devices], [512] * len(devices))))
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(ks512,)) as pool:
        scans512 = list(pool.map(scan_query, naturals, [None] * len(naturals), [512] * len(naturals)))
    s512 = summarise(dataset, scans512)
    out["auc_512"] = s512["auc"]
    out["top1_512"] = s512["top1"]
    return out


def summarise(dataset: str, scans: list[dict]) -> dict:
    """Top-1, wrong decisions and separation.

    separation: smallest true-pair PCE / largest wrong-pair PCE over the pairs of the same
    size (the protocol of the reference figures in ../shared/data/README.md: each natural
    image against each same-size fingerprint). separation_all_pairs also counts the wrong
    pairs of other sizes, whose PCE is the maximum over every crop offset searched
    (about a million positions, which their p_fa accounts for).
    """
    true_pce, wrong_pce, wrong_same_size, correct, wrong_decisions = [], [], [], 0, 0
    for s in scans:
        truth = device_of(s["path"], dataset)
        ranked = sorted(s["results"].items(), key=lambda kv: kv[1].pce, reverse=True)
        correct += ranked[0][0] == truth
        for name, r in s["results"].items():
            (true_pce if name == truth else wrong_pce).append(r.pce)
            if name != truth and r.stage == "aligned":
                wrong_same_size.append(r.pce)
            decided = r.pce >= prnu.DEFAULT_PCE_THRESHOLD
            wrong_decisions += decided != (name == truth)
    min_true, max_wrong = min(true_pce), max(wrong_pce)
    max_same = max(wrong_same_size) if wrong_same_size else 0.0
    return {
        "top1": f"{correct}/{len(scans)}",
        f"wrong_decisions_at_{prnu.DEFAULT_PCE_THRESHOLD:g}": wrong_decisions,
        "min_true_pce": round(min_true, 1),
        "max_wrong_pce_same_size": round(max_same, 1),
        "separation": round(min_true / max_same, 2) if max_same > 0 else float("inf"),
        "max_wrong_pce_all_pairs": round(max_wrong, 1),
        "separation_all_pairs": round(min_true / max_wrong, 2) if max_wrong > 0 else float("inf"),
        "auc": round(auc(true_pce, wrong_pce), 4),
        "residual_s_mean": round(float(np.mean([s["t_residual"] for s in scans])), 3),
        "match_s_mean": round(float(np.mean([s["t_match"] for s in scans])), 3),
    }


def print_table(title: str, devices: list[str], scans: list[dict]) -> None:
    print(f"\n{title}: PCE of each query (rows) against each fingerprint (columns)")
    print(f"{'query':28s}" + "".join(f"{d[-12:]:>13s}" for d in devices) + "   transform of best")
    for s in scans:
        cells = "".join(f"{s['results'][d].pce:13.1f}" for d in devices)
        best = max(s["results"].values(), key=lambda r: r.pce)
        print(f"{s['path'].name[:28]:28s}{cells}   {best.transform.describe()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sets", nargs="+", default=["dresden-nikon", "vision-trio"])
    parser.add_argument("--no-crops", action="store_true")
    args = parser.parse_args(argv)
    figures = []
    for dataset in args.sets:
        res = evaluate(dataset, args.data, args.workers, crops=(dataset == "dresden-nikon" and not args.no_crops))
        print(f"\n== {dataset} ==")
        for key, value in res.items():
            print(f"  {key}: {value}")
        figures += [
            f"{dataset}.{key}={value:.6g}" if isinstance(value, float) else f"{dataset}.{key}={value}"
            for key, value in res.items()
            if key != "dataset"
        ]
    # the figures above, one key=value line for the record
    print(" ".join(["benchmark=prnu_accuracy", *figures]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
