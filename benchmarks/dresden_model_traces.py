"""Benchmark: is there a D70 / D70s camera-model trace in dresden-nikon's pixels at all?

The patch network trained on the flats tells D200 from D70/D70s on the natural images, but not
D70 from D70s (learn_dresden.py). This script measures, without a network, the two places a
model trace could hide, to tell "the network failed" from "the data carry no such trace":

1. Noise the units of one model share (Chen et al., IEEE TIFS 2008, "non-unique artefacts"):
   per unit the mean wavelet noise residual of its 10 flats, before the zero-mean and Wiener
   steps that PRNU matching uses to remove exactly these artefacts; its 8×8-periodic part (JPEG
   blocks, CFA) and its row and column profiles (read-out), correlated between the four
   D70/D70s units. A model trace would make same-model pairs correlate more than D70-D70s pairs.
2. Colour processing: per image the correlations between the colour channels of the KB
   high-pass residual (Fridrich & Kodovský 2012) on its homogeneous patches, the input the
   network sees. A nearest-class-mean rule fitted on the flats is then applied to the scenes.

    .venv/bin/python benchmarks/dresden_model_traces.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from PIL import Image

from sensorprint.learn import PatchParameters
from sensorprint.learn.patches import highpass_residual, select_patch_positions
from sensorprint.prnu import to_gray, wavelet_noise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dresden-nikon"
UNITS = ["Nikon_D70_0", "Nikon_D70_1", "Nikon_D70s_0", "Nikon_D70s_1"]


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def periodic_part(residual: np.ndarray, period: int = 8) -> np.ndarray:
    """Mean of the residual over all period×period blocks (what repeats every ``period`` px)."""
    h, w = (s // period * period for s in residual.shape)
    return residual[:h, :w].reshape(h // period, period, w // period, period).mean(axis=(0, 2))


def shared_noise() -> dict[str, float]:
    """Print the correlations of the units' mean residuals; return their means over same-model and cross pairs."""
    mean_residual = {}
    for unit in UNITS:
        flats = sorted((DATA / "flat").glob(f"{unit}_*.JPG"))
        mean_residual[unit] = np.mean([wavelet_noise(to_gray(read_rgb(p))) for p in flats], axis=0)
        print(f"  {unit}: mean residual of {len(flats)} flats", flush=True)
    print("\n1. shared noise, correlation between units (same model / D70 vs D70s):")
    print(f"   {'pair':28} {'8x8 periodic':>12} {'columns':>8} {'rows':>8} {'whole':>8}")
    by_kind: dict[str, list[tuple[float, float, float, float]]] = {"same_model": [], "cross_model": []}
    for a, b in itertools.combinations(UNITS, 2):
        ra, rb = mean_residual[a], mean_residual[b]
        same = a.rsplit("_", 1)[0] == b.rsplit("_", 1)[0]
        kind = "same model" if same else "D70 vs D70s"
        row = (
            ncc(periodic_part(ra), periodic_part(rb)),
            ncc(ra.mean(0), rb.mean(0)),
            ncc(ra.mean(1), rb.mean(1)),
            ncc(ra, rb),
        )
        by_kind["same_model" if same else "cross_model"].append(row)
        print(f"   {a[6:]:>8} {b[6:]:>8} {kind:11} {row[0]:12.4f} {row[1]:8.4f} {row[2]:8.4f} {row[3]:8.4f}")
    return {
        f"ncc_{part}_{kind}": float(np.mean([row[i] for row in rows]))
        for kind, rows in by_kind.items()
        for i, part in enumerate(("periodic", "columns", "rows", "whole"))
    }


def colour_statistics(pixels: np.ndarray, params: PatchParameters, max_patches: int = 40) -> np.ndarray:
    """Mean inter-channel correlations (R-G, G-B, R-B) of the high-pass residual on homogeneous patches."""
    rows = []
    for row, col in select_patch_positions(pixels, params)[:max_patches]:
        patch = pixels[row : row + params.size, col : col + params.size].transpose(2, 0, 1) / 255.0
        c = np.corrcoef(highpass_residual(patch.astype(np.float32))[:, 1:-1, 1:-1].reshape(3, -1))
        rows.append([c[0, 1], c[1, 2], c[0, 2]])
    return np.mean(rows, axis=0) if rows else np.full(3, np.nan)


def colour_traces() -> dict[str, int]:
    """Print the colour statistics per model; return the nearest-class-mean hits per folder."""
    params = PatchParameters()
    features: dict[str, dict[str, list[np.ndarray]]] = {"flat": {}, "natural": {}}
    for folder in features:
        for path in sorted((DATA / folder).glob("Nikon_D70*.JPG")):
            model = path.stem.rsplit("_", 2)[0]
            features[folder].setdefault(model, []).append(colour_statistics(read_rgb(path), params))
    print("\n2. inter-channel correlation of the high-pass residual (R-G, G-B, R-B), mean ± sd over images:")
    for folder, by_model in features.items():
        for model, rows in by_model.items():
            rows = np.array(rows)
            shown = "  ".join(f"{m:.3f}±{s:.3f}" for m, s in zip(rows.mean(0), rows.std(0)))
            print(f"   {folder:8} {model:11} ({len(rows):2} images) {shown}")
    means = {m: np.mean(rows, axis=0) for m, rows in features["flat"].items()}

    def nearest(x: np.ndarray) -> str:
        return min(means, key=lambda m: float(np.sum((x - means[m]) ** 2)))

    figures = {}
    for folder, by_model in features.items():
        hits = [nearest(x) == model for model, rows in by_model.items() for x in rows]
        print(f"   nearest flat-class mean, D70 vs D70s, on the {folder}s: {sum(hits)}/{len(hits)} correct")
        figures[f"nearest_mean_{folder}_correct"] = sum(hits)
        figures[f"nearest_mean_{folder}_files"] = len(hits)
    return figures


def main() -> None:
    if not DATA.is_dir():
        raise SystemExit(f"no data at {DATA}")
    figures = shared_noise() | colour_traces()
    # the figures above, one key=value line for the record
    print(
        "benchmark=dresden_model_traces "
        + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    )


if __name__ == "__main__":
    main()
