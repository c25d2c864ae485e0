"""sensorprint.simulate — synthetic cameras with known ground truth.

A physically-motivated camera simulator for the demo, the tests and the benchmarks:
per-unit PRNU (multiplicative), a model-level pattern shared by the units of one model,
dark signal, shot and read noise, Bayer CFA and demosaicing, white balance, colour matrix,
tone curve, JPEG with EXIF (``camera``); scenes from photographs shipped in scikit-image
or procedural textures (``scenes``); H.264 video with camera motion and optional
digital stabilisation (``video``); the demo case with its ground truth (``case``).
Everything is deterministic from seeds.
"""

from .camera import Camera, CameraModel, default_models, make_cameras, make_phone
from .case import demo_cameras, write_demo_case
from .scenes import SCENE_KINDS, scene
from .video import VideoGeometry, record_video, reencode_video, video_geometry

__all__ = [
    "Camera",
    "CameraModel",
    "SCENE_KINDS",
    "VideoGeometry",
    "default_models",
    "demo_cameras",
    "make_cameras",
    "make_phone",
    "record_video",
    "reencode_video",
    "scene",
    "video_geometry",
    "write_demo_case",
]
