"""Classifying images and videos with a trained network, and the open-set "unknown" answer.

An image is classified from its homogeneous patches (ESWA 2022) or as one frame; a video from
a few frames (SN CS 2022: five random frames), either whole frames or the patches of those
frames. Every unit (patch or frame) gets a softmax; the file's probabilities are the mean of its
units' softmaxes, its label the class of highest mean probability, and the majority vote of the
units is reported beside it (the papers' rule; it agrees with the mean in nearly all cases).
Open set ("unknown camera"): a softmax always sums to one, so its probability stays high even
for a camera the network never saw (measured: 0.987 mean probability for images without any
enrolled camera's pattern, against 0.999 for enrolled ones). The decision therefore uses the
*evidence*, the mean over the file's units of the winning class's logit (the MaxLogit score of
Hendrycks et al., "Scaling out-of-distribution detection for real-world settings", ICML 2022,
averaged over units as the papers average votes): in the same test it was 3.3 for unknown and
5.2–5.8 for enrolled images. When the evidence is below the threshold calibrated on held-out
validation files (see :mod:`sensorprint.learn.training`), the answer is "unknown".
That threshold, like the validation accuracy, holds for files like the references: a patch
network records how flat its reference files were, and an answer for a file less flat than
all of them (a scene, when the references were flat fields) carries a caveat saying so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from sensorprint.errors import MediaError, ModelError
from sensorprint.hashing import sha256_of_file
from sensorprint.learn.networks import build_network
from sensorprint.learn.onnx import OnnxRunner, torch_logits
from sensorprint.learn.patches import FrameParameters, PatchParameters, patches_and_flat_share, prepare_frame

UNKNOWN = "unknown"
RECORD_FILE = "training.json"
WEIGHTS_FILE = "weights.pt"
ONNX_FILE = "network.onnx"
RECORD_FORMAT = 1

InputKind = Literal["patches", "frames"]
Backend = Literal["auto", "torch", "onnxruntime"]


@dataclass(frozen=True)
class Prediction:
    """The network's answer for one file.

    probabilities : mean softmax of the file's units, per class (0 for every class when n_units is 0).
    label : the decided class; "unknown" when ``score`` is below ``threshold``; None when the file
        gave no unit to classify (e.g. an image smaller than one patch).
    score : mean probability of the best class.
    n_units : number of patches (images) or frames (videos) behind the answer.
    votes : per class, how many units voted for it (argmax of the unit's softmax).
    top_label : the best class before the open-set rule (None when n_units is 0).
    threshold : the open-set threshold on ``evidence`` (from the training record).
    unit : "patch" or "frame".
    evidence : mean logit of the best class over the units (the open-set score, see module doc).
    flat_share : for a patch network, the file's :func:`~sensorprint.learn.patches.flat_share`
        (mean over its frames); None for a frame network.
    caveat : why the answer deserves less weight than the validation accuracy suggests (the file
        is less flat than every reference file), or None.
    """

    probabilities: dict[str, float]
    label: str | None
    score: float
    n_units: int
    votes: dict[str, int]
    top_label: str | None
    threshold: float
    unit: str
    evidence: float = 0.0
    flat_share: float | None = None
    caveat: str | None = None

    @property
    def vote_label(self) -> str | None:
        """The majority-vote class (ties go to the higher mean probability)."""
        if self.n_units == 0:
            return None
        return max(self.votes, key=lambda c: (self.votes[c], self.probabilities[c]))

    def to_dict(self) -> dict:
        return asdict(self) | {"vote_label": self.vote_label}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of an N×C array of logits (float32)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def combine_unit_logits(unit_logits: np.ndarray, classes: Sequence[str], threshold: float, unit: str) -> Prediction:
    """One :class:`Prediction` from the N×C logits of a file's units.

    probabilities = mean of the units' softmaxes; top class = its argmax; votes = argmax per
    unit; evidence = mean logit of the top class; label = top class if evidence ≥ threshold,
    else "unknown".
    """
    n_units = int(unit_logits.shape[0])
    if n_units == 0:
        return Prediction(
            {c: 0.0 for c in classes}, None, 0.0, 0, {c: 0 for c in classes}, None, float(threshold), unit, 0.0
        )
    probabilities = softmax(unit_logits)
    mean = probabilities.astype(np.float64).mean(axis=0)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=len(classes))
    best = int(mean.argmax())
    evidence = float(unit_logits[:, best].astype(np.float64).mean())
    return Prediction(
        probabilities={c: float(p) for c, p in zip(classes, mean)},
        label=classes[best] if evidence >= threshold else UNKNOWN,
        score=float(mean[best]),
        n_units=n_units,
        votes={c: int(n) for c, n in zip(classes, counts)},
        top_label=classes[best],
        threshold=float(threshold),
        unit=unit,
        evidence=evidence,
    )


def units_and_flat_share(
    frames: Sequence[np.ndarray],
    kind: InputKind,
    patch: PatchParameters,
    frame: FrameParameters,
    *,
    max_units: int | None = None,
) -> tuple[np.ndarray, float | None]:
    """The network inputs (float32 N×3×h×w) of one file given as a list of H×W×3 arrays in 0..255,
    and, for patches, the file's flat share (mean over its frames; None for frames).

    "patches": the homogeneous patches of every frame, then evenly thinned to ``max_units``
    (default: ``patch.max_patches``) so a video weighs no more than an image; "frames": each
    frame landscape-rotated and centre-cropped (thinned evenly to ``max_units`` if given).
    """
    if len(frames) == 0:
        return np.zeros((0, 3, 1, 1), dtype=np.float32), None
    share = None
    if kind == "patches":
        parts, shares = zip(*(patches_and_flat_share(f, patch) for f in frames))
        units = np.concatenate(parts)
        share = float(np.mean(shares))
        limit = patch.max_patches if max_units is None else max_units
    elif kind == "frames":
        units = np.stack([prepare_frame(f, frame) for f in frames])
        limit = max_units
    else:
        raise ValueError(f"unknown input kind {kind!r}: use 'patches' or 'frames'")
    if limit is not None and len(units) > limit:
        units = units[np.linspace(0, len(units) - 1, limit).round().astype(np.int64)]
    return units, share


def content_caveat(share: float | None, record: dict) -> str | None:
    """A warning when a file is less flat than every reference file the network learned from.

    The network's validation accuracy and its "unknown" threshold were measured on held-out
    reference files; on content unlike all of them they are not known. Measured on dresden-nikon
    with a network trained on flat fields: 15/16 scenes right on D200 vs D70, but a threshold
    calibrated on held-out flats called up to 13/16 of them "unknown", and only 0-4 of 9 scenes
    from phones the network never saw (benchmarks/learn_dresden.py).
    """
    references = record.get("reference_flat_share") or {}
    least = references.get("min")
    if share is None or least is None or share >= least:
        return None
    return (
        f"the file's flat area ({100 * share:.1f}%) is smaller than every reference file's "
        f"(at least {100 * least:.1f}%): the network's accuracy and unknown-camera threshold "
        "were validated on flatter media only"
    )


@dataclass
class TrainedClassifier:
    """A trained network with its training record; classifies images and videos (see module doc).

    ``record`` is the JSON-serialisable training record (classes, media hashes, parameters,
    seed, validation accuracy, open-set threshold, tool version, training time, back-end).
    """

    network: nn.Module
    record: dict
    backend: str = "torch"
    onnx_runner: OnnxRunner | None = field(default=None, repr=False)
    batch_size: int = 64

    @property
    def classes(self) -> list[str]:
        return list(self.record["classes"])

    @property
    def kind(self) -> InputKind:
        return self.record["kind"]

    @property
    def target(self) -> str:
        return self.record["target"]

    @property
    def threshold(self) -> float:
        return float(self.record["open_set"]["threshold"])

    @property
    def patch_parameters(self) -> PatchParameters:
        # Networks saved before the high-pass input existed were trained on mean-subtracted pixels.
        saved = {"highpass": False, "normalise_contrast": False} | self.record["config"]["patch"]
        return PatchParameters(**saved)

    @property
    def frame_parameters(self) -> FrameParameters:
        return FrameParameters(**self.record["config"]["frame"])

    # -- the network on prepared units -------------------------------------------------------
    def unit_logits(self, units: np.ndarray) -> np.ndarray:
        """Logits (float32 N×C) of prepared units (float32 N×3×h×w), in batches."""
        out = np.zeros((len(units), len(self.classes)), dtype=np.float32)
        device = next(self.network.parameters()).device
        for start in range(0, len(units), self.batch_size):
            batch = units[start : start + self.batch_size].astype(np.float32, copy=False)
            if self.backend == "onnxruntime" and self.onnx_runner is not None:
                out[start : start + len(batch)] = self.onnx_runner(batch)
            else:
                out[start : start + len(batch)] = torch_logits(self.network, batch, device)
        return out

    def unit_probabilities(self, units: np.ndarray) -> np.ndarray:
        """Softmax (float32 N×C) of prepared units."""
        return softmax(self.unit_logits(units))

    def units(self, frames: Sequence[np.ndarray], *, max_units: int | None = None) -> np.ndarray:
        """The network inputs of one file (list of H×W×3 arrays in 0..255)."""
        return self._file_units(frames, max_units=max_units)[0]

    # -- public predictions ---------------------------------------------------------------
    def predict_image(self, pixels: np.ndarray) -> Prediction:
        """Classify one image (float32/uint8 H×W×3 RGB, 0..255): patch votes or one frame."""
        return self.predict_images([pixels])[0]

    def predict_images(
        self, images: Iterable[np.ndarray], *, progress: Callable[[int, int], None] | None = None
    ) -> list[Prediction]:
        """Classify many images; the units of several files go through the network together.

        ``images`` may be a generator (one image in memory at a time, besides the pending
        units); progress is called with (done, total), total 0 when the count is unknown.
        """
        total = len(images) if hasattr(images, "__len__") else 0
        predictions: list[Prediction] = []
        pending: list[np.ndarray] = []
        pending_shares: list[float | None] = []

        def flush() -> None:
            if not pending:
                return
            sizes = [len(u) for u in pending]
            logits = (
                self.unit_logits(np.concatenate(pending))
                if sum(sizes)
                else np.zeros((0, len(self.classes)), np.float32)
            )
            for chunk, share in zip(np.split(logits, np.cumsum(sizes)[:-1]), pending_shares):
                predictions.append(self._prediction(chunk, share))
            pending.clear()
            pending_shares.clear()

        for index, pixels in enumerate(images):
            units, share = self._file_units([np.asarray(pixels, dtype=np.float32)])
            pending.append(units if len(units) else np.zeros((0,) + self._input_shape, np.float32))
            pending_shares.append(share)
            if sum(len(u) for u in pending) >= 4 * self.batch_size:
                flush()
            if progress is not None:
                progress(index + 1, total)
        flush()
        return predictions

    def predict_video(self, frames: Sequence[np.ndarray]) -> Prediction:
        """Classify a video from its frames (e.g. 5 random frames, see ``choose_frame_indices``).

        Frame network: one softmax per frame, combined (mean probability and majority vote).
        Patch network: the homogeneous patches of all frames, combined the same way.
        """
        if len(frames) == 0:
            raise MediaError("no frames were given for the video; decode at least one frame")
        units, share = self._file_units([np.asarray(f, dtype=np.float32) for f in frames])
        return self._prediction(self.unit_logits(units), share)

    def _file_units(
        self, frames: Sequence[np.ndarray], *, max_units: int | None = None
    ) -> tuple[np.ndarray, float | None]:
        return units_and_flat_share(
            frames, self.kind, self.patch_parameters, self.frame_parameters, max_units=max_units
        )

    def _prediction(self, unit_logits: np.ndarray, share: float | None) -> Prediction:
        prediction = combine_unit_logits(unit_logits, self.classes, self.threshold, self._unit_name)
        return replace(prediction, flat_share=share, caveat=content_caveat(share, self.record))

    @property
    def _unit_name(self) -> str:
        return "patch" if self.kind == "patches" else "frame"

    @property
    def _input_shape(self) -> tuple[int, int, int]:
        return input_shape(self.kind, self.patch_parameters, self.frame_parameters)

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: Path | str) -> Path:
        """Write weights.pt, network.onnx (when exported) and training.json into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / WEIGHTS_FILE
        state = {k: v.detach().cpu() for k, v in self.network.state_dict().items()}
        torch.save(state, weights)
        record = dict(self.record)
        record["weights_sha256"] = sha256_of_file(weights)
        onnx_path = directory / ONNX_FILE
        record.pop("onnx_sha256", None)
        try:  # ONNX is an optimisation for CPU inference; the weights alone are enough
            from sensorprint.learn.onnx import export_onnx

            export_onnx(copy.deepcopy(self.network).cpu(), self._input_shape, onnx_path)
            record["onnx_sha256"] = sha256_of_file(onnx_path)
        except Exception:  # noqa: BLE001
            onnx_path.unlink(missing_ok=True)
        (directory / RECORD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
        self.record = record
        return directory


def input_shape(kind: InputKind, patch: PatchParameters, frame: FrameParameters) -> tuple[int, int, int]:
    """C×H×W of one network input."""
    if kind == "patches":
        return (3, patch.size, patch.size)
    return (3, frame.crop_height, frame.crop_width)


def network_from_record(record: dict) -> nn.Module:
    """An untrained network with the architecture the record describes."""
    config = record["config"]
    return build_network(
        config["network"],
        len(record["classes"]),
        patch_size=config["patch"]["size"],
        constrained=config["constrained"],
        width=config.get("width", 1.0),
    )


def load_classifier(
    directory: Path | str, *, backend: Backend = "auto", device: str | None = None
) -> TrainedClassifier:
    """Load a classifier saved by :meth:`TrainedClassifier.save`; checks the files' hashes.

    backend : "auto" uses what the record chose at training time (the faster one measured then),
        "torch" or "onnxruntime" force one.
    """
    directory = Path(directory)
    record_path, weights = directory / RECORD_FILE, directory / WEIGHTS_FILE
    if not record_path.is_file() or not weights.is_file():
        raise ModelError(f"no trained network in {directory}; run `sensorprint train` for this case first")
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError as error:
        raise ModelError(f"the training record {record_path} is damaged ({error}); retrain the network") from error
    if record.get("format") != RECORD_FORMAT:
        raise ModelError(
            f"the network in {directory} has record format {record.get('format')}, expected {RECORD_FORMAT}; retrain it"
        )
    if record.get("weights_sha256") != sha256_of_file(weights):
        raise ModelError(f"the weights in {weights} do not match their training record; retrain the network")
    network = network_from_record(record)
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    target_device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    network = network.to(target_device).eval()
    onnx_path = directory / ONNX_FILE
    if backend == "auto":
        if target_device != "cpu":
            chosen = "torch"  # onnxruntime runs on the CPU here; on a GPU torch is faster
        else:
            measured = record.get("inference", {})
            # The record's choice was measured on a CPU at training time; trained on a GPU, prefer ONNX.
            chosen = measured.get("backend", "torch") if "seconds_per_unit" in measured else "onnxruntime"
        if chosen == "onnxruntime" and not onnx_path.is_file():
            chosen = "torch"
    else:
        chosen = backend
    runner = None
    if chosen == "onnxruntime":
        if not onnx_path.is_file():
            raise ModelError(f"no ONNX export in {directory}; load with backend='torch' or retrain")
        if record.get("onnx_sha256") != sha256_of_file(onnx_path):
            raise ModelError(f"the ONNX file {onnx_path} does not match its training record; retrain the network")
        runner = OnnxRunner(onnx_path)
    return TrainedClassifier(network=network, record=record, backend=chosen, onnx_runner=runner)
