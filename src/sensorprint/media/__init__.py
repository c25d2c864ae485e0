"""sensorprint.media: reading evidence (images, camera RAW, video frames), its metadata and hashes.

Every failure a file can cause is a `sensorprint.errors.MediaError` with a one-line reason.
Files are opened read-only; pixels are returned as stored (orientation recorded, never applied).
"""

from .discover import discover
from .hashing import sha256_file
from .image import Image, read_image
from .medium import Medium, probe
from .video import Frame, read_frames

__all__ = ["Frame", "Image", "Medium", "discover", "probe", "read_frames", "read_image", "sha256_file"]
