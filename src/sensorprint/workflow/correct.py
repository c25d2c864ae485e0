"""Use cases: correct a case — its identity, notes, and wrong reference files or devices.

A wrong reference file (another camera's, a rescaled copy) spoils a fingerprint.
Removing it re-estimates the fingerprint of its size from the device's kept reference
files, read again (read-only) in the order they were first recorded: the stored sums
cannot be taken apart file by file (each file's residual went into one of two split
halves, Chen et al. 2008), so the kept files' sums are built again with the enrollment's
own parameters. A kept file that can no longer be read, or whose SHA-256 changed, stops
the correction with one line: the fingerprint must describe exactly the recorded files.

The device's PRNU results computed with the old fingerprint are marked stale (kept,
visibly), and the next scan computes them again. Every change is one transaction with
its audit line (`sensorprint.store.identity`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sensorprint.errors import CaseError
from sensorprint.prnu import FingerprintAccumulator
from sensorprint.prnu.decision import landscape
from sensorprint.store import Case, Device, MediumRecord
from sensorprint.store import identity as ident
from sensorprint.store.names import storable
from sensorprint.workflow.crops import registered_shape, registration
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.parallel import completed, open_executor, window_for
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.signals import enrollment_part, placed_part

Shape = tuple[int, int]


@dataclass(frozen=True)
class Correction:
    """What a correction did (the words are `sensorprint.cli.text.correction_lines`)."""

    action: str  # "reference removed", "device removed", "device renamed"
    device: str
    details: Mapping[str, Any] = field(default_factory=dict)


def set_case(
    case: Case,
    values: Mapping[str, str | None],
    *,
    exhibits: Mapping[str, str] | None = None,
    acquisition_hashes: Path | None = None,
) -> ident.CaseIdentity:
    """Set the case's identity fields, exhibit numbers {evidence root: number} and acquisition hashes.

    acquisition_hashes: a `sha256sum` list (`<hex>  <path>` per line; relative paths are
    taken from the list's folder), as imaging tools write them.
    """
    if any(v is not None for v in values.values()):
        ident.set_identity(case, values)
    for root, number in (exhibits or {}).items():
        ident.set_exhibit(case, root, number)
    if acquisition_hashes is not None:
        ident.record_acquisition_hashes(
            case, read_hash_list(acquisition_hashes), source=str(Path(acquisition_hashes).absolute())
        )
    return ident.identity(case)


def read_hash_list(path: Path) -> dict[str, str]:
    """{absolute path: SHA-256} from a sha256sum list; CaseError naming the first bad line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise CaseError(f"cannot read the hash list {path}: {exc.strerror}") from exc
    hashes = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        name = name.lstrip(" *")
        if len(digest) != 64 or not name:
            raise CaseError(f"{path}:{number}: not a sha256sum line ('<64 hex digits>  <file>')")
        hashes[os.path.normpath(os.path.join(path.parent.absolute(), name))] = digest
    return hashes


def add_note(case: Case, text: str, *, device: str | None = None, file: str | None = None) -> ident.Note:
    """Append a note about the case, a device or an evidence file."""
    subject = "case"
    if device is not None:
        subject = f"device:{_device(case, device).name}"
    elif file is not None:
        subject = f"file:{storable(os.path.abspath(file))}"
    return ident.add_note(case, text, subject=subject)


def _device(case: Case, name: str) -> Device:
    device = case.get_device(name)
    if device is None:
        names = ", ".join(d.name for d in case.list_devices()) or "none"
        raise CaseError(f"no device {name!r} is enrolled in this case (enrolled: {names})")
    return device


def find_reference(case: Case, device: Device, which: str) -> MediumRecord:
    """The device's reference file named by its path (as given or recorded), its SHA-256 or its id."""
    references = case.list_media(role="reference", device_id=device.id)
    wanted = {which, storable(which), storable(os.path.abspath(which))}
    hits = [m for m in references if m.path in wanted or m.sha256 == which.lower() or str(m.id) == which]
    if len(hits) != 1:
        found = "is not one of" if not hits else "names several of"
        raise CaseError(f"{which!r} {found} the {len(references)} reference files of {device.name}")
    return hits[0]


def _options(case: Case, device: Device, shape: Shape) -> SignalOptions:
    """The signal options the device's fingerprint of this size was estimated with (defaults where unknown)."""
    stored = next((f.parameters for f in case.fingerprints(device.id) if (f.height, f.width) == shape), None) or {}
    names = {f.name for f in fields(SignalOptions)}
    return SignalOptions(**{k: v for k, v in stored.items() if k in names})


def _kept_sums(
    kept: list[MediumRecord], shape: Shape, options: SignalOptions, workers, progress
) -> FingerprintAccumulator:
    """The sums of the kept reference files at `shape`, read again and merged in the order they were recorded."""
    parts: dict[int, tuple[list, dict]] = {}
    progress("re-estimate", 0, len(kept))
    with open_executor(workers) as executor:
        tasks = [([m.path], options, i, _placement(m)) for i, m in enumerate(kept)]
        for i, part in completed(executor, _indexed_part, tasks, window=window_for(workers, None)):
            parts[i] = part
            progress("re-estimate", len(parts), len(kept))
    total = FingerprintAccumulator(shape)
    for i in sorted(parts):
        facts_list, accumulators = parts[i]
        for facts in facts_list:  # one file per part: the i-th kept file
            _check_kept(facts, kept[i])
        if shape in accumulators:
            total.merge(accumulators[shape])
    return total


def _indexed_part(
    paths: list[str], options: SignalOptions, index: int, placement: tuple | None = None
) -> tuple[int, tuple[list, dict]]:
    if placement is not None:  # a crop registered into a larger fingerprint: placed where it was found
        facts, accumulators = placed_part(paths[0], options, *placement)
        return index, ([facts], accumulators)
    return index, enrollment_part(paths, options)


def _placement(medium: MediumRecord) -> tuple | None:
    """(fingerprint shape, transform) of a reference registered into a larger fingerprint (`workflow.crops`)."""
    return registration(medium.details)


def fingerprint_shape(medium: MediumRecord) -> Shape:
    """The landscape size of the fingerprint a reference is part of: its own, or the one it was registered into."""
    return registered_shape(medium.details) or landscape((medium.height, medium.width))


def _check_kept(facts, recorded: MediumRecord) -> None:
    if facts.error:
        raise CaseError(f"cannot re-estimate without reading the kept reference {facts.error_line()}")
    if facts.store_fields().get("sha256") != recorded.sha256:
        raise CaseError(
            f"the kept reference file {recorded.path} changed since it was enrolled (SHA-256 differs): "
            "the fingerprint cannot be re-estimated from it; remove it too or restore the original"
        )


def remove_reference(
    case: Case,
    device_name: str,
    which: str,
    *,
    reason: str,
    workers: int | None = 1,
    progress: Progress = no_progress,
) -> Correction:
    """Remove one reference file of a device and re-estimate the fingerprint of its size without it."""
    device = _device(case, device_name)
    medium = find_reference(case, device, which)
    estimates, emptied, parameters = {}, [], {}
    if medium.status == "ok" and medium.width and medium.height:
        shape = fingerprint_shape(medium)
        kept = [
            m
            for m in case.list_media(role="reference", device_id=device.id, status="ok")
            if m.id != medium.id and m.width and fingerprint_shape(m) == shape
        ]
        options = _options(case, device, shape)
        parameters = options.to_dict()
        if kept:
            total = _kept_sums(kept, shape, options, workers, progress)
            fingerprint = total.result()
            estimates[shape] = (total.state(), fingerprint.k, fingerprint.quality)
        else:
            emptied.append(shape)
    run_id = case.start_run("remove reference", {"device": device.name, "reference": medium.path, "reason": reason})
    status = "interrupted"
    try:
        details = ident.remove_reference(
            case,
            medium.id,
            estimates,
            emptied=emptied,
            parameters=parameters,
            reason=_why(medium, reason),
            run_id=run_id,
        )
        status = "completed"
    finally:
        case.finish_run(run_id, status, {"device": device.name, "reference": medium.path})
    return Correction("reference removed", device.name, details)


def _why(medium: MediumRecord, reason: str) -> str:
    return f"reference {medium.path} removed ({reason})" if reason else f"reference {medium.path} removed"


def remove_device(case: Case, device_name: str, *, reason: str) -> Correction:
    """Remove a device, its references and fingerprints; its PRNU results are kept in full in the audit log."""
    device = _device(case, device_name)
    run_id = case.start_run("remove device", {"device": device.name, "reason": reason})
    status = "interrupted"
    try:
        details = ident.remove_device(case, device.id, reason=reason, run_id=run_id)
        status = "completed"
    finally:
        case.finish_run(run_id, status, {"device": device.name})
    return Correction("device removed", device.name, details)


def drop_empty_devices(case: Case, summaries: Iterable[Any], existed: Iterable[str]) -> list[str]:
    """Remove again each device an enrollment created without adding one readable reference file; their names.

    An enrollment that adds nothing creates nothing: a device is recorded before its files
    are read (unreadable reference files are recorded with their error under it), so one
    whose every file failed is removed here, audited like every correction (the audit log
    keeps the attempt, its run keeps the error lines). summaries: `EnrollSummary`s;
    existed: the device names enrolled before.
    """
    before, dropped = set(existed), []
    for summary in summaries:
        if summary.added or summary.already or summary.device in before or case.get_device(summary.device) is None:
            continue
        remove_device(case, summary.device, reason="the enrollment added no readable reference file")
        dropped.append(summary.device)
    return dropped


def rename_device(case: Case, old: str, new: str) -> Correction:
    """Rename a device (its results follow; networks that name it become stale)."""
    device = _device(case, old)
    run_id = case.start_run("rename device", {"device": device.name, "new": new})
    status = "interrupted"
    try:
        details = ident.rename_device(case, device.id, new, run_id=run_id)
        status = "completed"
    finally:
        case.finish_run(run_id, status, {"device": device.name, "new": new})
    return Correction("device renamed", device.name, details)
