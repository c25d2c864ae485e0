"""Training a classifier on the reference media of enrolled devices (or camera models).

Follows the founding papers (see ../shared/PAPERS.md): the patch network (MISLNet-style, ESWA
2022: SGD lr 0.1, momentum 0.9, weight decay 5e-4, decay ×0.9 per epoch, balanced classes) and the
frame network (MobileNetV3-Small, SN CS 2022: SGD lr 0.1, momentum 0.95, warm-up then cosine
decay, the epoch of best validation accuracy kept). Beyond the papers, for a forensic tool:

- the validation split is BY FILE (never units of one file on both sides), stratified by class,
  deterministic for a given seed and set of hashes (independent of the order of the samples);
- early stopping on the validation FILE accuracy (ties: lower validation loss), best epoch kept;
- every epoch draws the same number of units from every class (balanced, with a fixed seed);
- the open-set threshold is calibrated on the held-out validation files. The score is the
  evidence of :mod:`sensorprint.learn.inference` (mean true-class logit of the file's units);
  a case holds few validation files (often 1–3 per class), whose empirical 5th percentile is just
  their minimum, so the threshold is the normal prediction bound of :func:`calibrate_threshold`
  at ``open_set_quantile`` (default 5%): about 95% of new files of an enrolled class pass it.

CPU cost (2 cores, measured with torch 2.14 on this project's machine when idle): MISLNet trains
~96 patches/s at 128×128 (~600/s at 64×64) and infers ~260/s (torch) or ~790/s (onnxruntime);
MobileNetV3-Small trains ~9 frames/s at the paper's 480×800 and ~80/s at 256×256. The paper
settings (45 epochs × 200 patches per image; 20 epochs × 50 frames per video at 480×800) are GPU
settings: for the 60 dresden flats that is 9,600 patches an epoch, ~100 s, ~75 min for 45 epochs.
:func:`default_config` therefore picks :meth:`TrainingConfig.fast` on a CPU: 48 patches per image
(2,304 an epoch for dresden, ~25 s), at most 12 epochs with early stopping (patience 4), batch 64,
lr 0.01; frames: a 240×400 centre crop, 20 frames per video, 12 epochs. What this costs in
accuracy could not be measured here (no GPU for the paper settings); see benchmarks/learn_*.py
for the figures that were measured. The record stores every setting used.

Patches reach the network as unit-contrast high-pass residuals (see
:mod:`sensorprint.learn.patches`), in both settings: a case's reference media are often flat
fields while its evidence is natural scenes, and the papers' mean-subtracted pixels transfer
badly from the one to the other (dresden-nikon, model network trained on the flats, D200 vs
D70/D70s: 11/16 naturals right with the papers' input, 15/16 with the residual; three models:
3-4/16 and 7-10/16). ``patch=PatchParameters(highpass=False, normalise_contrast=False)`` gives the papers'
input.
"""

from __future__ import annotations

import copy
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from sensorprint.errors import ModelError
from sensorprint.learn.inference import (
    RECORD_FORMAT,
    UNKNOWN,
    InputKind,
    TrainedClassifier,
    combine_unit_logits,
    input_shape,
    units_and_flat_share,
)
from sensorprint.learn.networks import build_network, project_constrained_layers
from sensorprint.learn.patches import FrameParameters, PatchParameters

Target = Literal["device", "model"]


@dataclass(frozen=True)
class TrainingSample:
    """One reference file: its class label, its SHA-256, its kind, and how to read its pixels.

    load() returns a list of float32 H×W×3 RGB arrays with values 0..255: one array for an
    image, the chosen frames (e.g. I-frames or evenly spaced frames) for a video.
    """

    label: str
    sha256: str
    kind: Literal["image", "video"]
    load: Callable[[], list[np.ndarray]]


