"""Scanning against many fingerprints: the case's index shortlists, the full PCE decides.

Above `MIN_FINGERPRINTS` fingerprints (or when asked), a scan brings the case's index up to
date (`store.index`, one binarised whitened fingerprint per row: `prnu.digest`), and each
worker scores its query against every row before any full comparison. Only shortlisted
devices are compared with `prnu.compare`, exactly as the exhaustive scan compares them, so a
shortlisted device gets the very same `Match`; a device screened out gets no row (the
exhaustive scan would have stored "no match" for it) and the medium's details record the
screening (the index, how many were screened, the best scores). Pairs the index cannot screen
(a query smaller than the fingerprint: crops, scaled frames, swapped roles) are always
compared in full; a query larger than an image-estimated fingerprint is not compared at all
(`prnu.compare` answers "no match" for it without any search: `digest.cannot_match`).

Each worker process loads the index once (memory-mapped from the case's arrays folder, cached
by file name: an index file never changes once named), so it reaches a worker once, not with
every task; the scan sends the list of fingerprints to each Dask worker once too
(`parallel.share`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorprint.prnu import digest
from sensorprint.store import Case, FingerprintRecord
from sensorprint.store import index as store_index
from sensorprint.workflow.signals import FingerprintRef, QuerySignal, choose_fingerprint

# Below this many fingerprints a scan compares every one (the index would save little).
MIN_FINGERPRINTS = 200
INDEX_PARAMETERS = {"form": "whitened sign bits", "whitening": 3, "format": store_index.FORMAT}


@dataclass(frozen=True)
class ScreenRef:
    """What a worker needs to screen: where the index is, and the shortlist rule's parameters."""

    arrays_dir: str
    manifest: str
    margin: float = digest.DEFAULT_RECALL_MARGIN
    always_kept: int = digest.DEFAULT_ALWAYS_KEPT


def use_index(case: Case, exhaustive: bool | None) -> bool:
    """Whether a scan screens with the index: never with exhaustive=True, always with False, else above the size."""
    if exhaustive is not None:
        return not exhaustive
    return case.counts()["fingerprints"] > MIN_FINGERPRINTS


def _row_of(record: FingerprintRecord) -> tuple[np.ndarray, float]:
    return digest.fingerprint_code(np.asarray(record.load(), dtype=np.float32))


def ensure_index(case: Case, *, run_id: int | None = None, progress: Callable | None = None) -> ScreenRef | None:
    """The case's index brought up to date with its fingerprints (rows computed for new ones only)."""
    manifest = store_index.update_index(case, _row_of, parameters=INDEX_PARAMETERS, run_id=run_id, progress=progress)
    return None if manifest is None else ScreenRef(str(case.arrays_dir), manifest.name)


def screened_devices(details: dict | None, screen: ScreenRef | None) -> set[str]:
    """Devices a stored medium was already screened against with this very index (none when it changed)."""
    record = (details or {}).get("screening")
    if screen is None or not record or record.get("index") != screen.manifest:
        return set()
    return set(_loaded(screen).devices)  # every device of the index: shortlisted or screened out


@dataclass
class LoadedIndex:
    """An index as a worker holds it: its manifest, memory-mapped rows, and the fingerprints as refs."""

    manifest: store_index.Manifest
    bits: dict[tuple[int, int], np.ndarray]
    rows: dict[int, tuple[tuple[int, int], int]]  # fingerprint id -> (group shape, row)
    efficiency: dict[tuple[int, int], np.ndarray]  # per group: each row's sign efficiency
    devices: set[str]


_cache: dict[str, LoadedIndex] = {}
LOADS: Counter[str] = Counter()  # loads of each index manifest by this process (once, however many tasks)


