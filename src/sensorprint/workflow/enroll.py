"""Use case: enroll a seized device from reference media taken with it.

Reference images and video frames are reduced to noise residuals in worker processes,
whose partial maximum-likelihood sums (Chen et al. 2008: K = ΣWᵢIᵢ / ΣIᵢ²) are merged
here, one estimate per sensor size: images give the full-sensor fingerprint, videos
one at their frame size. The sums are kept in the case, so enrolling more media later
refines the same fingerprint instead of starting again, and a reference file already
enrolled for the device is not read twice.

Nothing is lost on a kill: as parts of the work finish, the store commits their
reference files together with the sums that include them and the fingerprints made
from those sums (`Case.commit_enrollment`, one transaction), so running the same
command again reads exactly the files that were not committed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from dataclasses import dataclass, field
from pathlib import Path

from sensorprint.errors import CaseError
from sensorprint.media import discover
from sensorprint.media.discover import recorded_path
from sensorprint.prnu import FingerprintAccumulator, landscape
from sensorprint.store import Case, Device
from sensorprint.store.names import printable, storable
from sensorprint.workflow import crops as crops_
from sensorprint.workflow.modules import by_module, module_device, module_key
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.parallel import default_workers, open_executor
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.references import FitWindow, ReferenceCheck, check_references
from sensorprint.workflow.signals import enrollment_part, placed_sums, query_signal

Shape = tuple[int, int]  # a landscape sensor size: (rows, cols), rows <= cols


@dataclass(frozen=True)
class EnrolledFingerprint:
    """A fingerprint as an enrollment left it: landscape size in pixels, what is behind it, its quality."""

    height: int
    width: int
    n_files: int  # readable reference files of this size
    n_summed: int  # images or video frames in the sums
    quality: float  # split-half correlation of the estimate (0..1)


@dataclass
class EnrollSummary:
    """What an enrollment did (the words are `sensorprint.cli.text.enroll_lines`)."""

    device: str
    added: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)
    fingerprints: list[EnrolledFingerprint] = field(default_factory=list)
    check: ReferenceCheck | None = None  # the new references checked against the others (`workflow.references`)
    refused: list[str] = field(default_factory=list)  # references that did not fit, removed (unless force)
    modules: list[str] = field(default_factory=list)  # camera modules (EXIF lens models) among the references
    # what became of each reference of another size than the sensor's (`workflow.crops`): "registered ...",
    # "refused: ..." or "KEPT (--force) ..."
    outcomes: list[str] = field(default_factory=list)
    # reference videos found stabilised: (path, frames aligned, frames left out), their frames aligned before summing
    stabilised: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass
class _Enrollment:
    """The state of one enrollment run: the sums stored before it and those of its parts merged so far."""

    case: Case
    device: Device
    run_id: int
    options: SignalOptions
    stored: dict[Shape, dict]  # FingerprintAccumulator.state() per size, as the case held them at the start
    merged: dict[Shape, FingerprintAccumulator] = field(default_factory=dict)
    saved: dict[Shape, EnrolledFingerprint] = field(default_factory=dict)
    windows: list[tuple] = field(default_factory=list)  # (path, medium, centre window of W·I, pixels) per new image


def _chunks(items: list, n_chunks: int) -> list[list]:
    size = max(1, math.ceil(len(items) / max(1, n_chunks)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _parts(files: list[str], n_workers: int, part_size: int | None) -> list[list[str]]:
    """One part per worker (the fewest partial sums to merge), or parts of `part_size` files."""
    return _chunks(files, n_workers) if part_size is None else _chunks(files, math.ceil(len(files) / part_size))


def _device(case: Case, device_name: str, model: str | None) -> Device:
    device = case.get_device(device_name)
    if device is None:
        return case.add_device(device_name, model=model)
    if model and device.model and model != device.model:
        raise CaseError(f"device {device_name!r} is enrolled as model {device.model!r}, not {model!r}")
    return device


def _finished(executor: Executor, parts: list[list[str]], options: SignalOptions, inline: bool) -> Iterator[list]:
    """Results of `enrollment_part`, in batches of the parts that finished together (one commit each).

    Inline (workers=1), each part is committed before the next one is read.
    """
    if inline:
        for part in parts:
            yield [enrollment_part(part, options)]
        return
    pending = {executor.submit(enrollment_part, part, options): i for i, part in enumerate(parts)}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        yield [future.result() for future in sorted(done, key=pending.__getitem__)]
        for future in done:
            del pending[future]


def _commit(state: _Enrollment, batch: list, summary: EnrollSummary) -> int:
    """Hand the store one batch of parts: their files, the device's sums with them, the new fingerprints.

    The sums are the stored ones plus this run's parts merged in order of arrival, as one
    run without interruption merges them, so K does not depend on how often it commits.
    Returns how many files the batch held.
    """
    media, shapes = [], set()
    for facts_list, accumulators in batch:
        for shape, accumulator in accumulators.items():
            merged = state.merged
            merged[shape] = merged[shape].merge(accumulator) if shape in merged else accumulator
            shapes.add(shape)
        media += [facts.store_fields() for facts in facts_list]
        state.windows += [(facts.path, facts.medium, facts.fit_window) for facts in facts_list if facts.fit_window]
        summary.errors += [facts.error_line() for facts in facts_list if facts.error]
        summary.added += sum(1 for facts in facts_list if not facts.error)
        summary.stabilised += [
            (printable(facts.path), facts.alignment["aligned"], len(facts.alignment["left_out"]))
            for facts in facts_list
            if facts.alignment and facts.alignment["stabilisation"] == "stabilised" and not facts.error
        ]
    totals = {shape: _total(state, shape) for shape in sorted(shapes)}
    _save(state, media, totals, summary)
    return len(media)


def _total(state: _Enrollment, shape: Shape) -> FingerprintAccumulator:
    """The device's whole sums at one size: those stored before this run, then this run's (a copy)."""
    if shape not in state.stored:
        return state.merged[shape]
    return FingerprintAccumulator.from_state(state.stored[shape]).merge(state.merged[shape])


def _save(state: _Enrollment, media: list[dict], totals: dict[Shape, FingerprintAccumulator], summary) -> None:
    """Estimate the fingerprints of `totals` and have the store commit them with `media` and the sums."""
    estimates = {shape: accumulator.result() for shape, accumulator in totals.items()}
    records = state.case.commit_enrollment(
        state.device.id,
        media,
        {shape: accumulator.state() for shape, accumulator in totals.items()},
        {shape: (fp.k, fp.quality) for shape, fp in estimates.items()},
        parameters=state.options.to_dict(),
        run_id=state.run_id,
        stale_reason=f"device {summary.device} enrolled new reference media",
    )
    for record in records:
        fp = estimates[(record.height, record.width)]
        state.saved[(record.height, record.width)] = EnrolledFingerprint(
            record.height, record.width, record.n_media, fp.n_media, fp.quality
        )


def _load_stored(case: Case, device: Device) -> dict[Shape, dict]:
    """The device's enrollment sums as the case holds them, per landscape size."""
    states = {shape: case.load_sums(device.id, shape) for shape in case.sums_shapes(device.id)}
    return {shape: s for shape, s in states.items() if s is not None and "num" in s}


