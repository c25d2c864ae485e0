"""Benchmark: the ESWA 2022 patch method on dresden-nikon, trained on the FLATS only.

Camera model (D200 / D70 / D70s) and device (6 units) accuracy on the 16 natural images,
training time on this machine, inference patches per second. The model accuracy is also given
with D70 and D70s counted as one model, as the ESWA 2022 authors' code does (their 18 Dresden
models merge them: the D70s is a D70 with new firmware and body details, same sensor);
``--merge-d70s`` trains on those two classes instead of three. ``--enrolled-unit 0`` trains the
model network on unit 0's flats only and scores the naturals of unit 1, a camera the network
never saw (the issue's "images from unenrolled units of an enrolled model").

    .venv/bin/python benchmarks/learn_dresden.py [--target model|device|both] [--patches 48] [--epochs 12]
        [--merge-d70s] [--enrolled-unit 0|1] [--no-highpass] [--seed N] [--save DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sensorprint.learn import TrainingConfig, TrainingSample, train_classifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dresden-nikon"
# Open set: the vision-trio phones are cameras of models the network never saw.
UNENROLLED = Path(__file__).resolve().parents[2] / "shared" / "data" / "vision-trio" / "natural"


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def device_of(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]  # Nikon_D70s_1


def model_of(path: Path) -> str:
    return device_of(path).rsplit("_", 1)[0]  # Nikon_D70s


def merged(label: str) -> str:
    return label.replace("Nikon_D70s", "Nikon_D70")


def samples(folder: Path, label_of, unit: int | None = None) -> list[TrainingSample]:
    """The folder's files as training samples; only those of unit ``unit`` (0 or 1) when given."""
    out = []
    for path in sorted(folder.glob("*.JPG")):
        if unit is not None and not device_of(path).endswith(f"_{unit}"):
            continue
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append(TrainingSample(label_of(path), sha, "image", lambda p=path: [read_rgb(p)]))
    return out


def run(
    target: str,
    config: TrainingConfig,
    naturals: list[Path],
    natural_pixels: list[np.ndarray],
    merge: bool,
    strangers: list[np.ndarray],
    save: str | None,
    unit: int | None = None,
) -> dict[str, float | int]:
    """Train one network on the flats, print its figures on the naturals and the strangers; return the headline ones."""
    label_of = model_of if target == "model" else device_of
    if merge and target == "model":
        label_of = lambda path: merged(model_of(path))  # noqa: E731
    started = time.perf_counter()
    classifier = train_classifier(
        samples(DATA / "flat", label_of, unit), target=target, kind="patches", config=config, progress=report_progress
    )
    train_seconds = time.perf_counter() - started
    record = classifier.record
    started = time.perf_counter()
    predictions = classifier.predict_images(natural_pixels)
    predict_seconds = time.perf_counter() - started
    stranger_predictions = classifier.predict_images(strangers)
    stranger_unknown = sum(p.label == "unknown" for p in stranger_predictions)
    if save:
        classifier.save(Path(save) / target)
    n_patches = sum(p.n_units for p in predictions)
    truth = [label_of(p) for p in naturals]
    top_correct = sum(p.top_label == t for p, t in zip(predictions, truth))
    vote_correct = sum(p.vote_label == t for p, t in zip(predictions, truth))
    decided_correct = sum(p.label == t for p, t in zip(predictions, truth))
    unknown = sum(p.label == "unknown" for p in predictions)
    # right camera model with D70 = D70s, whatever the network's classes (a device label is its model + "_unit")
    merged_truth = [merged(model_of(n)) for n in naturals]
    answers = [p.top_label or "" for p in predictions]
    merged_answers = [merged(a if target == "model" else a.rsplit("_", 1)[0]) for a in answers]
    model_correct = sum(a == t for a, t in zip(merged_answers, merged_truth))
    print(f"\n== target={target}  classes={len(classifier.classes)}  torch threads={torch.get_num_threads()}")
    print(
        f"config: patches/image={config.patch.max_patches} size={config.patch.size} highpass={config.patch.highpass} "
        f"normalise={config.patch.normalise_contrast} epochs<={config.epochs} "
        f"batch={config.batch_size} lr={config.learning_rate} constrained={config.constrained}"
    )
    print(
        f"training: {train_seconds:.0f} s on the CPU, {record.get('training_cpu_seconds', float('nan')):.0f} CPU-s ({record['epochs_run']} epochs, best {record['best_epoch']}), "
        f"validation file accuracy {record['validation']['file_accuracy']:.3f} on {record['validation']['files']} flats, "
        f"open-set threshold {record['open_set']['threshold']:.3f}, backend {record['inference']['backend']}"
    )
    print(
        f"natural images: top-class accuracy {top_correct}/{len(truth)} = {top_correct / len(truth):.3f}; "
        f"majority vote {vote_correct}/{len(truth)}; after open-set rule {decided_correct} correct, {unknown} unknown"
    )
    print(
        f"camera model with D70 = D70s (the authors' protocol): {model_correct}/{len(truth)} = {model_correct / len(truth):.3f}"
    )
    if unit is not None:
        others = [i for i, n in enumerate(naturals) if not device_of(n).endswith(f"_{unit}")]
        print(
            f"naturals of the units NOT enrolled (trained on unit {unit}'s flats only): "
            f"{sum(answers[i] == truth[i] for i in others)}/{len(others)} right model, "
            f"{sum(merged_answers[i] == merged_truth[i] for i in others)}/{len(others)} with D70 = D70s"
        )
    # The classes are unbalanced (2 D200, 14 D70/D70s): a constant answer scores 14/16 on the line above.
    print(
        f"balanced accuracy (mean of the per-class recalls): {balanced_accuracy(truth, answers):.3f}; "
        f"with D70 = D70s {balanced_accuracy(merged_truth, merged_answers):.3f}"
    )
    print(
        f"answers carrying the content caveat (file less flat than every reference flat): "
        f"{sum(p.caveat is not None for p in predictions)}/{len(truth)} dresden naturals, "
        f"{sum(p.caveat is not None for p in stranger_predictions)}/{len(strangers)} VISION naturals"
    )
    print(
        f"open set: {stranger_unknown}/{len(strangers)} natural images of unenrolled camera models (VISION phones) "
        f"answered unknown; {unknown}/{len(truth)} dresden naturals answered unknown"
    )
    print("  open-set evidence: dresden naturals " + " ".join(f"{p.evidence:.2f}" for p in predictions))
    print("  open-set evidence: VISION naturals  " + " ".join(f"{p.evidence:.2f}" for p in stranger_predictions))
    print(
        f"inference: {len(truth)} images, {n_patches} patches in {predict_seconds:.1f} s "
        f"(incl. patch selection) = {n_patches / predict_seconds:.0f} patches/s"
    )
    for path, prediction, t in zip(naturals, predictions, truth):
        mark = "ok " if prediction.top_label == t else "BAD"
        print(
            f"  {mark} {path.name:28s} truth={t:14s} top={prediction.top_label:14s} score={prediction.score:.3f} "
            f"label={prediction.label}"
        )
    return {
        "classes": len(classifier.classes),
        "files": len(truth),
        "top_correct": top_correct,
        "vote_correct": vote_correct,
        "decided_correct": decided_correct,
        "unknown": unknown,
        "model_correct_d70_merged": model_correct,
        "balanced_accuracy": balanced_accuracy(truth, answers),
        "balanced_accuracy_d70_merged": balanced_accuracy(merged_truth, merged_answers),
        "strangers": len(strangers),
        "strangers_unknown": stranger_unknown,
        "train_s": train_seconds,
        "patches_per_s": n_patches / predict_seconds,
    }