def _loaded(screen: ScreenRef) -> LoadedIndex:
    """The index of `screen`, loaded once per process (memory-mapped)."""
    key = str(Path(screen.arrays_dir) / screen.manifest)
    if key not in _cache:
        arrays = Path(screen.arrays_dir)
        manifest = store_index.read_manifest(arrays / screen.manifest)
        bits, rows, efficiency = {}, {}, {}
        for group in manifest.groups:
            bits[group.shape] = store_index.load_bits(arrays, group)
            efficiency[group.shape] = np.array([e.efficiency for e in group.entries])
            for i, e in enumerate(group.entries):
                rows[e.fingerprint_id] = (group.shape, i)
        devices = {e.device for e in manifest.entries}
        _cache.clear()  # one index per process: a newer one replaces it
        _cache[key] = LoadedIndex(manifest, bits, rows, efficiency, devices)
        LOADS[key] += 1
    return _cache[key]


def group_margins(
    signal: QuerySignal,
    bits: np.ndarray,
    group_shape: tuple[int, int],
    efficiency: np.ndarray,
    threshold: float,
    margin: float,
    orientations: str = "sensor",
) -> tuple[np.ndarray, np.ndarray]:
    """(score, score − cut) of every row of one fingerprint size, the best over the aligned orientations.

    Each orientation the aligned search tries is scored with its own cut
    (`prnu.digest.shortlist_cuts`); a row is shortlisted when any orientation reaches its cut.
    """
    query = signal.prepared()
    best_score, best_margin = np.full(bits.shape[0], -np.inf), np.full(bits.shape[0], -np.inf)
    for rotation, flip in digest.aligned_orientations(query.shape, group_shape, orientations):
        code = digest.code_prepared_query(query, rotation, flip, group_shape)
        values = digest.scores(bits, code)
        cuts = digest.shortlist_cuts(code.efficiency * efficiency, threshold, margin)
        best_score = np.maximum(best_score, values)
        best_margin = np.maximum(best_margin, values - cuts)
    return best_score, best_margin


def shortlisted_devices(
    signal: QuerySignal,
    devices: dict[str, list[FingerprintRef]],
    screen: ScreenRef,
    threshold: float,
    orientations: str = "sensor",
) -> tuple[dict[str, list[FingerprintRef]], dict]:
    """The devices to compare in full (the shortlist, and every pair the index cannot screen), and the record.

    devices: the wanted devices. Each is screened with the fingerprint a full comparison would
    use (`choose_fingerprint`); a fingerprint the index does not hold is compared in full.
    """
    loaded = _loaded(screen)
    shape = signal.residual.shape
    keep: dict[str, list[FingerprintRef]] = {}
    candidates: dict[tuple[int, int], list[tuple[str, int]]] = {}
    excluded = 0
    for name, refs in devices.items():
        ref = choose_fingerprint(refs, shape)
        place = loaded.rows.get(ref.fingerprint_id)
        if digest.cannot_match(shape, ref.shape, ref.source != "image"):
            excluded += 1  # larger than this sensor's fingerprint: `compare` says "no match" unsearched
        elif place is None or not digest.screenable(shape, ref.shape):
            keep[name] = refs  # not in the index, or not an aligned comparison: compared in full
        else:
            candidates.setdefault(place[0], []).append((name, place[1]))
    best: list[tuple[float, str]] = []
    for group_shape, members in candidates.items():
        rows = [row for _, row in members]
        values, margins = group_margins(
            signal, loaded.bits[group_shape], group_shape, loaded.efficiency[group_shape], threshold, screen.margin,
            orientations,
        )  # fmt: skip
        values, margins = values[rows], margins[rows]
        for i in digest.shortlist(margins, 0.0, screen.always_kept):
            keep[members[i][0]] = devices[members[i][0]]
        best += [(float(values[i]), members[i][0]) for i in np.argsort(-values)[:5]]
    record = {
        "index": screen.manifest,
        "screened": sum(len(m) for m in candidates.values()),
        "compared": len(keep),
        "larger_than_sensor": excluded,
        "margin": screen.margin,
        "best": [[name, round(score, 3)] for score, name in sorted(best, reverse=True)[:5]],
    }
    return keep, record
