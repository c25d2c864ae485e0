"""Measured error rates and likelihood ratios (`sensorprint validate`) on real cameras.

For each corpus: enroll every device from its flats, scan its natural images, then
`validate` (each flat held out against the others; every other device's flats, and the
other corpus's natural images as unrelated media, against each device). Prints per device
the true-match rate of held-out references and the false-alarm rate, then the
likelihood ratios that the case's validation gives the scan's true and wrong pairs.

    .venv/bin/python benchmarks/validate_cases.py [--data ../shared/data] [--workers 2] [--corpus dresden-nikon]
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import tempfile
import time
from pathlib import Path

from sensorprint.store import Case
from sensorprint.workflow import enroll, file_results, scan
from sensorprint.workflow.validate import (
    calibration,
    decision_likelihood_ratio,
    held_out_likelihood_ratios,
    likelihood_system,
    validate,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OTHER = {"dresden-nikon": "vision-trio", "vision-trio": "dresden-nikon"}


def device_of(path: Path | str, corpus: str) -> str:
    name = Path(path).stem
    return name.split("_", 1)[0] if corpus == "vision-trio" else name.rsplit("_", 1)[0]


def corpus_figures(data: Path, corpus: str, workers: int) -> dict:
    root = data / corpus
    flats = collections.defaultdict(list)
    for path in sorted((root / "flat").iterdir()):
        flats[device_of(path, corpus)].append(path)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Case.create(Path(tmp) / "case") as case:
        for device, paths in sorted(flats.items()):
            enroll(case, device, paths, workers=workers)
        scan(case, [root / "natural"], workers=workers)
        validate_started = time.perf_counter()
        found = validate(case, [data / OTHER[corpus] / "natural"], workers=workers)
        validate_s = time.perf_counter() - validate_started
        results = [result for result, _ in file_results(case)]
    true_lr, wrong_lr, natural_ratios = [], [], []
    system = likelihood_system(found)
    for result in results:
        for device, m in result.prnu().items():
            if device == device_of(result.path, corpus) and m.evidence.predicted_pce and m.score > 0:
                natural_ratios.append(math.log10(m.score / m.evidence.predicted_pce))
            lr = decision_likelihood_ratio(system, m.evidence.log10_p_fa)  # None: no comparison could be made
            if lr is not None:
                (true_lr if device == device_of(result.path, corpus) else wrong_lr).append(lr.log10_lr)
    held_same, held_diff = held_out_likelihood_ratios(found)
    return {
        "found": found,
        "true_lr": true_lr,
        "wrong_lr": wrong_lr,
        "held_same": held_same,
        "held_diff": held_diff,
        "validate_s": validate_s,
        "natural_ratios": natural_ratios,
        "calibration": calibration(found),
        "total_s": time.perf_counter() - started,
    }


def show(corpus: str, f: dict) -> dict:
    found = f["found"]
    print(f"== {corpus}: validate run, {len(found.scores)} comparisons in {f['validate_s']:.0f} s")
    for r in found.devices:
        high = r.false_alarm.interval()[1]
        print(
            f"  {r.device}: true matches {r.true_match.k}/{r.true_match.n} ({r.true_inconclusive} inconclusive), "
            f"false alarms {r.false_alarm.k}/{r.false_alarm.n} (95% upper {high:.1%}, {r.false_inconclusive} inconclusive)"
        )
    for line in found.errors:
        print(f"  error: {line}")
    print(
        f"  scan's true pairs log10 LR: min {min(f['true_lr']):.2f} median {statistics.median(f['true_lr']):.2f}; "
        f"wrong pairs: max {max(f['wrong_lr']):.2f} median {statistics.median(f['wrong_lr']):.2f}"
    )
    print(
        f"  validation pairs, each left out: same source min {min(f['held_same']):.2f}, "
        f"different sources max {max(f['held_diff']):.2f}"
    )
    cal, ratios = f["calibration"], f["natural_ratios"]
    print(
        f"  calibration of the predicted true PCE ({cal.source}, n={cal.n}): log10(observed/predicted) median "
        f"{cal.offset:+.2f} sd {cal.spread:.2f}; the scan's true natural pairs: "
        + (
            f"median {statistics.median(ratios):+.2f}, sd {statistics.stdev(ratios):.2f}, min {min(ratios):+.2f}"
            if len(ratios) > 1
            else "too few predicted"
        )
    )
    false_alarms = sum(r.false_alarm.k for r in found.devices)
    n_false = sum(r.false_alarm.n for r in found.devices)
    true_matches = sum(r.true_match.k for r in found.devices)
    n_true = sum(r.true_match.n for r in found.devices)
    key = corpus.split("-")[0]
    return {
        f"{key}_tm": f"{true_matches}/{n_true}",
        f"{key}_fa": f"{false_alarms}/{n_false}",
        f"{key}_true_lr_min": round(min(f["true_lr"]), 2),
        f"{key}_wrong_lr_max": round(max(f["wrong_lr"]), 2),
        f"{key}_validate_s": round(f["validate_s"], 1),
        f"{key}_calibration": f"{cal.offset:+.2f}/{cal.spread:.2f}",
        f"{key}_natural_offset": f"{statistics.median(ratios):+.2f}/{statistics.stdev(ratios):.2f}"
        if len(ratios) > 1
        else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpus", choices=sorted(OTHER), action="append")
    args = parser.parse_args()
    figures = {}
    for corpus in args.corpus or sorted(OTHER):
        figures.update(show(corpus, corpus_figures(args.data, corpus, args.workers)))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
