"""Benchmark: the CNN method on simulated cameras (sensorprint.simulate).

1. Device-level VIDEO accuracy from 5 random frames (SN CS 2022 protocol): MobileNetV3-Small on
   centre crops of frames, trained on other videos of the same cameras; >= 8 cameras, two units
   of every model (same-model pairs).
2. Throughput on this CPU: videos classified per second (5 frames each, 1080p, decode included
   and network only) and image patches per second (patch network, selection included and not).
3. Open set on IMAGES: a patch network trained on the enrolled cameras' images; the share of
   images answered "unknown" from an unenrolled unit of an enrolled model and from a camera of
   an unenrolled model, and the share of enrolled cameras' images wrongly answered "unknown".

    .venv/bin/python benchmarks/learn_simulated.py [--models 4] [--units 2] [--workdir /tmp/sp_learn_sim]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import torch

from sensorprint.learn import TrainingConfig, TrainingSample, choose_frame_indices, train_classifier
from sensorprint.simulate import make_cameras


def read_frames(path: Path, indices: np.ndarray | None = None, count: int | None = None) -> list[np.ndarray]:
    """Frames of a video (float32 H×W×3, 0..255): the given indices, or ``count`` evenly spaced."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = stream.frames or 0
        if indices is None:
            indices = np.linspace(0, max(n - 1, 0), count).round().astype(int)
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        frames = []
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                frames.append(frame.to_ndarray(format="rgb24").astype(np.float32))
            if index >= last:
                break
    return frames


def n_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.video[0].frames


def record_all(cameras, workdir: Path, per_camera: int, seconds: float, size: tuple[int, int]) -> dict[str, list[Path]]:
    videos: dict[str, list[Path]] = {}
    for camera in cameras:
        for k in range(per_camera):
            path = workdir / "videos" / f"{camera.name}_{k}.mp4"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                camera.record_video(path, seconds=seconds, fps=30, size=size, bitrate=10_000_000, seed=1000 + k)
            videos.setdefault(camera.name, []).append(path)
    return videos


def video_benchmark(cameras, args) -> dict[str, float | int]:
    """Train the frame network on simulated videos, print its figures; return the headline ones."""
    size = (args.width, args.height)
    started = time.perf_counter()
    videos = record_all(cameras, Path(args.workdir), args.train_videos + args.test_videos, args.seconds, size)
    print(
        f"simulated {sum(len(v) for v in videos.values())} videos of {args.seconds} s at {size[0]}×{size[1]} "
        f"in {time.perf_counter() - started:.0f} s"
    )
    samples = []
    for name, paths in videos.items():
        for path in paths[: args.train_videos]:
            samples.append(
                TrainingSample(name, path.stem, "video", lambda p=path: read_frames(p, count=args.train_frames))
            )
    config = replace(TrainingConfig.fast("frames"), constrained=args.constrained, epochs=args.epochs)
    config = replace(config, frame=replace(config.frame, highpass=args.frame_highpass))
    started = time.perf_counter()
    classifier = train_classifier(samples, target="device", kind="frames", config=config, progress=report_progress)
    train_seconds = time.perf_counter() - started
    record = classifier.record
    print(f"\n== device-level video classification, {len(cameras)} cameras ({args.models} models × {args.units} units)")
    print(
        f"training: {train_seconds:.0f} s on the CPU ({record.get('training_cpu_seconds', float('nan')):.0f} CPU-s), {len(samples)} videos × {args.train_frames} frames, crop "
        f"{config.frame.crop_height}×{config.frame.crop_width}, constrained={config.constrained}, "
        f"highpass={config.frame.highpass}, "
        f"{record['epochs_run']} epochs (best {record['best_epoch']}), validation video accuracy "
        f"{record['validation']['file_accuracy']:.3f}, backend {record['inference']['backend']}"
    )
    test = [(name, path) for name, paths in videos.items() for path in paths[args.train_videos :]]
    correct = model_correct = decided_correct = unknown = 0
    decode_seconds = predict_seconds = 0.0
    for index, (name, path) in enumerate(test):
        t0 = time.perf_counter()
        frames = read_frames(path, choose_frame_indices(n_frames(path), 5, seed=index))
        t1 = time.perf_counter()
        prediction = classifier.predict_video(frames)
        t2 = time.perf_counter()
        decode_seconds += t1 - t0
        predict_seconds += t2 - t1
        correct += prediction.top_label == name
        model_correct += prediction.top_label.rsplit("_", 1)[0] == name.rsplit("_", 1)[0]
        decided_correct += prediction.label == name
        unknown += prediction.label == "unknown"
    n = len(test)
    print(
        f"test videos: {n}; device accuracy (5 frames, mean probability) {correct}/{n} = {correct / n:.3f}; "
        f"model accuracy {model_correct}/{n} = {model_correct / n:.3f}; after open-set rule {decided_correct} correct, "
        f"{unknown} unknown"
    )
    print(
        f"throughput at {size[0]}×{size[1]}: {n / (decode_seconds + predict_seconds):.2f} videos/s with decoding "
        f"(decode {decode_seconds / n:.3f} s/video), {n / predict_seconds:.1f} videos/s network only "
        f"(torch threads {torch.get_num_threads()})"
    )
    return {
        "video_files": n,
        "video_device_correct": correct,
        "video_model_correct": model_correct,
        "video_decided_correct": decided_correct,
        "video_unknown": unknown,
        "video_train_s": train_seconds,
        "video_per_s": n / (decode_seconds + predict_seconds),
        "video_network_per_s": n / predict_seconds,
    }


