"""Use case: train the CNN of the founding papers on the enrolled devices' reference media.

Bennabhaktula et al. 2022 (ESWA: camera model from homogeneous patches; SN Computer
Science: camera device from video frames). The classes are the enrolled devices
(`target="device"`) or the camera models given at enrollment with `--model`
(`target="model"`). Every ok reference medium of every enrolled device is one training
file: the pixels are read again through `sensorprint.media` and checked against the
SHA-256 recorded at enrollment, so a network is only ever trained on the media the case
says it was trained on. The split into training and validation files, the early stopping
and the open-set threshold are `sensorprint.learn`'s (see `learn.training`).

The network is written under `case.models_dir` and registered with `Case.save_model`,
which drops the earlier CNN results of that target in the same transaction: the next scan
classifies every file again with the new network instead of mixing two networks' answers.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from sensorprint.errors import CaseError, MediaError, SensorprintError
from sensorprint.media import read_frames, read_image, sha256_file
from sensorprint.results import TargetKind
from sensorprint.store import Case
from sensorprint.store.records import Device, MediumRecord
from sensorprint.workflow.progress import Progress, no_progress

Target = Literal["device", "model"]

# Above this least flat share the references are flat fields (dresden flats: 0.998 and more;
# VISION's "flat" skies and walls: 0.09 and more), and the summary warns about scenes.
FLAT_REFERENCES = 0.9

# Frames read from each reference video: the frame network sees each as one unit (the fast
# CPU configuration uses at most 20 per file); the patch network pools the homogeneous
# patches of a few frames and thins them to its per-file cap anyway.
VIDEO_FRAMES = {"frames": 20, "patches": 5}


@dataclass
class TrainSummary:
    """What `train` did: the network registered in the case and the facts of its training."""

    run_id: int
    target: str
    model_id: int | None = None
    path: str | None = None
    kind: str | None = None
    network: str | None = None
    classes: list[str] = field(default_factory=list)
    files_per_class: dict[str, int] = field(default_factory=dict)
    n_training_files: int = 0
    n_validation_files: int = 0
    epochs_run: int = 0
    best_epoch: int = 0
    validation_accuracy: float | None = None
    unknown_threshold: float | None = None
    backend: str | None = None
    seconds: float = 0.0
    cpu_seconds: float | None = None  # CPU time of the training (all threads), as learn records it
    results_dropped: bool = False
    least_flat_share: float | None = None  # of the reference files (patch networks), see learn.content_caveat

    @property
    def references_are_flat(self) -> bool:
        """Every reference file is at least FLAT_REFERENCES flat (patch networks): the accuracy
        and the threshold were measured on flat fields, not on scenes."""
        return self.least_flat_share is not None and self.least_flat_share >= FLAT_REFERENCES


@dataclass(frozen=True)
class ReferenceFile:
    """One ok reference medium of an enrolled device, with its class label."""

    label: str
    device: str
    path: str
    sha256: str
    kind: str


def reference_files(case: Case, target: Target) -> list[ReferenceFile]:
    """The ok reference media of every enrolled device, labelled by device name or camera model.

    Raises CaseError when a device has no model label (target "model") or fewer than 2 classes
    have reference media.
    """
    devices: list[Device] = case.list_devices()
    if target == "model":
        missing = sorted(d.name for d in devices if not d.model)
        if missing:
            raise CaseError(
                f"devices without a camera model: {', '.join(missing)}; enroll them again with "
                "--model 'MAKE MODEL' (or train with --target device)"
            )
    files: list[ReferenceFile] = []
    for device in devices:
        media: list[MediumRecord] = case.list_media(role="reference", device_id=device.id, status="ok")
        for medium in media:
            if medium.kind not in ("image", "video") or not medium.sha256:
                continue
            label = device.model if target == "model" else device.name
            files.append(ReferenceFile(label, device.name, medium.path, medium.sha256, medium.kind))
    classes = sorted({f.label for f in files})
    if len(classes) < 2:
        what = "camera models" if target == "model" else "devices"
        found = f" (only {classes[0]!r})" if classes else ""
        raise CaseError(
            f"training needs reference media of at least 2 {what}{found}; enroll another "
            f"{'device of another model' if target == 'model' else 'device'} first"
        )
    return files


def _check_hash(path: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise CaseError(
            f"reference file {path} changed since it was enrolled (SHA-256 differs); "
            "restore the original or enroll the device again"
        )


def load_reference(reference: ReferenceFile, input_kind: str, seed: int = 0) -> list[np.ndarray]:
    """The pixels of one reference file for training: [image] or the chosen video frames.

    Images and frames are float32 H×W×3 in 0..255 as `sensorprint.media` gives them; the file
    must still have the SHA-256 recorded at enrollment (CaseError otherwise).
    """
    path = Path(reference.path)
    try:
        if reference.kind == "image":
            image = read_image(path)
            _check_hash(reference.path, reference.sha256, image.medium.sha256)
            return [image.pixels]
        _check_hash(reference.path, reference.sha256, sha256_file(path))
        n = VIDEO_FRAMES.get(input_kind, 5)
        frames = [frame.pixels for frame in read_frames(path, strategy="even", n=n, seed=seed, threads=1)]
    except FileNotFoundError as error:
        raise CaseError(f"reference file {reference.path} is missing; restore it or enroll the device again") from error
    except MediaError as error:
        raise CaseError(f"reference file {reference.path} can no longer be read ({error}); restore it") from error
    if not frames:
        raise CaseError(f"reference video {reference.path} gave no frame; restore it or enroll the device again")
    return frames


def choose_kind(target: Target, references: list[ReferenceFile]) -> str:
    """The input of the network: homogeneous patches for the camera model (ESWA 2022) and for a
    device enrolled from images; whole frames for devices enrolled mostly from videos (SN CS 2022)."""
    if target == "model":
        return "patches"
    kinds = Counter(r.kind for r in references)
    return "frames" if kinds["video"] * 2 > len(references) else "patches"


def _check_arguments(target: str, epochs: int | None) -> None:
    """CaseError for a target or an epoch count that cannot be trained."""
    if target not in tuple(TargetKind):
        raise CaseError(f"unknown target {target!r}: use one of {', '.join(TargetKind)}")
    if epochs is not None and epochs < 1:
        raise CaseError(f"--epochs must be at least 1, not {epochs}")


def _training_config(config, kind: str, *, epochs: int | None, units_per_file: int | None, seed: int):
    """The `learn.TrainingConfig` of this run: `config` (default: the method's for `kind`, see
    `learn.default_config`) with the kind, the epochs, the units per file and the seed asked for."""
    from sensorprint.learn import default_config  # torch only when training

    config = replace(config, kind=kind) if config is not None else default_config(kind)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if units_per_file is not None:
        if units_per_file < 1:
            raise CaseError(f"--units-per-file must be at least 1, not {units_per_file}")
        config = replace(
            config, patch=replace(config.patch, max_patches=units_per_file), max_units_per_file=units_per_file
        )
    return replace(config, seed=seed)


def _run_parameters(target: str, kind: str, epochs: int, seed: int, references: list[ReferenceFile]) -> dict:
    """What the case's run log records as this training run's parameters."""
    return {
        "target": target,
        "kind": kind,
        "epochs": epochs,
        "seed": seed,
        "classes": sorted({r.label for r in references}),
        "n_files": len(references),
        "video_frames": {"strategy": "even", "n": VIDEO_FRAMES.get(kind, 5)},
    }


def _add_case_facts(record: dict, references: list[ReferenceFile], parameters: dict, run_id: int) -> None:
    """Add to the training record what the case knows: where each file was and whose it is (the
    record names every training file by its hash), what the labels are, the frames read, the run."""
    path_of = {r.sha256: r for r in references}
    for entry in record["media"]:
        reference = path_of.get(entry["sha256"])
        if reference is not None:
            entry["path"], entry["device"] = reference.path, reference.device
    record["labels"] = (
        "camera models given at enrollment (--model)" if parameters["target"] == "model" else "enrolled device names"
    )
    record["video_frames"] = parameters["video_frames"]
    record["case_run_id"] = run_id


def _fill_summary(summary: TrainSummary, model_id: int, directory: Path, kind: str, classifier) -> None:
    """Copy the facts of the registered network's training record into `summary`."""
    record = classifier.record
    split = Counter(entry["split"] for entry in record["media"])
    summary.model_id = model_id
    summary.path = str(directory)
    summary.kind = kind
    summary.network = record["config"]["network"]
    summary.classes = list(classifier.classes)
    summary.files_per_class = dict(record["files_per_class"])
    summary.n_training_files = split["train"]
    summary.n_validation_files = split["validation"]
    summary.epochs_run = record["epochs_run"]
    summary.best_epoch = record["best_epoch"]
    summary.validation_accuracy = record["validation"]["file_accuracy"]
    summary.unknown_threshold = record["open_set"]["threshold"]
    summary.backend = record["inference"]["backend"]
    summary.cpu_seconds = record.get("training_cpu_seconds")
    summary.least_flat_share = (record.get("reference_flat_share") or {}).get("min")