@dataclass(frozen=True)
class TrainingConfig:
    """Every parameter of a training run (all stored in the training record).

    kind : "patches" (MISLNet on homogeneous patches) or "frames" (MobileNetV3-Small on frames).
    constrained : constrained first layer (Bayar & Stamm, colour) in front of the network.
    width : MobileNetV3-Small width multiplier (1.0, 0.75, 0.5); frames only.
    patch, frame : unit selection parameters (see :mod:`sensorprint.learn.patches`).
    max_units_per_file : at most this many units per file (patches: defaults to patch.max_patches;
        frames: the video's frames are thinned evenly to it).
    epochs : maximum number of epochs; patience : stop after this many epochs without a better
        validation file accuracy.
    batch_size, learning_rate, momentum, weight_decay : SGD settings.
    schedule : "exponential" (lr × lr_decay per epoch, ESWA 2022) or "cosine" (after
        warmup_epochs of linear warm-up, SN CS 2022).
    units_per_class_per_epoch : units drawn from every class per epoch (None: as many as the
        largest class has, smaller classes are drawn with repetition).
    gain_augmentation : training patches are multiplied by exp(u), u uniform in ±this value
        (0: off, the papers' setting), so the network cannot rely on the noise LEVEL, which
        depends on exposure and ISO rather than on the camera.
    validation_fraction : share of each class's files held out (at least one file per class).
    open_set_quantile : quantile of the validation true-class scores used as the threshold.
    seed : seeds the split, the sampling, the initialisation and the dropout.
    device : "auto" (CUDA when present), "cpu" or "cuda".
    """

    kind: InputKind = "patches"
    constrained: bool = False
    width: float = 1.0
    patch: PatchParameters = field(default_factory=PatchParameters)
    frame: FrameParameters = field(default_factory=FrameParameters)
    max_units_per_file: int | None = None
    epochs: int = 45
    patience: int = 10
    batch_size: int = 512
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["exponential", "cosine"] = "exponential"
    lr_decay: float = 0.9
    warmup_epochs: int = 0
    units_per_class_per_epoch: int | None = None
    gain_augmentation: float = 0.0
    validation_fraction: float = 0.2
    open_set_quantile: float = 0.05
    seed: int = 0
    device: str = "auto"

    @property
    def network(self) -> str:
        return "mislnet" if self.kind == "patches" else "mobilenetv3_small"

    @classmethod
    def paper(cls, kind: InputKind) -> TrainingConfig:
        """The founding papers' training settings (meant for a GPU); the patch input stays the
        project's high-pass residual (see the module doc)."""
        if kind == "patches":
            return cls(kind="patches")
        return cls(
            kind="frames",
            epochs=20,
            patience=20,
            batch_size=32,
            learning_rate=0.1,
            momentum=0.95,
            weight_decay=0.0,
            schedule="cosine",
            warmup_epochs=3,
            max_units_per_file=50,
        )

    @classmethod
    def fast(cls, kind: InputKind) -> TrainingConfig:
        """Settings that train ~10 classes in minutes on 2 CPU cores (see the module doc)."""
        if kind == "patches":
            return cls(
                kind="patches",
                patch=PatchParameters(max_patches=48),
                epochs=12,
                patience=4,
                batch_size=64,
                learning_rate=0.01,
                units_per_class_per_epoch=None,
            )
        return cls(
            kind="frames",
            frame=FrameParameters(240, 400),
            epochs=12,
            patience=4,
            batch_size=16,
            learning_rate=0.02,
            momentum=0.9,
            weight_decay=0.0,
            schedule="cosine",
            warmup_epochs=1,
            max_units_per_file=20,
        )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["network"] = self.network
        return out


def default_config(kind: InputKind, device: str = "auto") -> TrainingConfig:
    """The papers' settings on a GPU, :meth:`TrainingConfig.fast` on a CPU."""
    on_gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return TrainingConfig.paper(kind) if on_gpu else TrainingConfig.fast(kind)


