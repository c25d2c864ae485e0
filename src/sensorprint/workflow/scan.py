"""Use case: scan seized storage against every enrolled device.

Every file under the given paths is read (read-only), hashed, reduced to its noise
signal and compared with every enrolled device. Each file's results are committed to
the case in one transaction as soon as they are computed (DESIGN.md, "The case
store"), so a scan killed at any moment, even with SIGKILL, resumes where it stopped:
files whose results are committed and that did not change on disk (same size and
modification time) are not read again, and a file is only compared with the devices
it has no result for yet (e.g. a device enrolled after the first scan).

When the case holds trained networks (`sensorprint train`), the same worker classifies
the pixels it read for PRNU with them (workflow.classify): a file is only classified by
the networks it has no result for, and its CNN rows are committed in the same
transaction as its PRNU rows. A stale network (a device enrolled after training) is
still used, and the summary and every row it wrote say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sensorprint.errors import CaseError
from sensorprint.media import discover
from sensorprint.results import Decision, Match, Method, cnn_answers, prnu_ranking
from sensorprint.store import Case
from sensorprint.workflow.classify import (
    NetworkRef,
    classify_rows,
    current_networks,
    networks_done,
    read_pixels,
    worker_threads,
)
from sensorprint.workflow.files import FileFacts, stat_file
from sensorprint.workflow.options import ScanOptions, SignalOptions
from sensorprint.workflow.parallel import completed, open_executor, share, window_for
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.screen import ScreenRef, ensure_index, screened_devices, shortlisted_devices, use_index
from sensorprint.workflow.signals import FingerprintRef, match_video, query_signal


@dataclass
class NetworkCounts:
    """What one network answered in a scan: files it named a class for, files it answered unknown."""

    classified: int = 0
    unknown: int = 0
    caveat: int = 0  # answers for files less flat than every reference file (they carry the caveat)

    @property
    def files(self) -> int:
        return self.classified + self.unknown


@dataclass
class ScanSummary:
    """What a scan did: counts, one line per file it could not examine, and the networks' answers.

    matched: files PRNU matched to an enrolled device. network_notes: which networks were
    used, stale or refused (`classify.current_networks`), and networks that failed on a file.
    classified: {network title: its answers}.
    """

    run_id: int
    files: int = 0
    skipped: int = 0
    scanned: int = 0
    errors: int = 0
    matched: int = 0
    error_lines: list[str] = field(default_factory=list)
    network_lines: list[str] = field(default_factory=list)
    classified: dict[str, NetworkCounts] = field(default_factory=dict)
    prnu_only: bool = False  # no trained network in the case
    screened: int = 0  # files screened with the fingerprint index (workflow.screen)
    fingerprints_screened: int = 0  # over those files: fingerprints screened, and compared in full
    fingerprints_compared: int = 0

    def count(self, matches: list[Match]) -> None:
        """Count each network's answer for one file (one per network: its class, or unknown)."""
        for answer in cnn_answers(matches).values():
            counts = self.classified.setdefault(answer.evidence.network or str(answer.target_kind), NetworkCounts())
            if answer.named:
                counts.classified += 1
            else:
                counts.unknown += 1
            counts.caveat += bool(answer.evidence.content_caveat)


def enrolled_fingerprints(case: Case, name: str | None = None) -> dict[str, list[FingerprintRef]]:
    """{device name: its fingerprints}, in order of enrollment, for the workers to load (one query).

    name: only that device's (empty when it has none or is not enrolled).
    """
    if name is None:
        records = case.fingerprints()
    else:
        device = case.get_device(name)
        records = case.fingerprints(device.id) if device is not None else []
    devices: dict[str, list[FingerprintRef]] = {}
    for record in records:  # ordered by device id, as the devices are listed
        devices.setdefault(record.device_name, []).append(
            FingerprintRef(
                record.device_name,
                record.id,
                str(record.path),
                tuple(record.shape),
                record.source,
                record.n_media,
                record.quality,
            )
        )
    return devices