def _new_files(state: _Enrollment, files: list[str]) -> list[str]:
    enrolled = {m.path for m in state.case.list_media(role="reference", device_id=state.device.id)}
    return [f for f in files if storable(f) not in enrolled]  # the case escapes names that are not UTF-8


def _run(state: _Enrollment, todo: list[str], workers, scheduler, part_size, progress, summary) -> None:
    """Read the new files (`todo`: not yet enrolled for the device), committing each batch of finished parts."""
    n_workers = workers or default_workers()
    progress("enroll", 0, len(todo))
    done = 0
    with open_executor(workers, scheduler) as executor:
        inline = scheduler is None and n_workers <= 1
        for batch in _finished(executor, _parts(todo, n_workers, part_size), state.options, inline):
            done += _commit(state, batch, summary)
            progress("enroll", done, len(todo))
    progress("fingerprint", len(state.saved), len(state.saved))
    summary.fingerprints = [state.saved[shape] for shape in sorted(state.saved)]


def _register_crops(state: _Enrollment, crops: list[str], main, summary: EnrollSummary, *, force: bool) -> None:
    """Place each new reference of another size than the sensor's in the main sums, or refuse it (`workflow.crops`).

    Run after the device's references of the main size are committed: each crop is
    searched in their fingerprint. Registered: committed with the main sums that now
    include it at its offset. Refused: not recorded (the run keeps the reason), unless
    `force`, which enrolls it as before (a fingerprint of its own size), flagged.
    """
    for path in crops:
        facts, signal = query_signal(Path(path), state.options, keep_pixels=True)
        if signal is None or signal.intensity is None:
            _commit(state, [([facts], {})], summary)
            continue
        if main in state.merged or main in state.stored:
            placement = crops_.locate(
                signal, _total(state, main), printable(path), facts.medium.metadata.get("software")
            )
        else:
            placement = crops_.Placement(
                False,
                {},
                0.0,
                0.0,
                0,
                f"{printable(path)}: the device has no fingerprint of its main size {main[1]}x{main[0]} to place it in",
            )
        line = crops_.outcome_line(printable(path), placement, main)
        if placement.found:
            placed = placed_sums(signal.pixels[0], signal.residual, main, placement.transform)
            fields = facts.store_fields()
            fields["details"] = {
                **fields["details"],
                "registration": placement.details(main),
                "reference_outcome": line,
            }
            state.merged[main] = state.merged[main].merge(placed) if main in state.merged else placed
            _save(state, [fields], {main: _total(state, main)}, summary)
            summary.added += 1
        elif force:
            _commit(state, [enrollment_part([path], state.options)], summary)
            medium = state.case.find_medium("reference", path, state.device.id)
            line = f"KEPT (--force) as a fingerprint of its own size, flagged in every report: {placement.reason}"
            if medium is not None:
                flag = {"reference_flag": "a crop not found in the sensor's fingerprint; kept with --force"}
                state.case.annotate_media({medium.id: {**flag, "reference_outcome": line}}, run_id=state.run_id)
        else:
            summary.refused.append(path)
        summary.outcomes.append(line)
    summary.fingerprints = [state.saved[shape] for shape in sorted(state.saved)]


