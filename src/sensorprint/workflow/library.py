"""Use case: a reference library. `sensorprint import CASE OTHER_CASE...` pools other cases' devices.

Every device of another case that has a fingerprint is copied into this case through the
store's own API (`Case.commit_enrollment`): its reference media records (paths and hashes,
never the files), the enrollment sums behind each fingerprint (`Case.load_sums`), so that a
later `enroll` of the device refines them exactly as in its own case, and the fingerprints
themselves, in one transaction per device. Each fingerprint keeps its provenance in its
parameters ("imported", per size: the source case, its device and fingerprint ids, the array's
SHA-256, which the copy must reproduce, and the run that estimated it, with its tool version
and parameters); the import run and the audit log record it too.

A device already imported from the same source with the same fingerprints is left as it is
(an import can be repeated); a name taken by another device gets the source case's name
appended. The other cases are only read. Imported fingerprints are kept at float16 unless
asked otherwise (`Precision`: half the bytes, the same decisions; the enrollment sums are
copied in full, so a later `enroll` refines the full-precision estimate); the copy must equal
the source's K rounded to that precision, byte for byte. Above `screen.MIN_FINGERPRINTS`
fingerprints the case's index is brought up to date at the end, so the next scan screens at
once.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.store import Case, Device, FingerprintRecord
from sensorprint.store.records import Precision, stored_form, stored_precision
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.screen import ensure_index, use_index

MEDIUM_FIELDS = ("path", "sha256", "size_bytes", "mtime_ns", "kind", "width", "height", "orientation")


@dataclass
class ImportSummary:
    """What an import did: devices copied, already present, renamed; one line per problem."""

    run_id: int
    cases: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)  # "source case: device" -> name in this case
    fingerprints: int = 0
    error_lines: list[str] = field(default_factory=list)
    indexed: int = 0  # fingerprints in the case's index afterwards (0: no index)
    precision: Precision = Precision.FLOAT16
    source_bytes: int = 0  # of the imported fingerprints' array files: in their cases, and here
    stored_bytes: int = 0


def _run_record(source: Case, run_id: int | None) -> dict | None:
    run = source.get_run(run_id) if run_id is not None else None
    if run is None:
        return None
    return {"id": run.id, "command": run.command, "tool_version": run.tool_version, "started": run.started}


def provenance(source: Case, device: Device, record: FingerprintRecord) -> dict:
    """Where an imported fingerprint comes from, as kept in its parameters."""
    return {
        "case": str(source.root),
        "device": device.name,
        "device_id": device.id,
        "fingerprint_id": record.id,
        "array_sha256": record.array_sha256,
        "n_media": record.n_media,
        "run": _run_record(source, record.run_id),
        "parameters": record.parameters,
    }


def _media_fields(source: Case, device: Device) -> list[dict]:
    """The device's reference media records as `commit_enrollment` takes them."""
    media = []
    for m in source.list_media(role="reference", device_id=device.id):
        fields = {name: getattr(m, name) for name in MEDIUM_FIELDS}
        fields.update(metadata=m.metadata or {}, status=m.status, error=m.error, details=m.details or {})
        media.append(fields)
    return media


def _target_name(case: Case, source: Case, device: Device, records: list[FingerprintRecord]) -> tuple[str, bool]:
    """(name in this case, already imported): the source's name, or it with the source case's name appended."""
    for name in (device.name, f"{device.name} [{source.root.name}]"):
        existing = case.get_device(name)
        if existing is None:
            return name, False
        theirs = {(p.get("case"), p.get("array_sha256")) for p in _imported_from(case, existing.id)}
        if theirs and theirs == {(str(source.root), r.array_sha256) for r in records}:
            return name, True
    raise CaseError(f"device {device.name!r} of {source.root} clashes with two devices of this case; rename one")


def _imported_from(case: Case, device_id: int) -> list[dict]:
    """The provenance of a device's imported fingerprints (empty: enrolled here)."""
    found = {}
    for record in case.fingerprints(device_id):
        for origin in (record.parameters.get("imported") or {}).values():
            found[origin["fingerprint_id"], origin["array_sha256"]] = origin
    return list(found.values())