def split_by_file(
    samples: Sequence[TrainingSample], validation_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices of the training and validation files, stratified by label, by whole files.

    Every class keeps at least one training and one validation file. The result depends only
    on the labels, hashes, fraction and seed, not on the order of ``samples``.
    """
    by_label: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        by_label.setdefault(sample.label, []).append(index)
    train, validation = [], []
    for label in sorted(by_label):
        members = sorted(by_label[label], key=lambda i: samples[i].sha256)
        rng = np.random.default_rng([seed, _stable_hash(label)])
        members = [members[i] for i in rng.permutation(len(members))]
        n_val = min(len(members) - 1, max(1, int(round(validation_fraction * len(members)))))
        validation += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(validation)


def _stable_hash(text: str) -> int:
    return int.from_bytes(text.encode("utf-8")[:8].ljust(8, b"\0"), "little") ^ len(text)


def _student_t_quantile(probability: float, dof: int) -> float:
    """Quantile of Student's t distribution (exact for 1 and 2 degrees of freedom, else the
    Cornish-Fisher expansion of Abramowitz & Stegun 26.7.5, error < 1e-3 for dof ≥ 3)."""
    from statistics import NormalDist

    if dof == 1:
        return math.tan(math.pi * (probability - 0.5))
    if dof == 2:
        return (2 * probability - 1) / math.sqrt(2 * probability * (1 - probability))
    z = NormalDist().inv_cdf(probability)
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


def calibrate_threshold(true_class_evidence: Sequence[float], quantile: float) -> float:
    """Open-set threshold from the held-out files' true-class evidence (see the module doc).

    A case holds few validation files, and the empirical 5th percentile of a handful of
    scores is just about their minimum, which lets far more than 5% of new files of an enrolled
    class fall below it. The threshold is therefore the lower one-sided normal PREDICTION bound
    for one more file, mean + t_{q, n−1} · sd · √(1 + 1/n), which a new file of an enrolled class
    passes with probability 1 − q whatever n is (for normally distributed evidence), and never
    above the empirical q-quantile. One score: that score − 1. No score: −inf (nothing rejected).
    """
    scores = np.asarray(true_class_evidence, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return float("-inf")
    n = len(scores)
    if n == 1:
        return float(scores[0] - 1.0)
    bound = scores.mean() + _student_t_quantile(quantile, n - 1) * scores.std(ddof=1) * math.sqrt(1 + 1 / n)
    return float(min(np.quantile(scores, quantile), bound))


def _check_samples(samples: Sequence[TrainingSample]) -> list[TrainingSample]:
    unique: dict[str, TrainingSample] = {}
    for sample in samples:
        if sample.label == UNKNOWN:
            raise ModelError(f"'{UNKNOWN}' is reserved for the open-set answer; rename that device or model")
        seen = unique.get(sample.sha256)
        if seen is not None and seen.label != sample.label:
            raise ModelError(
                f"file {sample.sha256[:12]}… is enrolled as both {seen.label!r} and {sample.label!r}; remove one enrollment"
            )
        unique.setdefault(sample.sha256, sample)
    kept = list(unique.values())
    counts = Counter(s.label for s in kept)
    if len(counts) < 2:
        raise ModelError("training needs at least 2 enrolled classes (devices or models); enroll another one")
    few = sorted(label for label, n in counts.items() if n < 2)
    if few:
        raise ModelError(
            f"{', '.join(few)}: fewer than 2 reference files; enroll at least 2 per class so one can be held out for validation"
        )
    return kept


def _learning_rate(config: TrainingConfig, epoch: int) -> float:
    if config.schedule == "exponential":
        return config.learning_rate * config.lr_decay**epoch
    if epoch < config.warmup_epochs:
        return config.learning_rate * (epoch + 1) / (config.warmup_epochs + 1)
    span = max(1, config.epochs - config.warmup_epochs)
    return 0.5 * config.learning_rate * (1 + math.cos(math.pi * (epoch - config.warmup_epochs) / span))


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _prime_batch_norm(network: nn.Module, units: np.ndarray, device: torch.device) -> None:
    """Set the batch-norm running statistics from one batch of real inputs before training.

    Patches are tiny numbers (noise of ~0.01 around zero) while running variances start at 1;
    with the default momentum the running statistics need ~100 steps to forget that start, so a
    short CPU training would be evaluated with wrong statistics (every file in one class).
    """
    norms = [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    network.train()
    with torch.no_grad():
        network(torch.from_numpy(units.astype(np.float32)).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


class Evaluation(NamedTuple):
    """The network on the validation files (see :func:`_evaluate`)."""

    file_accuracy: float
    unit_accuracy: float
    loss: float  # mean unit log-loss (nats)
    true_evidence: list[float]  # per file: mean logit of its true class over its units
    predicted: list[int]  # per file: index of the predicted class (-1: no unit)


def _evaluate(
    network: nn.Module,
    units: list[np.ndarray],
    labels: list[int],
    classes: list[str],
    device: torch.device,
    batch_size: int,
) -> Evaluation:
    """File accuracy, unit accuracy, mean unit log-loss, true-class file evidence, file predictions."""
    network.eval()
    file_correct, unit_correct, n_units, loss_sum = 0, 0, 0, 0.0
    true_evidence, predicted = [], []
    with torch.inference_mode():
        for file_units, label in zip(units, labels):
            logits = _file_logits(network, file_units, len(classes), device, batch_size)
            prediction = combine_unit_logits(logits, classes, float("-inf"), "unit")
            best = classes.index(prediction.top_label) if prediction.top_label else -1
            file_correct += int(best == label)
            log_probabilities = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
            unit_correct += int((logits.argmax(axis=1) == label).sum())
            n_units += len(logits)
            loss_sum += float(-log_probabilities[:, label].sum())
            true_evidence.append(float(logits[:, label].mean()) if len(logits) else float("nan"))
            predicted.append(best)
    n_files = max(1, len(units))
    return Evaluation(
        file_correct / n_files, unit_correct / max(1, n_units), loss_sum / max(1, n_units), true_evidence, predicted
    )


def _file_logits(
    network: nn.Module, units: np.ndarray, n_classes: int, device: torch.device, batch_size: int
) -> np.ndarray:
    """Logits (float32 N×C) of one file's units, in batches (call under inference mode)."""
    outputs = []
    for start in range(0, len(units), batch_size):
        batch = torch.from_numpy(units[start : start + batch_size].astype(np.float32)).to(device)
        outputs.append(network(batch).float().cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, n_classes), np.float32)


