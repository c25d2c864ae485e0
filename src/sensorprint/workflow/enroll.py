"""Use case: enroll a seized device from reference media taken with it.

Reference images and video frames are reduced to noise residuals in worker processes,
whose partial maximum-likelihood sums (Chen et al. 2008: K = ΣWᵢIᵢ / ΣIᵢ²) are merged
here, one estimate per sensor size: images give the full-sensor fingerprint, videos
one at their frame size. The sums are kept in the case, so enrolling more media later
refines the same fingerprint instead of starting again, and a reference file already
enrolled for the device is not read twice.
"""

from __future__ import annotations

import math
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.media import discover
from sensorprint.prnu import FingerprintAccumulator
from sensorprint.store import Case
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.parallel import default_workers, open_executor
from sensorprint.workflow.progress import Progress, no_progress
from sensorprint.workflow.signals import enrollment_part, landscape


@dataclass
class EnrollSummary:
    device: str
    added: int = 0
    already: int = 0
    errors: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        text = [
            f"{self.device}: {self.added} reference files added, {self.already} already enrolled, "
            f"{len(self.errors)} unreadable"
        ]
        text += [f"  fingerprint {line}" for line in self.fingerprints]
        text += [f"  error: {line}" for line in self.errors]
        return text


def _chunks(items: list, n_chunks: int) -> list[list]:
    size = max(1, math.ceil(len(items) / max(1, n_chunks)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _sums_path(case: Case, device_id: int, key: tuple[int, int]) -> Path:
    return case.arrays_dir / f"device{device_id}_sums_{key[1]}x{key[0]}.npz"


def load_sums(case: Case, device_id: int, key: tuple[int, int]) -> FingerprintAccumulator | None:
    path = _sums_path(case, device_id, key)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as state:
        return FingerprintAccumulator.from_state(dict(state))


def save_sums(case: Case, device_id: int, key: tuple[int, int], accumulator: FingerprintAccumulator) -> None:
    # written to a temporary name and renamed: a kill mid-write leaves the previous sums intact
    path = _sums_path(case, device_id, key)
    temporary = path.with_name(path.stem + ".partial.npz")
    np.savez(temporary, **accumulator.state())
    temporary.replace(path)


def enroll(
    case: Case,
    device_name: str,
    paths: list[Path],
    *,
    model: str | None = None,
    options: SignalOptions = SignalOptions(frame_strategy="even", n_frames=30),
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress = no_progress,
) -> EnrollSummary:
    """Add reference media to a device (created if new) and re-estimate its fingerprints."""
    for path in paths:
        if not Path(path).exists():
            raise CaseError(f"{path} does not exist: give the reference files or folders of {device_name}")
    device = case.get_device(device_name)
    if device is None:
        device = case.add_device(device_name, model=model)
    elif model and device.model and model != device.model:
        raise CaseError(f"device {device_name!r} is enrolled as model {device.model!r}, not {model!r}")
    run_id = case.start_run(
        "enroll", {"device": device_name, "model": model, "paths": [str(p) for p in paths], **options.to_dict()}
    )
    summary = EnrollSummary(device_name)
    status = "interrupted"
    try:
        enrolled = {m.path for m in case.list_media(role="reference", device_id=device.id)}
        files = [str(Path(p).resolve()) for p in discover(paths)]
        new = [f for f in files if f not in enrolled]
        summary.already = len(files) - len(new)
        n_workers = workers or default_workers()
        # one part per worker: each part returns its partial sums (4 sensor-size arrays) once
        parts = _chunks(new, n_workers)
        merged: dict[tuple[int, int], FingerprintAccumulator] = {}
        progress("enroll", 0, len(new))
        done = 0
        with open_executor(workers, scheduler) as executor:
            futures = [executor.submit(enrollment_part, part, options) for part in parts]
            for future in as_completed(futures):
                facts_list, accumulators = future.result()
                for key, accumulator in accumulators.items():
                    merged[key] = merged[key].merge(accumulator) if key in merged else accumulator
                for facts in facts_list:
                    case.add_medium(role="reference", device_id=device.id, run_id=run_id, **facts.store_fields())
                    if facts.error:
                        summary.errors.append(facts.error_line())
                    else:
                        summary.added += 1
                done += len(facts_list)
                progress("enroll", done, len(new))
        progress("fingerprint", 0, len(merged))
        for i, (key, accumulator) in enumerate(sorted(merged.items()), start=1):
            previous = load_sums(case, device.id, key)
            if previous is not None:
                accumulator = previous.merge(accumulator)
            save_sums(case, device.id, key, accumulator)
            fingerprint = accumulator.result()
            behind = [
                m
                for m in case.list_media(role="reference", device_id=device.id, status="ok")
                if landscape((m.height, m.width)) == key
            ]
            kinds = {m.kind for m in behind}
            case.save_fingerprint(
                device.id,
                fingerprint.k,
                n_media=len(behind),
                quality=fingerprint.quality,
                media_hashes=sorted(m.sha256 for m in behind),
                source=kinds.pop() if len(kinds) == 1 else "mixed",
                parameters=options.to_dict(),
            )
            summary.fingerprints.append(
                f"{key[1]}x{key[0]} from {len(behind)} media ({fingerprint.n_media} images or frames), "
                f"quality {fingerprint.quality:.3g}"
            )
            progress("fingerprint", i, len(merged))
        if summary.added:
            case.mark_models_stale(f"device {device_name} enrolled new reference media")
        status = "completed"
    finally:
        case.finish_run(run_id, status, {"added": summary.added, "errors": summary.errors[:100]})
    return summary