def files_to_scan(
    case: Case,
    paths: list[Path],
    devices: dict,
    networks: list[NetworkRef] | None = None,
    screen: ScreenRef | None = None,
) -> tuple[list[tuple[str, dict, list[NetworkRef]]], int, int]:
    """Which files still need work, against which devices and networks; plus the count of all files and skipped ones.

    screen: the index a scan screens with; devices a file was screened out of with it count as done.
    """
    from sensorprint.media.discover import recorded_path  # never raises (broken and looping links)

    todo, total, skipped = [], 0, 0
    networks = list(networks or [])
    for path in discover(paths):
        total += 1
        name = str(recorded_path(path))
        record = case.find_medium("evidence", name)
        wanted, wanted_networks = devices, networks
        if record is not None and (record.size_bytes, record.mtime_ns) == stat_file(Path(name)):
            if record.status == "error":
                skipped += 1  # unchanged and unreadable: the error line is already in the case
                continue
            done = case.done_targets(record.id, "prnu") | screened_devices(record.details, screen)
            wanted = {device: refs for device, refs in devices.items() if device not in done}
            classified = networks_done(case, record.id, networks) if networks else set()
            wanted_networks = [ref for ref in networks if ref.model_id not in classified]
            if not wanted and not wanted_networks:
                skipped += 1
                continue
        todo.append((name, wanted, wanted_networks))
    return todo, total, skipped


@dataclass
class ScanOutcome:
    """What a worker returns for one evidence file: its facts and its result rows."""

    facts: FileFacts
    results: list[Match]
    notes: list[str] = field(default_factory=list)  # e.g. a network that could not classify the file
    cnn_only: bool = False  # PRNU was done before: the medium's stored details (frame weights) are kept
    screening: dict | None = None  # what the index shortlisted (workflow.screen), kept in the medium's details


def scan_file(
    path: str,
    devices: dict[str, list[FingerprintRef]],
    hints: dict[str, dict],
    options: SignalOptions,
    threshold: float,
    networks: list[NetworkRef] | None = None,
    screen: ScreenRef | None = None,
) -> ScanOutcome:
    """Read one evidence file, compare it with every given device (PRNU) and classify it with every given network (CNN).

    screen: compare only the devices the case's index shortlists (`workflow.screen`).
    """
    if networks and not devices:
        # Only networks trained since the last scan: the pixels suffice, the PRNU residual is not needed.
        facts, pixels, frames = read_pixels(Path(path), options)
        if facts.error:
            return ScanOutcome(facts, [])
        rows, failures = classify_rows(networks, pixels, is_video=facts.medium.kind == "video", frames=frames)
        return ScanOutcome(facts, rows, [f"{facts.path}: {line}" for line in failures], cnn_only=True)
    # the query aggregate of a video is cleaned only when it becomes a reference (`compare` does it)
    facts, signal = query_signal(
        Path(path), options, keep_pixels=bool(networks), clean_video=False, keep_frames=options.frame_search
    )
    if signal is None:
        return ScanOutcome(facts, [])
    screening = None
    if screen is not None:  # many fingerprints: the index shortlists, the full PCE decides
        devices, screening = shortlisted_devices(signal, devices, screen, threshold, options.orientations)
    # a video matched by no device as a whole is searched frame by frame (stabilised video)
    classified_frames = list(facts.frames)  # the frames whose pixels the networks classify (the first read)
    # a video read adaptively: more frames while some device is undecided (`signals.match_video`)
    results = match_video(Path(path), facts, signal, devices, hints, threshold, options)
    signal.frames.clear()
    notes: list[str] = []
    if networks:
        is_video = signal.intensity is None
        rows, failures = classify_rows(networks, signal.pixels, is_video=is_video, frames=classified_frames)
        results += rows
        notes = [f"{facts.path}: {line}" for line in failures]
        signal.pixels.clear()  # the pixels are not needed any more: do not send them back
    return ScanOutcome(facts, results, notes, screening=screening)