def _train_and_register(
    case: Case,
    summary: TrainSummary,
    samples: list,
    references: list[ReferenceFile],
    config,
    parameters: dict,
    progress: Progress,
) -> None:
    """Train the network, save it under `case.models_dir`, register it in the case (dropping the
    earlier CNN results of its target) and fill `summary` in."""
    from sensorprint.learn import train_classifier  # torch only when training

    target, run_id = parameters["target"], summary.run_id
    started = time.perf_counter()
    classifier = train_classifier(
        samples,
        target=target,
        kind=parameters["kind"],
        config=config,
        progress=lambda done, total: progress("train", done, total),
    )
    _add_case_facts(classifier.record, references, parameters, run_id)
    directory = case.models_dir / f"{target}-run{run_id}"
    classifier.save(directory)
    seconds = time.perf_counter() - started
    had_results = bool(case.results(method="cnn", target_kind=target))
    model = case.save_model(target, directory, classifier.classes, classifier.record, run_id=run_id)
    _fill_summary(summary, model.id, directory, parameters["kind"], classifier)
    summary.seconds = seconds
    summary.results_dropped = had_results


def train(
    case: Case,
    *,
    target: Target = "device",
    epochs: int | None = None,
    seed: int = 0,
    kind: str | None = None,
    units_per_file: int | None = None,
    config=None,
    progress: Progress = no_progress,
) -> TrainSummary:
    """Train the `target` network ("device" or "model") on the case's reference media and register it.

    epochs: maximum number of epochs (default: the method's, see `learn.default_config`).
    seed: seeds the split, the sampling and the initialisation: same seed and media, same network.
    kind: "patches" or "frames" (default: `choose_kind`); config: a full `learn.TrainingConfig`.
    units_per_file: at most this many patches (or frames) per reference file (default: the
        method's; fewer train faster and less accurately).
    progress: called as progress("train", done, total) per file read and per epoch.
    """
    _check_arguments(target, epochs)
    references = reference_files(case, target)

    from sensorprint.learn import TrainingSample  # torch only when training

    kind = kind or (config.kind if config is not None else choose_kind(target, references))
    config = _training_config(config, kind, epochs=epochs, units_per_file=units_per_file, seed=seed)
    samples = [TrainingSample(r.label, r.sha256, r.kind, lambda r=r: load_reference(r, kind, seed)) for r in references]
    parameters = _run_parameters(target, kind, config.epochs, seed, references)
    run_id = case.start_run("train", parameters)
    summary = TrainSummary(run_id=run_id, target=target)
    status = "interrupted"
    failure: str | None = None
    try:
        _train_and_register(case, summary, samples, references, config, parameters, progress)
        status = "completed"
    except SensorprintError as error:
        status, failure = "failed", str(error)
        raise
    finally:
        # The run log keeps what was done even when it failed or was interrupted.
        recorded = {k: v for k, v in summary.__dict__.items() if k != "files_per_class"}
        case.finish_run(run_id, status, recorded | ({"error": failure} if failure else {}))
    return summary
