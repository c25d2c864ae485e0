"""The CNN beside PRNU: which networks a scan uses, and their result rows for one file.

A case holds at most one current network per target ("device": which enrolled camera,
"model": which camera model), trained by `sensorprint train` (Bennabhaktula et al. 2022).
The scan worker classifies the pixels that `query_signal` kept (the image, or the video
frames used for PRNU), so a file is read once for both methods. The answer is stored as
one result row per class: score = the class probability (mean softmax of the file's
patches or frames), decision "match" for the predicted class and "no match" for the
others, or "unknown" on every row when the evidence (mean top-class logit) is below the
open-set threshold calibrated on held-out reference files.

Workers get a `NetworkRef` (picklable) and load the network once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorprint.errors import MediaError
from sensorprint.media import sha256_file
from sensorprint.results import Match, TargetKind
from sensorprint.store import Case
from sensorprint.workflow.files import FileFacts, fail, read_medium, stat_file
from sensorprint.workflow.options import SignalOptions

WEIGHTS_FILE = "weights.pt"  # as written by sensorprint.learn (TrainedClassifier.save)
TARGET_NAMES = {TargetKind.DEVICE: "camera-device", TargetKind.MODEL: "camera-model"}


@dataclass(frozen=True)
class NetworkRef:
    """Where a worker finds one trained network, and what the case says about it."""

    model_id: int
    target_kind: str  # "device" or "model"
    path: str
    classes: tuple[str, ...]
    stale_reason: str | None = None
    threads: int | None = None  # torch threads in the worker (1 when several workers share the cores)

    @property
    def title(self) -> str:
        return f"{TARGET_NAMES[self.target_kind]} network {self.model_id}"


def current_networks(case: Case, *, threads: int | None = None) -> tuple[list[NetworkRef], list[str]]:
    """The newest network of each target, checked against the case; plus lines about them.

    A network whose weights are missing or differ from the SHA-256 recorded when it was
    registered is not used (a line says so): its answers could not be reproduced. A stale
    network (a device enrolled after training) is used, and a line says it is stale.
    """
    refs: list[NetworkRef] = []
    lines: list[str] = []
    for target in TargetKind:
        model = case.latest_model(target)
        if model is None:
            continue
        stale = (model.stale_reason or "stale") if model.stale else None
        ref = NetworkRef(model.id, target, str(model.path), tuple(model.classes), stale, threads)
        weights = Path(model.path) / WEIGHTS_FILE
        expected = (model.record or {}).get("weights_sha256")
        if not weights.is_file():
            lines.append(
                f"{ref.title} not used: its weights {weights} are missing; "
                f"run `sensorprint train CASE --target {target}` again"
            )
            continue
        if expected and sha256_file(weights) != expected:
            lines.append(
                f"{ref.title} not used: its weights {weights} changed after training (SHA-256 differs); "
                f"run `sensorprint train CASE --target {target}` again"
            )
            continue
        if ref.stale_reason:
            lines.append(
                f"{ref.title} is stale ({ref.stale_reason}): its classes are {', '.join(ref.classes)}; "
                f"run `sensorprint train CASE --target {target}` to include every enrolled device"
            )
        refs.append(ref)
    return refs, lines


def networks_done(case: Case, medium_id: int, networks: list[NetworkRef]) -> set[int]:
    """The ids of the given networks that already have results for this medium."""
    done: set[int] = set()
    for ref in networks:
        rows = case.results(medium_id=medium_id, method="cnn", target_kind=ref.target_kind)
        if any(row.evidence.model_id == ref.model_id for row in rows):
            done.add(ref.model_id)
    return done


_classifiers: dict[tuple[int, str], Any] = {}


def load_network(ref: NetworkRef):
    """The `learn.TrainedClassifier` of a network, loaded once per process (hashes checked by learn)."""
    key = (ref.model_id, ref.path)
    if key not in _classifiers:
        import torch

        from sensorprint.learn import load_classifier

        if ref.threads:
            torch.set_num_threads(ref.threads)
        _classifiers[key] = load_classifier(ref.path)
    return _classifiers[key]


def prediction_rows(ref: NetworkRef, prediction, *, is_video: bool, frames: list[dict] | None = None) -> list[Match]:
    """One match per class of the network for one file's `learn.Prediction` (`learn.answers`)."""
    from sensorprint.learn.answers import NetworkIdentity, prediction_matches

    identity = NetworkIdentity(ref.model_id, ref.title, TargetKind(ref.target_kind), ref.classes, ref.stale_reason)
    return prediction_matches(identity, prediction, is_video=is_video, frames=frames)


def classify_pixels(ref: NetworkRef, pixels: list[np.ndarray], *, is_video: bool):
    """The network's `learn.Prediction` for one file: an image, or the frames of a video."""
    classifier = load_network(ref)
    if is_video:
        return classifier.predict_video(pixels)
    return classifier.predict_image(pixels[0])


def classify_rows(
    networks: list[NetworkRef], pixels: list[np.ndarray], *, is_video: bool, frames: list[dict] | None = None
) -> tuple[list[Match], list[str]]:
    """The matches of every given network for one file's pixels, and one line per network that failed.

    A failure (e.g. a network file damaged since the scan began) costs that network's rows
    for this file only; the file is classified again by the next scan.
    """
    rows: list[Match] = []
    errors: list[str] = []
    if not pixels:
        return rows, [f"{ref.title}: no pixels were kept for the file" for ref in networks]
    for ref in networks:
        try:
            prediction = classify_pixels(ref, pixels, is_video=is_video)
        except Exception as error:  # noqa: BLE001 - one network failing must not lose the PRNU results
            text = " ".join(str(error).split()) or type(error).__name__
            errors.append(f"{ref.title}: {text}")
            continue
        rows += prediction_rows(ref, prediction, is_video=is_video, frames=frames)
    return rows, errors


def read_pixels(path: Path, options: SignalOptions) -> tuple[FileFacts, list[np.ndarray], list[dict]]:
    """The pixels the CNN needs from a file, without the PRNU residual (for a file PRNU is done with).

    Returns the file's facts, [image] or the video frames `options` choose (the same frames
    `query_signal` uses), and the chosen frames' index, time and keyframe flag. Errors become a
    one-line message in the facts, as in `query_signal`.
    """
    size, mtime = stat_file(path)
    facts = FileFacts(path=str(path), size_bytes=size, mtime_ns=mtime)
    try:
        facts.medium, image, frames = read_medium(path, options, facts)
        if image is not None:
            return facts, [image], []
        frames = list(frames)  # the same frames as signals.query_signal reads (a test checks they agree)
        if not frames:
            raise MediaError(f"{path.name}: no frame could be decoded")
        chosen = [{"index": f.index, "time_s": round(f.time_s, 3), "keyframe": f.keyframe} for f in frames]
        return facts, [f.pixels for f in frames], chosen
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the run
        fail(facts, error)
        return facts, [], []


def worker_threads(workers: int | None, scheduler: str | None) -> int | None:
    """Torch threads per worker: 1 when several local workers share the cores, else torch's default."""
    if scheduler:
        return 1
    if workers is None:
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:
            workers = os.cpu_count() or 1
    return 1 if workers > 1 else None