def scan(
    case: Case,
    paths: list[Path],
    *,
    options: ScanOptions = ScanOptions(),
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = no_progress,
    exhaustive: bool | None = None,
) -> ScanSummary:
    """Compare every file under `paths` with every enrolled device and commit each file's results.

    exhaustive: True compares every file with every fingerprint; False screens with the
    case's index first (`workflow.screen`); None (default) screens above
    `screen.MIN_FINGERPRINTS` fingerprints. Decisions are the same either way.
    """
    devices = enrolled_fingerprints(case)
    if not devices:
        raise CaseError(f"no device is enrolled in {case.root}: run `sensorprint enroll` first")
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: check the path of the seized storage")
    networks, network_lines = current_networks(case, threads=worker_threads(workers, scheduler))
    parameters = {
        "paths": [str(Path(p).resolve()) for p in paths],
        "devices": sorted(devices),
        **options.to_dict(),
        "networks": [
            {"model_id": n.model_id, "target": n.target_kind, "classes": list(n.classes), "stale": n.stale_reason}
            for n in networks
        ],
    }
    run_id = case.start_run("scan", parameters)
    summary = ScanSummary(run_id, network_lines=network_lines)
    status = "interrupted"
    try:
        screen = None
        if use_index(case, exhaustive):  # rows are computed only for new or changed fingerprints
            screen = ensure_index(case, run_id=run_id, progress=lambda done, total: progress("index", done, total))
        progress("discover", 0, 1)
        todo, summary.files, summary.skipped = files_to_scan(case, paths, devices, networks, screen)
        progress("discover", 1, 1)
        hints = case.all_hints()
        progress("scan", 0, len(todo))
        with open_executor(workers, scheduler) as executor:
            # what every task takes reaches each Dask worker once (the index: each worker loads it once)
            every, shared_hints = share(executor, devices), share(executor, hints)
            tasks = (
                (name, every if wanted is devices else wanted, shared_hints, options.signal)
                + (options.threshold, wanted_networks, screen)
                for name, wanted, wanted_networks in todo
            )
            outcomes = completed(executor, scan_file, tasks, window=window_for(workers, scheduler))
            for done, outcome in enumerate(outcomes, start=1):
                commit(case, outcome, run_id, summary)
                progress("scan", done, len(todo))
        status = "completed"
    finally:
        case.finish_run(run_id, status, _run_summary(summary))
    summary.prnu_only = not networks and not network_lines
    return summary


def _run_summary(summary: ScanSummary) -> dict:
    """What the case keeps of a scan's summary in its run record."""
    values = asdict(summary)
    values["error_lines"] = summary.error_lines[:100]
    return values


def commit(case: Case, outcome: ScanOutcome, run_id: int, summary: ScanSummary) -> None:
    """Commit one file's results in one transaction, and remember transforms found for its size."""
    facts = outcome.facts
    fields = facts.store_fields()
    if outcome.cnn_only:
        stored = case.find_medium("evidence", facts.path)
        if stored is not None and stored.sha256 == fields["sha256"]:
            fields["details"] = stored.details or {}
    if outcome.screening is not None:
        fields["details"] = {**(fields.get("details") or {}), "screening": outcome.screening}
        summary.screened += 1
        summary.fingerprints_screened += outcome.screening["screened"]
        summary.fingerprints_compared += outcome.screening["compared"]
    case.record_results(fields, outcome.results, run_id)
    summary.scanned += 1
    summary.count(outcome.results)
    summary.error_lines += outcome.notes
    if facts.error:
        summary.errors += 1
        summary.error_lines.append(facts.error_line())
        return
    if prnu_ranking(outcome.results):
        summary.matched += 1
    for found in outcome.results:
        if remembered_transform(found):
            case.set_hint(case.get_device(found.target).id, found.evidence.size_key, dict(found.transform))


def remembered_transform(found: Match) -> bool:
    """Whether a match's transform is worth remembering for the device and size: a PRNU match by a crop or scale."""
    if found.method != Method.PRNU or found.decision != Decision.MATCH or not found.transform:
        return False
    if found.evidence.roles_swapped or not found.evidence.size_key:
        return False
    return found.transform.get("scale", 1.0) != 1.0 or any(found.transform.get("offset", (0, 0)))
