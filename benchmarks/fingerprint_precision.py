"""Fingerprints kept at float16: do PCEs or decisions move? Simulated cameras and dresden-nikon.

For each data set the reference media are enrolled into a case (K stored float32, as enrollment
does), the case is imported into a library at float16 (`sensorprint import`, the default), and
every query is compared with every device through both (the scan's own `match_device`, the
query's noise computed once). Printed: the largest PCE change (absolute; relative over pairs
whose PCE is at least 10, as a relative change of a PCE near 0 says nothing), the decisions
that differ (must be 0), how close any PCE came to the threshold (a float16 change can only
flip a pair whose PCE lies within that change of it), and the bytes of the fingerprints in
both forms. float16 keeps 11 significant bits: K' = K + e with |e| ≤ 2^-11·|K|.

    .venv/bin/python benchmarks/fingerprint_precision.py [--data ../shared/data] [--workers 2] [--skip-dresden]

Last line: sets=N pairs=P max_rel_change=R max_abs_change=A decisions_changed=D closest_to_threshold=C bytes_ratio=B
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll
from sensorprint.workflow.library import import_cases
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.scan import enrolled_fingerprints
from sensorprint.workflow.signals import match_device, query_signal

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class SetFigures:
    name: str
    pairs: int
    max_abs: float
    max_rel: float
    changed: int
    closest: float  # smallest |PCE − τ| over all pairs (float32 figures)
    bytes_full: int
    bytes_half: int
    matches: int


def simulated_set(folder: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """Six simulated cameras (3 models × 2 units, 1024×768): 8 flat references and 4 scenes each."""
    refs, queries = {}, []
    for camera in make_cameras(n_models=3, units_per_model=2, width=1024, height=768, seed=5):
        refs[camera.name] = []
        for i in range(8):
            path = folder / "refs" / camera.name / f"flat{i}.jpg"
            camera.save_jpeg(path, flat=True, seed=i)
            refs[camera.name].append(path)
        for i in range(4):
            path = folder / "queries" / f"{camera.name}-{i}.jpg"
            camera.save_jpeg(path, seed=50 + i)
            queries.append(path)
    return refs, queries


def dresden_set(root: Path) -> tuple[dict[str, list[Path]], list[Path]]:
    """dresden-nikon: 10 flats per camera as references, the 16 natural images as queries."""
    refs = collections.defaultdict(list)
    for path in sorted((root / "flat").iterdir()):
        refs[path.stem.rsplit("_", 1)[0]].append(path)
    return dict(refs), sorted((root / "natural").iterdir())


def measure(name: str, refs: dict[str, list[Path]], queries: list[Path], folder: Path, workers: int) -> SetFigures:
    """Enroll (float32), import at float16, compare every query with every device through both."""
    with Case.create(folder / "full") as full:
        for device, paths in sorted(refs.items()):
            enroll(full, device, paths, workers=workers)
    with Case.create(folder / "half") as half:
        summary = import_cases(half, [folder / "full"])
    with Case.open(folder / "full", read_only=True) as full, Case.open(folder / "half", read_only=True) as half:
        devices_full, devices_half = enrolled_fingerprints(full), enrolled_fingerprints(half)
    threshold = DEFAULT_PCE_THRESHOLD
    pairs = changed = matches = 0
    max_abs = max_rel = 0.0
    closest = float("inf")
    for path in queries:
        _, signal = query_signal(path, SignalOptions())
        for device in sorted(devices_full):
            a = match_device(signal, devices_full[device], None, threshold)
            b = match_device(signal, devices_half[device], None, threshold)
            pairs += 1
            matches += str(a.decision) == "match"
            changed += a.decision != b.decision
            max_abs = max(max_abs, abs(a.score - b.score))
            if abs(a.score) >= 10:
                max_rel = max(max_rel, abs(a.score - b.score) / abs(a.score))
            closest = min(closest, abs(a.score - threshold))
    return SetFigures(
        name, pairs, max_abs, max_rel, changed, closest, summary.source_bytes, summary.stored_bytes, matches
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dresden", action="store_true")
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory(prefix="fingerprint-precision-") as tmp:
        folder = Path(tmp)
        refs, queries = simulated_set(folder / "simulated-media")
        figures.append(measure("simulated", refs, queries, folder / "simulated", args.workers))
        dresden = args.data / "dresden-nikon"
        if not args.skip_dresden:
            if not dresden.is_dir():
                raise SystemExit(f"{dresden} is missing (or pass --skip-dresden)")
            refs, queries = dresden_set(dresden)
            figures.append(measure("dresden-nikon", refs, queries, folder / "dresden", args.workers))
    for f in figures:
        print(
            f"{f.name}: {f.pairs} query x device pairs ({f.matches} matches), PCE change max {f.max_abs:.4f} "
            f"(relative, PCE >= 10: {f.max_rel:.2e}), decisions changed {f.changed}, closest PCE to the threshold "
            f"{f.closest:.2f} away; fingerprints {f.bytes_full / 1e6:.1f} MB float32 -> {f.bytes_half / 1e6:.1f} MB"
        )
    print(
        f"sets={len(figures)} pairs={sum(f.pairs for f in figures)} max_rel_change={max(f.max_rel for f in figures):.2e} "
        f"max_abs_change={max(f.max_abs for f in figures):.4f} decisions_changed={sum(f.changed for f in figures)} "
        f"closest_to_threshold={min(f.closest for f in figures):.2f} "
        f"bytes_ratio={sum(f.bytes_half for f in figures) / sum(f.bytes_full for f in figures):.3f}"
    )


if __name__ == "__main__":
    main()
