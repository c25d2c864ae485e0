"""A case of many enrolled cameras stays fast to open, list, set up a scan and report.

Creates a case of N devices, each with a small fingerprint (64×64: the store's work, not
the arrays', is measured), then times opening it, listing devices and fingerprints, the
scan's list of fingerprints for its workers, and the report's data.

    .venv/bin/python benchmarks/large_case.py [--devices 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sensorprint.report import report_data
from sensorprint.store import Case
from sensorprint.workflow.scan import enrolled_fingerprints


def build(root: Path, n: int) -> float:
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    with Case.create(root) as case:
        for i in range(n):
            device = case.add_device(f"cam{i:05d}")
            k = rng.standard_normal((64, 64), dtype=np.float32)
            case.save_fingerprint(
                device.id, k, n_media=10, quality=0.2, media_hashes=["0" * 64], source="image", parameters={}
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "case"
        build_s = build(root, args.devices)
        steps = {
            "open": lambda case: None,
            "list": lambda case: case.list_devices(),
            "fingerprints": lambda case: case.fingerprints(),
            "scan_setup": enrolled_fingerprints,
            "report": lambda case: report_data(case),
        }
        seconds = {}
        for name, step in steps.items():
            started = time.perf_counter()
            with Case.open(root) as case:
                step(case)
            seconds[name] = time.perf_counter() - started
    print(f"devices={args.devices} build_s={build_s:.1f} " + " ".join(f"{k}_s={v:.2f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
