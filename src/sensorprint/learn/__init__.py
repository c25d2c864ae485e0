"""sensorprint.learn: the founding papers' CNN method (Bennabhaktula et al. 2022).

Camera-model identification from homogeneous patches (MISLNet-style network, ESWA 2022) and
device identification from video frames (MobileNetV3-Small, SN Computer Science 2022), with an
optional constrained first layer (Bayar & Stamm), a by-file validation split, early stopping,
an open-set "unknown" answer calibrated on held-out files, and ONNX inference where faster.

Typical use (the workflow gives arrays through loader callables)::

    samples = [TrainingSample(label, sha256, "image", load) ...]
    classifier = train_classifier(samples, target="model", kind="patches")
    classifier.save(case_dir / "cnn" / "model")
    classifier = load_classifier(case_dir / "cnn" / "model")
    prediction = classifier.predict_image(pixels)        # pixels: H×W×3, 0..255
    prediction = classifier.predict_video(frames)        # frames: list of H×W×3
"""

from sensorprint.learn.inference import UNKNOWN, Prediction, TrainedClassifier, load_classifier
from sensorprint.learn.patches import (
    FrameParameters,
    PatchParameters,
    choose_frame_indices,
    homogeneous_patches,
    prepare_frame,
    select_patch_positions,
)
from sensorprint.learn.training import TrainingConfig, TrainingSample, default_config, train_classifier

__all__ = [
    "UNKNOWN",
    "FrameParameters",
    "PatchParameters",
    "Prediction",
    "TrainedClassifier",
    "TrainingConfig",
    "TrainingSample",
    "choose_frame_indices",
    "default_config",
    "homogeneous_patches",
    "load_classifier",
    "prepare_frame",
    "select_patch_positions",
    "train_classifier",
]
