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
from sensorprint.store import Case
from sensorprint.store.records import Device, MediumRecord
from sensorprint.workflow.classify import TARGET_NAMES
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

    def lines(self) -> list[str]:
        name = TARGET_NAMES[self.target]
        per_class = ", ".join(f"{c} {n}" for c, n in sorted(self.files_per_class.items()))
        accuracy = "n/a" if self.validation_accuracy is None else f"{self.validation_accuracy:.2f}"
        threshold = "n/a" if self.unknown_threshold is None else f"{self.unknown_threshold:.3g}"
        return [
            f"train run {self.run_id}: {name} network {self.model_id} ({self.network} on {self.kind}), "
            f"{len(self.classes)} classes from {self.n_training_files + self.n_validation_files} reference files "
            f"({per_class})",
            f"  {self.epochs_run} epochs (best {self.best_epoch}) in {self.seconds:.0f} s"
            + (f" ({self.cpu_seconds:.0f} CPU s)" if self.cpu_seconds is not None else "")
            + "; validation accuracy "
            f"{accuracy} on {self.n_validation_files} held-out files; unknown-camera threshold {threshold} "
            f"(mean top-class logit); inference with {self.backend}",
            f"  saved in {self.path}; run `sensorprint scan` to classify the evidence with it"
            + (" (earlier CNN results of this target were dropped)" if self.results_dropped else ""),
        ] + (
            [
                f"  every reference file is at least {100 * self.least_flat_share:.1f}% flat: answers for less flat files "
                "(scenes) will say that the accuracy and threshold above were measured on flatter media only"
            ]
            if self.least_flat_share is not None and self.least_flat_share >= FLAT_REFERENCES
            else []
        )


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
    if target not in ("device", "model"):
        raise CaseError(f"unknown target {target!r}: use device or model")
    if epochs is not None and epochs < 1:
        raise CaseError(f"--epochs must be at least 1, not {epochs}")
    references = reference_files(case, target)

    from sensorprint.learn import TrainingSample, default_config, train_classifier  # torch only when training

    kind = kind or (config.kind if config is not None else choose_kind(target, references))
    config = replace(config, kind=kind) if config is not None else default_config(kind)
    if epochs is not None:
        config = replace(config, epochs=epochs)
    if units_per_file is not None:
        if units_per_file < 1:
            raise CaseError(f"--units-per-file must be at least 1, not {units_per_file}")
        config = replace(
            config, patch=replace(config.patch, max_patches=units_per_file), max_units_per_file=units_per_file
        )
    config = replace(config, seed=seed)
    samples = [TrainingSample(r.label, r.sha256, r.kind, lambda r=r: load_reference(r, kind, seed)) for r in references]
    parameters = {
        "target": target,
        "kind": kind,
        "epochs": config.epochs,
        "seed": seed,
        "classes": sorted({r.label for r in references}),
        "n_files": len(references),
        "video_frames": {"strategy": "even", "n": VIDEO_FRAMES.get(kind, 5)},
    }
    run_id = case.start_run("train", parameters)
    summary = TrainSummary(run_id=run_id, target=target)
    status = "interrupted"
    failure: str | None = None
    try:
        started = time.perf_counter()
        classifier = train_classifier(
            samples,
            target=target,
            kind=kind,
            config=config,
            progress=lambda done, total: progress("train", done, total),
        )
        record = classifier.record
        path_of = {r.sha256: r for r in references}
        # The record names every training file by its hash; the case adds where it was and whose it is.
        for entry in record["media"]:
            reference = path_of.get(entry["sha256"])
            if reference is not None:
                entry["path"], entry["device"] = reference.path, reference.device
        record["labels"] = (
            "camera models given at enrollment (--model)" if target == "model" else "enrolled device names"
        )
        record["video_frames"] = parameters["video_frames"]
        record["case_run_id"] = run_id
        directory = case.models_dir / f"{target}-run{run_id}"
        classifier.save(directory)
        seconds = time.perf_counter() - started
        had_results = bool(case.results(method="cnn", target_kind=target))
        model = case.save_model(target, directory, classifier.classes, classifier.record, run_id=run_id)
        validation = record["validation"]
        split = Counter(entry["split"] for entry in record["media"])
        summary.model_id = model.id
        summary.path = str(directory)
        summary.kind = kind
        summary.network = record["config"]["network"]
        summary.classes = list(classifier.classes)
        summary.files_per_class = dict(record["files_per_class"])
        summary.n_training_files = split["train"]
        summary.n_validation_files = split["validation"]
        summary.epochs_run = record["epochs_run"]
        summary.best_epoch = record["best_epoch"]
        summary.validation_accuracy = validation["file_accuracy"]
        summary.unknown_threshold = record["open_set"]["threshold"]
        summary.backend = record["inference"]["backend"]
        summary.seconds = seconds
        summary.cpu_seconds = record.get("training_cpu_seconds")
        summary.results_dropped = had_results
        summary.least_flat_share = (record.get("reference_flat_share") or {}).get("min")
        status = "completed"
    except SensorprintError as error:
        status, failure = "failed", str(error)
        raise
    finally:
        recorded = {k: v for k, v in summary.__dict__.items() if k != "files_per_class"}
        case.finish_run(run_id, status, recorded | ({"error": failure} if failure else {}))
    return summary
