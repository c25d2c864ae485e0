"""Fingerprints that are sensor, not scene: cameras enrolled from a few strongly structured photos.

Cameras (two models × two units) shoot the same façades and fences (one scene, every
camera). Each camera is enrolled from 1 to 4 of those photos (one of its references
cropped, as an edited copy would be); every camera then shoots other structured scenes,
some cropped (crop search), and they are scanned against every camera. Wrong pairs share
the scene exactly, the worst case for a fingerprint that is mostly scene.

    .venv/bin/python benchmarks/structured_scenes.py [--scenes 6] [--size 640x480] [--workers 2] [--scene-alpha A]

--scene-alpha: attenuate the strong components of every residual (Li, TIFS 2010;
`SignalOptions.scene_alpha`), references and queries alike.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sensorprint.simulate import make_cameras, scene
from sensorprint.simulate.scenes import STRUCTURED_KINDS
from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan
from sensorprint.workflow.enroll import REFERENCE_OPTIONS
from sensorprint.workflow.options import ScanOptions, SignalOptions


def shoot(root: Path, width: int, height: int, scenes: int) -> list:
    cameras = make_cameras(n_models=2, units_per_model=2, seed=31, width=width, height=height)
    for s in range(4 + scenes):
        radiance = scene(STRUCTURED_KINDS[s % 2], width, height, rng=1000 + s)
        for c, camera in enumerate(cameras):
            folder = root / ("refs" if s < 4 else "evidence") / camera.name
            crop = (16, 16, width - 32, height - 48) if (s + c) % 3 == 0 else None  # some cropped copies
            camera.save_jpeg(folder / f"{STRUCTURED_KINDS[s % 2]}{s}.jpg", scene=radiance, seed=s, crop=crop)
    return cameras


def measure(root: Path, cameras: list, workers: int, scene_alpha: float | None = None) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    references = replace(REFERENCE_OPTIONS, scene_alpha=scene_alpha)
    queries = ScanOptions(signal=replace(SignalOptions(), scene_alpha=scene_alpha))
    with Case.create(root / "case") as case:
        for c, camera in enumerate(cameras):
            refs = sorted((root / "refs" / camera.name).iterdir())[: 1 + c % 4]  # 1, 2, 3, 4 references
            enroll(case, camera.name, refs, workers=workers, options=references)
        scan(case, [root / "evidence"], workers=workers, options=queries)
        results = [r for r, _ in file_results(case)]
    for result in results:
        truth = Path(result.path).parent.name
        for device, m in result.prnu().items():
            counts[f"{'true' if device == truth else 'wrong'} {m.decision}"] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scene-alpha", type=float, default=None)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counts = measure(root, shoot(root, width, height, args.scenes), args.workers, args.scene_alpha)
    print(dict(sorted(counts.items())))
    print(
        f"wrong_match={counts['wrong match']} wrong_inconclusive={counts['wrong inconclusive']} "
        f"true_match={counts['true match']} true_inconclusive={counts['true inconclusive']} "
        f"true_no_match={counts['true no match']} scene_alpha={args.scene_alpha} seconds={time.perf_counter() - started:.0f}"
    )


if __name__ == "__main__":
    main()
