"""The fingerprint index a case keeps: one compact row per fingerprint, memory-mapped, in `arrays/`.

Layout (all in the case's `arrays/` folder, every name unique, a file never changes once named):

    index-current.json        {"manifest": "index-<token>.json"}: which index is current
    index-<token>.json        the manifest: per fingerprint size, its bits file and one entry per
                              row (fingerprint id, its array's SHA-256, device, array file, source)
    index-<token>-<H>x<W>.npy one row of uint64 words per fingerprint of that size (memory-mapped)

The rows themselves are computed by the caller (`prnu.digest.fingerprint_bits`; the store
computes no signals). An update reuses the rows of fingerprints whose array did not change and
asks for the others. Writes go as for fingerprints (`Case.save_fingerprint`): every new file is
written under a temporary name and fsynced outside any transaction, then renamed under the
case's write lock, the pointer last, so a kill at any instant leaves the previous index current
(and at most unnamed files, removed by the next update).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorprint.store.case import Case, _fsync_dir
from sensorprint.store.records import FingerprintRecord

POINTER = "index-current.json"
PREFIX = "index-"
FORMAT = 1
TEMPORARY_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class IndexEntry:
    """One row of the index: which fingerprint it was computed from."""

    fingerprint_id: int
    array_sha256: str
    device: str
    array_file: str
    shape: tuple[int, int]
    source: str
    efficiency: float  # what the caller computed with the row (`prnu.digest.sign_efficiency`)


@dataclass(frozen=True)
class IndexGroup:
    """The rows of one fingerprint size: `bits` (rows × words, memory-mapped) and one entry per row."""

    shape: tuple[int, int]
    bits_file: str
    entries: tuple[IndexEntry, ...]
    words: int


@dataclass(frozen=True)
class Manifest:
    """What an index holds; `name` (its file name) identifies its content for ever."""

    name: str
    groups: tuple[IndexGroup, ...]
    parameters: dict

    @property
    def entries(self) -> list[IndexEntry]:
        return [entry for group in self.groups for entry in group.entries]

    def key(self) -> set[tuple[int, str, str]]:
        """(fingerprint id, array SHA-256, device) of every row: equal keys, equal index (a renamed device too)."""
        return {(e.fingerprint_id, e.array_sha256, e.device) for e in self.entries}


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _manifest_from(name: str, values: dict) -> Manifest:
    groups = []
    for g in values["groups"]:
        entries = tuple(
            IndexEntry(
                e["fingerprint_id"],
                e["array_sha256"],
                e["device"],
                e["array_file"],
                tuple(e["shape"]),
                e["source"],
                float(e["efficiency"]),
            )  # fmt: skip
            for e in g["entries"]
        )
        groups.append(IndexGroup(tuple(g["shape"]), g["bits_file"], entries, int(g["words"])))
    return Manifest(name, tuple(groups), dict(values.get("parameters", {})))


def read_manifest(path: Path) -> Manifest:
    """The manifest at `path` (an `index-<token>.json` file)."""
    return _manifest_from(path.name, json.loads(path.read_text(encoding="utf-8")))


def current_manifest(arrays_dir: Path) -> Manifest | None:
    """The current index of a case's arrays folder, or None when it has none (or its files are gone)."""
    try:
        name = json.loads((arrays_dir / POINTER).read_text(encoding="utf-8"))["manifest"]
        return read_manifest(arrays_dir / name)
    except (OSError, ValueError, KeyError):
        return None


def load_bits(arrays_dir: Path, group: IndexGroup) -> np.ndarray:
    """The rows of one group, memory-mapped read-only (rows × words uint64)."""
    bits = np.load(arrays_dir / group.bits_file, mmap_mode="r", allow_pickle=False)
    if bits.dtype != np.uint64 or bits.shape != (len(group.entries), group.words):
        raise ValueError(f"index file {group.bits_file} does not match its manifest")
    return bits


def _entry(record: FingerprintRecord, efficiency: float) -> IndexEntry:
    shape = tuple(record.shape[:2])
    return IndexEntry(
        record.id, record.array_sha256, record.device_name, record.path.name, shape, record.source, efficiency
    )


Row = tuple[np.ndarray, float]  # one fingerprint's bits and the value kept with them


def _stage_group(
    case: Case,
    token: str,
    shape: tuple[int, int],
    rows: Sequence[tuple[FingerprintRecord, Callable[[], Row]]],
    tick: Callable[[], None],
) -> tuple[Path, Path, IndexGroup]:
    """Write one group's bits under a temporary name, row by row (memory stays one row), fsynced; tick per row."""
    name = f"{PREFIX}{token}-{shape[0]}x{shape[1]}.npy"
    tmp = case.arrays_dir / f".tmp-{name}"
    first, efficiency = rows[0][1]()
    entries = [_entry(rows[0][0], efficiency)]
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint64, shape=(len(rows), first.size))
    out[0] = first
    tick()
    for i, (record, row) in enumerate(rows[1:], start=1):
        out[i], efficiency = row()
        entries.append(_entry(record, efficiency))
        tick()
    out.flush()
    del out
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    return tmp, case.arrays_dir / name, IndexGroup(shape, name, tuple(entries), int(first.size))