def balanced_accuracy(truth: list[str], answers: list[str]) -> float:
    """Mean over the true classes of the share of their files answered right."""
    recalls = [np.mean([a == t for a, u in zip(answers, truth) if u == t]) for t in sorted(set(truth))]
    return float(np.mean(recalls))


def report_progress(done: int, total: int) -> None:
    print(f"  progress {done}/{total}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", choices=["model", "device", "both"], default="both")
    parser.add_argument("--patches", type=int, default=None, help="patches per image (default: the fast config)")
    parser.add_argument("--patch-size", type=int, default=None, help="patch side in pixels (default 128, the paper's)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--constrained", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="save the trained networks under this folder")
    parser.add_argument("--merge-d70s", action="store_true", help="train the model network on D200 vs D70(+D70s)")
    parser.add_argument("--no-highpass", action="store_true", help="the papers' mean-subtracted patches")
    parser.add_argument(
        "--enrolled-unit",
        type=int,
        choices=[0, 1],
        default=None,
        help="train the model network on this unit's flats only; score the other unit's naturals",
    )
    args = parser.parse_args()
    config = TrainingConfig.fast("patches")
    if args.patches:
        config = replace(config, patch=replace(config.patch, max_patches=args.patches))
    if args.patch_size:
        config = replace(config, patch=replace(config.patch, size=args.patch_size))
    if args.epochs:
        config = replace(config, epochs=args.epochs)
    if args.lr:
        config = replace(config, learning_rate=args.lr)
    if args.no_highpass:
        config = replace(config, patch=replace(config.patch, highpass=False, normalise_contrast=False))
    config = replace(config, constrained=args.constrained, seed=args.seed)
    naturals = sorted((DATA / "natural").glob("*.JPG"))
    natural_pixels = [read_rgb(p) for p in naturals]
    strangers = [read_rgb(p) for p in sorted(UNENROLLED.glob("*.jpg"))]
    if args.enrolled_unit is not None and args.target != "model":
        parser.error("--enrolled-unit needs --target model (a device network cannot know an unenrolled unit)")
    figures = {}
    for target in ["model", "device"] if args.target == "both" else [args.target]:
        got = run(target, config, naturals, natural_pixels, args.merge_d70s, strangers, args.save, args.enrolled_unit)
        figures |= {f"{target}_{key}": value for key, value in got.items()}
    # the figures above, one key=value line for the record
    print(
        "benchmark=learn_dresden "
        + " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    )


if __name__ == "__main__":
    main()