def image_benchmark(cameras, args) -> dict[str, float | int]:
    """Train the patch network on simulated images, print its figures; return the headline ones."""
    last_model = cameras[-1].model.name  # the unenrolled model
    new_model = [c for c in cameras if c.model.name == last_model]
    enrolled = [c for c in cameras if c.unit < args.units and c.model.name != last_model]
    strangers_same_model = [c for c in cameras if c.unit >= args.units and c.model.name != last_model]

    def shot(camera, seed):
        return camera.shoot(seed=seed).astype(np.float32)

    samples = []
    for camera in enrolled:
        for k in range(args.train_images):
            samples.append(
                TrainingSample(camera.name, f"{camera.name}-{k}", "image", lambda c=camera, s=k: [shot(c, s)])
            )
    target = args.image_target
    if target == "model":
        samples = [replace(s, label=s.label.rsplit("_", 1)[0]) for s in samples]
    started = time.perf_counter()
    config = TrainingConfig.fast("patches")
    config = replace(
        config, epochs=args.image_epochs, patch=replace(config.patch, size=args.patch_size, max_patches=args.patches)
    )
    classifier = train_classifier(samples, target=target, kind="patches", config=config, progress=report_progress)
    train_seconds = time.perf_counter() - started
    record = classifier.record
    print(
        f"\n== images, patch network, target={target}, {len(classifier.classes)} classes, "
        f"{config.patch.max_patches} patches of {config.patch.size} px per image"
    )
    print(
        f"training: {train_seconds:.0f} s on the CPU ({record.get('training_cpu_seconds', float('nan')):.0f} CPU-s), {len(samples)} images, {record['epochs_run']} epochs "
        f"(best {record['best_epoch']}), validation accuracy {record['validation']['file_accuracy']:.3f}, "
        f"open-set threshold {record['open_set']['threshold']:.2f} (evidence), backend {record['inference']['backend']}"
    )

    def label_of(camera):
        return camera.name if target == "device" else camera.model.name

    tests = [(label_of(c), shot(c, 10_000 + k)) for c in enrolled for k in range(args.test_images)]
    started = time.perf_counter()
    predictions = classifier.predict_images([p for _, p in tests])
    seconds = time.perf_counter() - started
    n_units = sum(p.n_units for p in predictions)
    units = np.concatenate([classifier.units([p]) for _, p in tests[:4]])
    t0 = time.perf_counter()
    classifier.unit_logits(units)
    network_rate = len(units) / (time.perf_counter() - t0)
    top = np.mean([p.top_label == t for (t, _), p in zip(tests, predictions)])
    wrong_unknown = np.mean([p.label == "unknown" for p in predictions])
    print(
        f"enrolled cameras' test images: {len(tests)}, top-class accuracy {top:.3f}, answered unknown {wrong_unknown:.3f}"
    )
    print(
        f"patch throughput: {n_units / seconds:.0f} patches/s with selection ({tests[0][1].shape[1]}×{tests[0][1].shape[0]} "
        f"images), {network_rate:.0f} patches/s network only"
    )
    figures = {
        "image_files": len(tests),
        "image_top_accuracy": float(top),
        "image_unknown_share": float(wrong_unknown),
        "image_train_s": train_seconds,
        "image_patches_per_s": n_units / seconds,
        "image_network_patches_per_s": network_rate,
    }
    for key, title, group in (
        ("unenrolled_unit", "unenrolled unit of an enrolled model", strangers_same_model),
        ("unenrolled_model", "camera of an unenrolled model", new_model),
    ):
        if not group:
            continue
        images = [shot(c, 20_000 + k) for c in group for k in range(args.test_images)]
        answers = classifier.predict_images(images)
        share = np.mean([p.label == "unknown" for p in answers])
        said_model = np.mean(
            [
                p.label != "unknown" and p.top_label.split("_unit")[0] == c.model.name
                for c, p in zip([c for c in group for _ in range(args.test_images)], answers)
            ]
        )
        print(
            f"open set, {title} ({len(images)} images): answered unknown {share:.3f}"
            + (f"; answered a unit of its own model {said_model:.3f}" if target == "device" else "")
        )
        figures[f"{key}_unknown_share"] = float(share)
    return figures


def report_progress(done: int, total: int) -> None:
    print(f"  progress {done}/{total}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--units", type=int, default=2)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--train-videos", type=int, default=4)
    parser.add_argument("--test-videos", type=int, default=2)
    parser.add_argument("--train-frames", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--constrained", action="store_true")
    parser.add_argument("--frame-highpass", action="store_true", help="frames as high-pass residuals")
    parser.add_argument("--train-images", type=int, default=6)
    parser.add_argument("--test-images", type=int, default=3)
    parser.add_argument("--image-target", choices=["device", "model"], default="device")
    parser.add_argument("--image-size", type=int, nargs=2, default=(1024, 768))
    parser.add_argument("--patch-size", type=int, default=128)
    parser.add_argument("--patches", type=int, default=48, help="patches per image")
    parser.add_argument("--image-epochs", type=int, default=12)
    parser.add_argument("--skip", choices=["videos", "images"], default=None)
    parser.add_argument("--workdir", default="/tmp/sp_learn_sim")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = {}
    if args.skip != "videos":
        cameras = make_cameras(args.models, args.units, width=args.width, height=args.height, seed=args.seed)
        figures |= video_benchmark(cameras, args)
    if args.skip != "images":
        # One more unit per model (unenrolled) and one more model (unenrolled) for the open-set test.
        width, height = args.image_size
        cameras = make_cameras(args.models + 1, args.units + 1, width=width, height=height, seed=args.seed)
        last_model = cameras[-1].model.name
        cameras = [c for c in cameras if c.model.name != last_model or c.unit == 0]
        figures |= image_benchmark(cameras, args)
    # the figures above, one key=value line for the record
    print(
        "benchmark=learn_simulated "
        + " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    )


if __name__ == "__main__":
    main()
