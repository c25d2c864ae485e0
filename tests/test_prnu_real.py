"""PRNU on real cameras (dresden-nikon, ../shared/data): the figures issue 2 asks for.

Full resolution; each device's fingerprint from its 10 flats; the 16 natural
images matched against all 6 fingerprints with the automatic search; then every
natural image cut to a centred 50% of its area. Two worker processes.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def dresden(shared_data):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import prnu_accuracy as acc

    root = shared_data / "dresden-nikon"
    by_device = defaultdict(list)
    for p in acc.list_images(root / "flat"):
        by_device[acc.device_of(p, "dresden-nikon")].append(p)
    devices = sorted(by_device)
    naturals = acc.list_images(root / "natural")
    with ProcessPoolExecutor(2) as pool:
        ks = dict(zip(devices, pool.map(acc.enroll_device, [by_device[d] for d in devices])))
    with ProcessPoolExecutor(2, initializer=acc._init_worker, initargs=(ks,)) as pool:
        scans = list(pool.map(acc.scan_query, naturals))
        crops = list(pool.map(acc.scan_query, naturals, [0.5] * len(naturals)))
    return acc, devices, scans, crops


def test_dresden_full_resolution_identification(dresden):
    acc, devices, scans, _ = dresden
    assert len(devices) == 6 and len(scans) == 16
    summary = acc.summarise("dresden-nikon", scans)
    print(summary)
    assert summary["top1"] == "16/16"
    assert summary["wrong_decisions_at_60"] == 0, summary
    assert summary["separation"] >= 5.0, summary


def test_dresden_centre_crops_identified_with_exact_offsets(dresden):
    acc, _, _, crops = dresden
    summary = acc.summarise("dresden-nikon", crops)
    assert summary["top1"] == "16/16", summary
    for scan in crops:
        truth = acc.device_of(scan["path"], "dresden-nikon")
        best = max(scan["results"], key=lambda d: scan["results"][d].pce)
        result = scan["results"][truth]
        assert best == truth
        assert result.transform.offset == tuple(scan["expected_offset"]), scan["path"].name
        assert result.transform.rotation == 0 and result.transform.scale == 1.0