def _row_source(old: Manifest | None, arrays_dir: Path) -> dict[tuple[int, str], Callable[[], Row]]:
    """Row readers of the previous index, by (fingerprint id, SHA-256): unchanged fingerprints keep their row."""
    if old is None:
        return {}
    found: dict[tuple[int, str], Callable[[], Row]] = {}
    for group in old.groups:
        try:
            bits = load_bits(arrays_dir, group)
        except (OSError, ValueError):
            continue
        for i, e in enumerate(group.entries):
            found[(e.fingerprint_id, e.array_sha256)] = lambda bits=bits, i=i, e=e: (np.array(bits[i]), e.efficiency)
    return found


def update_index(
    case: Case,
    row_of: Callable[[FingerprintRecord], Row],
    *,
    parameters: dict | None = None,
    run_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Manifest | None:
    """Bring the case's index up to date with its fingerprints; returns the current manifest (None: no fingerprint).

    row_of(record): the row of a fingerprint whose row the old index does not hold (new or
    re-enrolled): its bits (uint64 words) and one number kept with them. Nothing is written when
    the index already matches the fingerprints.
    """
    records = case.fingerprints()
    old = current_manifest(case.arrays_dir)
    wanted = {(r.id, r.array_sha256, r.device_name) for r in records}
    if old is not None and old.key() == wanted and old.parameters == dict(parameters or {}):
        return old
    if not records:
        return None
    reuse = _row_source(old, case.arrays_dir) if old is not None and old.parameters == dict(parameters or {}) else {}
    by_shape: dict[tuple[int, int], list] = {}
    for record in records:
        row = reuse.get((record.id, record.array_sha256)) or (lambda record=record: row_of(record))
        by_shape.setdefault(tuple(record.shape[:2]), []).append((record, row))
    token = uuid.uuid4().hex[:12]
    staged: list[tuple[Path, Path]] = []
    groups = []
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], len(records))

    try:
        for shape in sorted(by_shape):
            tmp, final, group = _stage_group(case, token, shape, by_shape[shape], tick)
            staged.append((tmp, final))
            groups.append(group)
        manifest = Manifest(f"{PREFIX}{token}.json", tuple(groups), dict(parameters or {}))
        staged.append(_stage_json(case.arrays_dir, manifest.name, _manifest_values(manifest)))
        pointer = _stage_json(case.arrays_dir, POINTER, {"manifest": manifest.name})
        staged.append(pointer)  # removed on failure like the rest; `_publish` renames it last
        _publish(case, staged, pointer, manifest, run_id)
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    remove_old_index_files(case.arrays_dir, manifest)
    return manifest


def _manifest_values(manifest: Manifest) -> dict:
    return {
        "format": FORMAT,
        "parameters": manifest.parameters,
        "groups": [
            {
                "shape": list(g.shape),
                "bits_file": g.bits_file,
                "words": g.words,
                "entries": [
                    {
                        "fingerprint_id": e.fingerprint_id,
                        "array_sha256": e.array_sha256,
                        "device": e.device,
                        "array_file": e.array_file,
                        "shape": list(e.shape),
                        "source": e.source,
                        "efficiency": e.efficiency,
                    }
                    for e in g.entries
                ],
            }
            for g in manifest.groups
        ],
    }


def _stage_json(arrays_dir: Path, name: str, values: dict) -> tuple[Path, Path]:
    tmp = arrays_dir / f".tmp-{name}"
    _fsync_write(tmp, json.dumps(values, sort_keys=True).encode("utf-8"))
    return tmp, arrays_dir / name


def _publish(case: Case, staged: list[tuple[Path, Path]], pointer: tuple[Path, Path], manifest: Manifest, run_id):
    """Rename the staged files, the pointer last, under the case's write lock; audit the update."""
    with case._write() as conn:
        details = {"manifest": manifest.name, "fingerprints": len(manifest.entries)}
        details["sizes"] = [[*g.shape, len(g.entries)] for g in manifest.groups]
        case._audit_in(conn, "fingerprint index updated", details, run_id)  # rolled back if a rename fails
        for tmp, final in staged:
            if (tmp, final) != pointer:
                os.replace(tmp, final)
        _fsync_dir(case.arrays_dir)
        os.replace(*pointer)
        _fsync_dir(case.arrays_dir)


def index_files(manifest: Manifest) -> set[str]:
    """The files an index consists of (its manifest and bits files)."""
    return {manifest.name, *(g.bits_file for g in manifest.groups)}


def remove_old_index_files(arrays_dir: Path, keep: Manifest, names: Iterable[str] | None = None) -> list[str]:
    """Delete index files (and their temporaries) that the current index does not name."""
    kept = index_files(keep) | {POINTER}
    removed = []
    now = time.time()
    for path in sorted(arrays_dir.iterdir()) if names is None else (arrays_dir / n for n in names):
        name = path.name
        # a temporary may be another process's update in progress: only old ones are left-overs
        old_tmp = name.startswith(f".tmp-{PREFIX}") and now - path.stat().st_mtime > TEMPORARY_MAX_AGE_S
        if (name.startswith(PREFIX) or old_tmp) and name not in kept:
            path.unlink(missing_ok=True)
            removed.append(name)
    return removed


def index_bytes(arrays_dir: Path, manifest: Manifest) -> int:
    """Bytes on disk of an index (its manifest and bits files)."""
    return sum((arrays_dir / name).stat().st_size for name in index_files(manifest))