def _check(state: _Enrollment, summary: EnrollSummary, *, force: bool, workers, progress) -> None:
    """Check the run's new references against the others; refuse the misfits, or flag them when forced."""
    ids = {m.path: m.id for m in state.case.list_media(role="reference", device_id=state.device.id)}
    windows = [
        FitWindow(storable(path), ids[storable(path)], landscape((m.height, m.width)), own, energy, n)
        for path, m, (own, energy, n) in state.windows
        if storable(path) in ids
    ]
    state.windows.clear()
    summary.check = check_references(state.case, state.device, windows)
    if summary.check.misfits and not force:
        from sensorprint.workflow.correct import remove_reference

        for misfit in summary.check.misfits:
            reason = (
                f"does not fit the fingerprint of the device's other references (fit {misfit.score:.1f} < "
                f"{summary.check.threshold:g}, median {summary.check.median:.1f}); refused at enrollment"
            )
            remove_reference(
                state.case, state.device.name, misfit.path, reason=reason, workers=workers, progress=progress
            )
            summary.refused.append(misfit.path)
    elif summary.check.misfits:
        flags = {
            m.medium_id: {"reference_flag": "does not fit the others; kept with --force"} for m in summary.check.misfits
        }
        state.case.annotate_media(flags, run_id=state.run_id)


# How reference media become noise signals unless told otherwise: a reference video gives 30 evenly
# spaced frames (enrollment is done once), an image its residual.
REFERENCE_OPTIONS = SignalOptions(frame_strategy="even", n_frames=30)


def enroll(
    case: Case,
    device_name: str,
    paths: list[Path],
    *,
    model: str | None = None,
    options: SignalOptions = REFERENCE_OPTIONS,
    workers: int | None = None,
    scheduler: str | None = None,
    part_size: int | None = None,
    force: bool = False,
    progress: Progress = no_progress,
) -> EnrollSummary:
    """Add reference media to a device (created if new), re-estimate its fingerprints, and check the new references.

    part_size: files per part of the work (each part is committed as it finishes);
    default one part per worker, which merges the fewest partial sums. Each new reference
    image is compared with the fingerprint of the device's other references
    (`workflow.references`); one that does not fit while the others do is refused (the
    fingerprint estimated again without it) unless `force`, which keeps it, flagged.
    """
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: give the reference files or folders of {device_name}")
    if part_size is not None and part_size < 1:
        raise ValueError(f"part_size must be at least 1, not {part_size}")
    files = [str(recorded_path(p)) for p in discover(paths)]  # never raises (looping links)
    if not files:  # an enrollment that adds nothing creates nothing
        raise CaseError(f"no image or video was found in {', '.join(map(str, paths))}: nothing was enrolled")
    device = _device(case, device_name, model)
    run_id = case.start_run(
        "enroll", {"device": device_name, "model": model, "paths": [str(p) for p in paths], **options.to_dict()}
    )
    summary = EnrollSummary(device_name)
    status = "interrupted"
    try:
        case.remove_unreferenced_arrays(run_id=run_id)  # what an enrollment killed earlier left
        state = _Enrollment(case, device, run_id, options, _load_stored(case, device))
        todo = _new_files(state, files)
        summary.already = len(files) - len(todo)
        probed = crops_.probe_images(todo)
        main = crops_.main_shape(case, device, probed)
        crops = set(crops_.off_size(case, device, probed, main))
        _run(state, [f for f in todo if f not in crops], workers, scheduler, part_size, progress, summary)
        _register_crops(state, [f for f in todo if f in crops], main, summary, force=force)
        _check(state, summary, force=force, workers=workers, progress=progress)
        references = case.list_media(role="reference", device_id=device.id, status="ok")
        summary.modules = sorted({k for k in (module_key(m.metadata) for m in references) if k})
        status = "completed"
    finally:
        finished = {"added": summary.added, "errors": summary.errors[:100], "outcomes": summary.outcomes[:100]}
        if summary.check is not None:  # read back by `references.model_twins`
            finished["similar"] = [[name, score] for name, score in summary.check.similar]
        case.finish_run(run_id, status, finished)
    return summary


def enroll_by_module(case: Case, phone: str, paths: list[Path], **options) -> list[EnrollSummary]:
    """Enroll each camera module of a phone as a device of its own (`workflow.modules`), one enrollment each.

    The references are grouped by the module their EXIF names; files that name none go to
    the phone's own device. `options` are those of `enroll`.
    """
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: give the reference files or folders of {phone}")
    files = [str(recorded_path(p)) for p in discover(paths)]
    if not files:
        raise CaseError(f"no image or video was found in {', '.join(map(str, paths))}: nothing was enrolled")
    groups = by_module(files)
    return [
        enroll(case, module_device(phone, module), [Path(f) for f in groups[module]], **options)
        for module in sorted(groups, key=lambda m: (m is None, m or ""))
    ]