# Units per batch when the validation files go through the network (memory only, not results).
EVALUATION_BATCH = 256


def _step_counter(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    """A callable that counts one step done (a file loaded, an epoch) and reports (done, total)."""
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return step


def _input_kind(samples: Sequence[TrainingSample], kind: InputKind | None, config: TrainingConfig | None) -> InputKind:
    """The kind asked for; else the config's; else "frames" when most samples are videos."""
    if kind is not None:
        return kind
    if config is not None:
        return config.kind
    return "frames" if sum(s.kind == "video" for s in samples) * 2 > len(samples) else "patches"


@dataclass(frozen=True)
class _Data:
    """The units of every file, split by file (see :func:`split_by_file`).

    file_units : per sample index, its units (float16 N×3×h×w); flat_shares : per sample index,
    its flat share (patches only). train_units/train_labels : the training files' units pooled,
    with their class indices; val_units/val_labels : per validation file.
    """

    classes: list[str]
    train_ids: list[int]
    val_ids: list[int]
    file_units: dict[int, np.ndarray]
    flat_shares: dict[int, float]
    train_units: np.ndarray
    train_labels: np.ndarray
    val_units: list[np.ndarray]
    val_labels: list[int]


def _load_units(
    samples: Sequence[TrainingSample], indices: list[int], config: TrainingConfig, step: Callable[[], None]
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Load every file once and keep only its units and flat share; ModelError when one gives none.

    float16 halves the memory; the units are small numbers around zero for patches and in [0,1]
    for frames, well inside float16's precision.
    """
    file_units: dict[int, np.ndarray] = {}
    flat_shares: dict[int, float] = {}
    for index in indices:
        units, share = units_and_flat_share(
            samples[index].load(), config.kind, config.patch, config.frame, max_units=config.max_units_per_file
        )
        file_units[index] = units.astype(np.float16)
        if share is not None:
            flat_shares[index] = share
        step()
    empty = sorted(samples[i].sha256[:12] for i, u in file_units.items() if len(u) == 0)
    if empty:
        raise ModelError(
            f"{len(empty)} reference file(s) gave no usable {config.kind} (too small?): {', '.join(empty)}; remove them"
        )
    return file_units, flat_shares


def _prepare_data(samples: Sequence[TrainingSample], config: TrainingConfig, step: Callable[[], None]) -> _Data:
    """Split the files (by file, stratified), load their units and pool the training units."""
    classes = sorted({s.label for s in samples})
    class_index = {c: i for i, c in enumerate(classes)}
    train_ids, val_ids = split_by_file(samples, config.validation_fraction, config.seed)
    file_units, flat_shares = _load_units(samples, sorted(train_ids + val_ids), config, step)
    return _Data(
        classes=classes,
        train_ids=train_ids,
        val_ids=val_ids,
        file_units=file_units,
        flat_shares=flat_shares,
        train_units=np.concatenate([file_units[i] for i in train_ids]),
        train_labels=np.concatenate([np.full(len(file_units[i]), class_index[samples[i].label]) for i in train_ids]),
        val_units=[file_units[i] for i in val_ids],
        val_labels=[class_index[samples[i].label] for i in val_ids],
    )


class _EarlyStopping:
    """Keeps the weights of the best epoch so far: higher validation file accuracy, ties broken
    by lower validation loss; says when ``patience`` epochs in a row brought nothing better."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_key: tuple[float, float] | None = None
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.stale = 0

    def update(self, epoch: int, evaluation: Evaluation, network: nn.Module) -> None:
        """Record epoch ``epoch`` (1-based) and keep a copy of the weights if it is the best."""
        key = (evaluation.file_accuracy, -evaluation.loss)
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_epoch, self.stale = key, epoch, 0
            self.best_state = copy.deepcopy(network.state_dict())
        else:
            self.stale += 1

    @property
    def should_stop(self) -> bool:
        return self.stale >= self.patience


def _balanced_draw(per_class: list[np.ndarray], draw: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch: ``draw`` units of every class (with repetition when a class has
    fewer), shuffled together."""
    chosen = np.concatenate([rng.choice(members, size=draw, replace=draw > len(members)) for members in per_class])
    rng.shuffle(chosen)
    return chosen


def _train_epoch(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: _Data,
    chosen: np.ndarray,
    config: TrainingConfig,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One pass of SGD over the units ``chosen``; returns the mean training loss (nats per unit)."""
    loss_function = nn.CrossEntropyLoss()
    network.train()
    loss_sum, seen = 0.0, 0
    for start in range(0, len(chosen), config.batch_size):
        batch_ids = chosen[start : start + config.batch_size]
        if len(batch_ids) < 2:
            continue  # batch norm needs two samples
        batch = data.train_units[batch_ids].astype(np.float32)
        if config.gain_augmentation > 0:
            gains = np.exp(rng.uniform(-config.gain_augmentation, config.gain_augmentation, len(batch_ids)))
            batch *= gains.astype(np.float32)[:, None, None, None]
        inputs = torch.from_numpy(batch).to(device)
        targets = torch.from_numpy(data.train_labels[batch_ids]).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(network(inputs), targets)
        loss.backward()
        optimizer.step()
        project_constrained_layers(network)
        loss_sum += float(loss.detach()) * len(batch_ids)
        seen += len(batch_ids)
    return loss_sum / max(1, seen)


def _fit(
    network: nn.Module, data: _Data, config: TrainingConfig, device: torch.device, step: Callable[[], None]
) -> tuple[list[dict], int]:
    """Train for at most ``config.epochs`` balanced epochs with early stopping, leave the network
    with the best epoch's weights; returns the per-epoch history and the best epoch (1-based).

    The random draws come from one generator seeded with ``config.seed``, in a fixed order (the
    batch-norm priming batch, then per epoch the balanced draw and the gains): same seed, same run.
    """
    rng = np.random.default_rng(config.seed)
    optimizer = torch.optim.SGD(
        network.parameters(), lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay
    )
    per_class = [np.flatnonzero(data.train_labels == c) for c in range(len(data.classes))]
    draw = config.units_per_class_per_epoch or max(len(p) for p in per_class)
    _prime_batch_norm(network, data.train_units[rng.permutation(len(data.train_units))[:256]], device)
    history: list[dict] = []
    stopping = _EarlyStopping(config.patience)
    for epoch in range(config.epochs):
        learning_rate = _learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        chosen = _balanced_draw(per_class, draw, rng)
        train_loss = _train_epoch(network, optimizer, data, chosen, config, rng, device)
        evaluation = _evaluate(network, data.val_units, data.val_labels, data.classes, device, EVALUATION_BATCH)
        history.append(
            {
                "epoch": epoch + 1,
                "learning_rate": learning_rate,
                "train_loss": train_loss,
                "validation_file_accuracy": evaluation.file_accuracy,
                "validation_unit_accuracy": evaluation.unit_accuracy,
                "validation_loss": evaluation.loss,
            }
        )
        stopping.update(epoch + 1, evaluation, network)
        step()
        if stopping.should_stop:
            break
    network.load_state_dict(stopping.best_state)
    network.eval()
    return history, stopping.best_epoch


def _validation_record(evaluation: Evaluation, data: _Data) -> dict:
    """The record's "validation" entry: the kept network on the held-out files."""
    per_class_accuracy = {
        c: float(np.mean([p == index for p, label in zip(evaluation.predicted, data.val_labels) if label == index]))
        for index, c in enumerate(data.classes)
    }
    return {
        "files": len(data.val_ids),
        "file_accuracy": evaluation.file_accuracy,
        "unit_accuracy": evaluation.unit_accuracy,
        "loss": evaluation.loss,
        "per_class_file_accuracy": per_class_accuracy,
    }


def _open_set_record(evaluation: Evaluation, quantile: float) -> dict:
    """The record's "open_set" entry: the threshold calibrated on the held-out files' evidence."""
    true_scores = evaluation.true_evidence
    return {
        "score": "evidence: mean logit of the top class over the file's units (MaxLogit, Hendrycks et al. 2022)",
        "rule": f"min(empirical {quantile:g} quantile, lower normal prediction bound at {quantile:g}) of the held-out validation files' true-class evidence",
        "quantile": quantile,
        "threshold": calibrate_threshold(true_scores, quantile),
        "n_scores": len(true_scores),
        "true_class_evidence": [float(s) for s in true_scores],
    }


def _media_record(samples: Sequence[TrainingSample], data: _Data) -> list[dict]:
    """The record's "media" entry: every file by hash, with its split, units and flat share."""
    split_of = {i: "train" for i in data.train_ids} | {i: "validation" for i in data.val_ids}
    return [
        {
            "sha256": s.sha256,
            "label": s.label,
            "kind": s.kind,
            "split": split_of[i],
            "units": int(len(data.file_units[i])),
        }
        | ({"flat_share": round(data.flat_shares[i], 4)} if i in data.flat_shares else {})
        for i, s in enumerate(samples)
    ]


def _training_record(
    samples: Sequence[TrainingSample],
    data: _Data,
    *,
    target: Target,
    config: TrainingConfig,
    device: torch.device,
    history: list[dict],
    best_epoch: int,
    evaluation: Evaluation,
) -> dict:
    """The JSON-serialisable training record (see :class:`TrainedClassifier`); the timings and
    the inference back-end are filled in by :func:`train_classifier` once known."""
    from sensorprint import __version__

    flat_shares = data.flat_shares
    return {
        "format": RECORD_FORMAT,
        "tool": "sensorprint",
        "tool_version": __version__,
        "method": "Bennabhaktula et al. 2022 (ESWA patches / SN CS frames)",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target,
        "kind": config.kind,
        "classes": data.classes,
        "files_per_class": {c: sum(1 for s in samples if s.label == c) for c in data.classes},
        "media": _media_record(samples, data),
        # What the reference files look like (see learn.inference.content_caveat).
        "reference_flat_share": (
            {"min": min(flat_shares.values()), "median": float(np.median(list(flat_shares.values())))}
            if flat_shares
            else None
        ),
        "config": config.to_dict(),
        "seed": config.seed,
        "device": str(device),
        "torch_version": torch.__version__,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "history": history,
        "validation": _validation_record(evaluation, data),
        "open_set": _open_set_record(evaluation, config.open_set_quantile),
        "training_seconds": 0.0,
        "inference": {"backend": "torch"},
    }


def train_classifier(
    samples: Sequence[TrainingSample],
    *,
    target: Target = "device",
    kind: InputKind | None = None,
    config: TrainingConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedClassifier:
    """Train a classifier of the samples' labels (devices or camera models) from scratch.

    samples : the reference files (see :class:`TrainingSample`); at least 2 classes, 2 files each.
    target : what the labels are, "device" or "model" (kept in the record).
    kind : "patches" or "frames"; default: ``config.kind`` when a config is given, else "frames"
        when most samples are videos, "patches" otherwise.
    config : all parameters; default :func:`default_config` (papers' on GPU, fast on CPU).
    progress : called with (done, total) after each file loaded and each epoch.

    Raises ModelError when the classes or files do not allow training.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    samples = _check_samples(samples)
    kind = _input_kind(samples, kind, config)
    config = replace(config, kind=kind) if config is not None else default_config(kind)
    device = _resolve_device(config.device)
    total_steps = len(samples) + config.epochs
    step = _step_counter(progress, total_steps)
    data = _prepare_data(samples, config, step)

    torch.manual_seed(config.seed)  # the initialisation and the dropout
    network = build_network(
        config.network,
        len(data.classes),
        patch_size=config.patch.size,
        constrained=config.constrained,
        width=config.width,
    ).to(device)
    history, best_epoch = _fit(network, data, config, device, step)
    evaluation = _evaluate(network, data.val_units, data.val_labels, data.classes, device, EVALUATION_BATCH)
    record = _training_record(
        samples,
        data,
        target=target,
        config=config,
        device=device,
        history=history,
        best_epoch=best_epoch,
        evaluation=evaluation,
    )
    classifier = TrainedClassifier(network=network, record=record)
    _choose_backend(classifier)
    record["training_seconds"] = round(time.perf_counter() - started, 2)
    # CPU seconds of this process (all threads): comparable across runs on a shared machine.
    record["training_cpu_seconds"] = round(time.process_time() - started_cpu, 2)
    if progress is not None:
        progress(total_steps, total_steps)
    return classifier


def _choose_backend(classifier: TrainedClassifier) -> None:
    """Export to ONNX, time torch and onnxruntime on this CPU, keep the faster (recorded)."""
    import tempfile
    from pathlib import Path

    from sensorprint.learn.onnx import OnnxRunner, export_onnx, max_abs_difference, time_backends

    if next(classifier.network.parameters()).device.type != "cpu":
        classifier.record["inference"] = {"backend": "torch", "reason": "GPU present: torch on the GPU"}
        return
    shape = input_shape(classifier.kind, classifier.patch_parameters, classifier.frame_parameters)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(classifier.network, shape, Path(tmp) / "network.onnx")
            runner = OnnxRunner(path)
    except Exception as error:  # noqa: BLE001 - ONNX is an optimisation: torch always works
        classifier.record["inference"] = {"backend": "torch", "reason": f"ONNX export failed: {type(error).__name__}"}
        return
    difference = max_abs_difference(classifier.network, runner, shape)
    timings = time_backends(classifier.network, runner, shape, batch_size=16 if classifier.kind == "frames" else 64)
    faster = min(timings, key=timings.get)
    usable = difference < 1e-4
    backend = faster if usable else "torch"
    classifier.record["inference"] = {
        "backend": backend,
        "seconds_per_unit": timings,
        "max_softmax_difference": difference,
        "reason": "faster on this CPU" if usable else "ONNX output differs from torch; torch kept",
    }
    classifier.backend = backend
    classifier.onnx_runner = runner
