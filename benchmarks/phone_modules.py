"""A phone is several cameras: simulated phones of three modules (wide and ultra-wide of one size, a front one).

Each phone's references (4 flats per module) are enrolled with `--by-module`; every
module then shoots natural scenes. Measured: queries matched to the right module, wrong
matches, and, with one module's references left out, how the queries of that module are
answered (inconclusive, never "no match").

    .venv/bin/python benchmarks/phone_modules.py [--phones 3] [--scenes 6] [--workers 2]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from sensorprint.results import Decision
from sensorprint.simulate import make_phone
from sensorprint.store import Case
from sensorprint.workflow import file_results, scan
from sensorprint.workflow.enroll import enroll_by_module
from sensorprint.workflow.modules import module_device


def shoot(root: Path, phones: int, scenes: int) -> dict[str, str]:
    """Write the references and queries; returns {query file name: its true module device}."""
    truth = {}
    for p in range(phones):
        for camera in make_phone(f"SimPhone{p}", 3, width=768, height=576, seed=10 + p):
            device = module_device(f"SimPhone{p}", camera.model.lens_model)
            for i in range(4):
                camera.save_jpeg(root / f"refs{p}" / f"{camera.model.name}_{i}.jpg", flat=True, seed=i)
            for s in range(scenes):
                path = camera.save_jpeg(root / "evidence" / f"{camera.model.name}_{s}.jpg", seed=100 + s)
                truth[path.name] = device
    return truth


def run(root: Path, phones: int, truth: dict[str, str], workers: int, leave_out: str | None) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    with Case.create(root / f"case-{leave_out or 'all'}") as case:
        for p in range(phones):
            refs = [f for f in (root / f"refs{p}").iterdir() if leave_out is None or leave_out not in f.name]
            enroll_by_module(case, f"SimPhone{p}", refs, workers=workers)
        scan(case, [root / "evidence"], workers=workers)
        results = [r for r, _ in file_results(case)]
    for result in results:
        true = truth[Path(result.path).name]
        left_out = leave_out is not None and leave_out in Path(result.path).name
        for device, m in result.prnu().items():
            if device == true:
                counts["true match" if m.decision == Decision.MATCH else f"true {m.decision}"] += 1
            elif m.decision == Decision.MATCH:
                counts["wrong match"] += 1
            elif left_out and device.startswith(true.split("/")[0] + "/"):
                counts[f"unreferenced module, same phone: {m.decision}"] += 1
        counts["top-1"] += (result.verdict.prnu == true) and not left_out
        counts["queries"] += not left_out
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = shoot(root, args.phones, args.scenes)
        every = run(root, args.phones, truth, args.workers, None)
        without_front = run(root, args.phones, truth, args.workers, "-front_")
    print("all modules enrolled:", dict(every))
    print("front modules not enrolled:", dict(without_front))
    unref = {k: v for k, v in without_front.items() if k.startswith("unreferenced")}
    no_match = unref.get("unreferenced module, same phone: no match", 0)
    print(
        f"queries={every['queries']} top1={every['top-1']} wrong_matches={every['wrong match']} "
        f"unreferenced_no_match={no_match} unreferenced_inconclusive="
        f"{unref.get('unreferenced module, same phone: inconclusive', 0)} seconds={time.perf_counter() - started:.0f}"
    )


if __name__ == "__main__":
    main()