def import_device(case: Case, source: Case, device: Device, run_id: int, summary: ImportSummary) -> None:
    """Copy one device (references, sums, fingerprints at `summary.precision`) in one transaction, with provenance."""
    records = source.fingerprints(device.id)
    if not records:
        return
    name, already = _target_name(case, source, device, records)
    label = f"{source.root.name}: {device.name}"
    if already:
        summary.already.append(label)
        return
    for r in records:
        r.verify()  # a source fingerprint changed since it was saved is refused before anything is copied
    sums = {}
    for shape in source.sums_shapes(device.id):
        state = source.load_sums(device.id, shape)
        if state is not None:
            sums[tuple(shape)] = state
    fingerprints = {tuple(r.shape[:2]): (r.load(), r.quality) for r in records}
    origin = {f"{r.shape[1]}x{r.shape[0]}": provenance(source, device, r) for r in records}
    for r in records:
        kept_as = stored_precision(fingerprints[tuple(r.shape[:2])][0], summary.precision)
        origin[f"{r.shape[1]}x{r.shape[0]}"]["stored_as"] = str(kept_as)
    target = case.ensure_device(name, device.model, device.notes, run_id=run_id)
    saved = case.commit_enrollment(
        target.id, _media_fields(source, device), sums, fingerprints, parameters={"imported": origin},
        run_id=run_id, precision=summary.precision,
    )  # fmt: skip
    _check_copies(case, target, saved, records, origin, summary.precision)
    summary.imported.append(name)
    summary.fingerprints += len(saved)
    summary.source_bytes += sum(r.path.stat().st_size for r in records)
    summary.stored_bytes += sum(r.path.stat().st_size for r in saved)
    if name != device.name:
        summary.renamed[label] = name


def stored_sha256(k: np.ndarray, precision: Precision) -> str:
    """SHA-256 of the .npy file the store writes for K at `precision` (`Case.save_fingerprint`)."""
    buffer = io.BytesIO()
    np.save(buffer, stored_form(k, precision), allow_pickle=False)
    return hashlib.sha256(buffer.getbuffer()).hexdigest()


def _check_copies(case: Case, target: Device, saved, records, origin: dict, precision: Precision) -> None:
    """Each copy must hash as its source's K written at `precision`; record per fingerprint where it came from."""
    by_shape = {tuple(r.shape[:2]): r for r in records}
    for copy in saved:
        original = by_shape[tuple(copy.shape[:2])]
        same = copy.array_sha256 == original.array_sha256
        if not same and copy.array_sha256 != stored_sha256(original.load(), precision):
            raise CaseError(f"the copy of {target.name!r}'s fingerprint differs from its source (SHA-256)")
    details = {"device": target.name, "device_id": target.id, "imported_from": origin}
    case.audit("device imported", details)


def import_cases(
    case: Case, sources: list[Path], *, precision: Precision = Precision.FLOAT16, progress: Progress = no_progress
) -> ImportSummary:
    """Pool the devices and fingerprints of other cases into `case`, with their provenance.

    precision: how the copied fingerprints are kept (`Precision`; float16 halves their bytes).
    """
    roots = [Path(s).expanduser().absolute() for s in sources]
    for root in roots:
        if root == case.root:
            raise CaseError(f"{root} is this case; name other cases to import from")
    run_id = case.start_run("import", {"cases": [str(r) for r in roots], "precision": str(precision)})
    summary = ImportSummary(run_id, cases=[str(r) for r in roots], precision=Precision(precision))
    status = "interrupted"
    try:
        for number, root in enumerate(roots, start=1):
            with Case.open(root, read_only=True) as source:
                devices = source.list_devices()
                for done, device in enumerate(devices, start=1):
                    import_device(case, source, device, run_id, summary)
                    progress("import", done, len(devices))
            progress("cases", number, len(roots))
        if use_index(case, None):
            screen = ensure_index(case, run_id=run_id)
            summary.indexed = case.counts()["fingerprints"] if screen else 0
        status = "completed"
    finally:
        case.finish_run(run_id, status, {"imported": summary.imported, "already": summary.already})
    return summary
