"""Still images as float32 pixels in grey levels 0..255, as stored (EXIF orientation never applied).

Pillow reads JPEG, PNG, TIFF, BMP, WebP...; pillow-heif adds HEIC/HEIF/AVIF; rawpy reads
camera RAW (see raw.py). 16-bit colour TIFF/PNG, which Pillow would cut to 8 bits, are
decoded by FFmpeg (PyAV) to keep all 16 bits. The whole file is read once into memory:
the SHA-256 recorded is the hash of exactly the bytes that were decoded.
"""

from __future__ import annotations

import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image as PILImage
from PIL import ImageFile, UnidentifiedImageError

from sensorprint.errors import MediaError

from .exif import exif_metadata
from .formats import Sniffed, extension_mismatch, sniff
from .hashing import sha256_bytes
from .medium import (
    Medium,
    check_regular_file,
    check_size,
    check_unchanged,
    evidence_head,
    live_photo_partner,
    one_line,
)
from .raw import read_raw
from .structure import jpeg_structure

pillow_heif.register_heif_opener()

DEFAULT_MAX_PIXELS = 200_000_000
SATURATION = 255.0
_SCALE_16BIT = np.float32(255.0 / 65535.0)

# Pillow's own decompression-bomb limit is a module global; it is lifted only while
# re-opening a file already refused by it, under this lock, and `max_pixels` decides.
_PILLOW_LIMIT_LOCK = threading.Lock()

# Modes whose pixels were quantised to a colour table or to 1 bit: the sensor noise is gone.
QUANTISED_MODES = {"P": "palette (indexed colour)", "PA": "palette (indexed colour)", "1": "1-bit (black and white)"}


@dataclass(frozen=True)
class Image:
    """An image's pixels (float32 H×W×3, grey levels 0..255, as stored) and its `Medium`.

    `saturation` is the value that means "clipped" in that scale.
    """

    medium: Medium
    pixels: np.ndarray
    saturation: float = SATURATION


def _read_bytes(path: Path) -> bytes:
    """The whole file, read once; MediaError when it changed during the read (the bytes could mix two versions)."""
    before = check_regular_file(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except IsADirectoryError as error:
        raise MediaError(f"{path}: is a folder, not a file; pass the files in it or use discover()") from error
    except OSError as error:
        raise MediaError(
            f"{path}: cannot read the file ({error.strerror or error}); check that it exists and is readable"
        ) from error
    if not data:
        raise MediaError(f"{path}: empty file (0 bytes)")
    check_unchanged(path, before)
    return data


def _open_pillow(data: bytes, path: Path, max_pixels: int) -> PILImage.Image:
    """Open lazily (headers only); a decompression bomb becomes a MediaError naming its pixel count."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            image = PILImage.open(io.BytesIO(data))
        except PILImage.DecompressionBombError:
            # Refused by Pillow's global limit: re-open headers only to name the size and let max_pixels decide.
            with _PILLOW_LIMIT_LOCK:
                saved, PILImage.MAX_IMAGE_PIXELS = PILImage.MAX_IMAGE_PIXELS, None
                try:
                    image = PILImage.open(io.BytesIO(data))
                finally:
                    PILImage.MAX_IMAGE_PIXELS = saved
    check_size(path, image.width, image.height, max_pixels)
    return image


def _png_bit_depth(data: bytes) -> int | None:
    return data[24] if data[12:16] == b"IHDR" and len(data) > 25 else None


def _bit_depth(image: PILImage.Image, data: bytes) -> int:
    """Bits per sample as stored in the file (not as Pillow decoded it)."""
    if image.format == "PNG":
        return _png_bit_depth(data) or 8
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return int(max(bits))
    if image.mode.startswith("I;16"):
        return 16
    if image.mode in ("I", "F"):
        return 32
    return 8


def _decode_16bit_colour(data: bytes, path: Path, width: int, height: int) -> np.ndarray:
    """16-bit RGB(A) PNG/TIFF through FFmpeg (Pillow has no 48-bit mode and would keep 8 bits)."""
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        frame = next(container.decode(video=0))
        rgb = frame.to_ndarray(format="rgb48le")
    if rgb.shape[:2] != (height, width):
        raise MediaError(
            f"{path}: 16-bit decoder returned {rgb.shape[1]}x{rgb.shape[0]} px instead of {width}x{height}"
        )
    return rgb.astype(np.float32) * _SCALE_16BIT


def _heif_transformations(image: PILImage.Image) -> tuple | None:
    """libheif's irot/imir/clap steps of the current image; must be read before `load()` frees them."""
    try:
        return tuple(image._heif_file[image.tell()]._c_image.transformations)  # noqa: SLF001 (no public API)
    except Exception:
        return None


def _heif_orientation_and_undo(
    image: PILImage.Image, transformations: tuple | None, rgb: np.ndarray, metadata: dict
) -> tuple[np.ndarray, int]:
    """Undo the rotation/mirror that libheif applied on decoding, back to the coded (sensor) orientation.

    HEIF stores rotation as `irot`/`imir` properties that libheif always applies, and
    pillow-heif then resets the EXIF orientation to 1; the orientation it found is kept in
    info["original_orientation"]. A clean-aperture crop (`clap`) cannot be undone and is noted.
    """
    recorded = image.info.get("original_orientation") or 1
    if transformations is None:
        metadata["heif_transformations"] = "unknown: pixels may be in display orientation"
        return rgb, int(recorded)
    metadata["heif_transformations"] = [list(step) for step in transformations]
    for step in reversed(transformations):
        if step[0] == "irot":  # counter-clockwise quarter turns; undo by turning back
            rgb = np.rot90(rgb, k=-(int(step[1]) // 90) % 4)
        elif step[0] == "imir":  # 1: left-right mirror, 0: top-bottom mirror (pillow-heif's codes)
            rgb = rgb[:, ::-1] if int(step[1]) == 1 else rgb[::-1]
        elif step[0] == "clap":
            metadata["heif_clean_aperture_crop"] = list(step[1:])
    orientation = _orientation_of_transformations(transformations)
    if orientation is None:
        orientation = int(recorded)
    return np.ascontiguousarray(rgb), orientation


# EXIF orientation -> the transform from stored pixels to the upright view.
_EXIF_TO_DISPLAY = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: np.rot90(a[:, ::-1], 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a[:, ::-1], -1),
    8: lambda a: np.rot90(a, 1),
}


def _orientation_of_transformations(transformations: tuple) -> int | None:
    """The EXIF code equivalent to a sequence of HEIF irot/imir steps (found by applying both to a probe array)."""
    probe = np.arange(6).reshape(2, 3)
    shown = probe
    for step in transformations:
        if step[0] == "irot":
            shown = np.rot90(shown, int(step[1]) // 90)
        elif step[0] == "imir":
            shown = shown[:, ::-1] if int(step[1]) == 1 else shown[::-1]
    for code, transform in _EXIF_TO_DISPLAY.items():
        candidate = transform(probe)
        if candidate.shape == shown.shape and np.array_equal(candidate, shown):
            return code
    return None


def _pillow_pixels(image: PILImage.Image, data: bytes, path: Path, metadata: dict) -> np.ndarray:
    """float32 H×W×3 in 0..255 from a loaded Pillow image; notes every conversion in `metadata`."""
    mode, bits = image.mode, metadata["bit_depth"]
    if mode in QUANTISED_MODES:
        raise MediaError(
            f"{path}: {QUANTISED_MODES[mode]} image; colour quantisation destroys the sensor noise, use the original camera file"
        )
    if mode in ("RGB", "RGBA", "RGBX", "RGBa") and bits == 16:
        try:
            pixels = _decode_16bit_colour(data, path, image.width, image.height)
            if mode != "RGB":
                metadata["alpha_dropped"] = True
            return pixels
        except MediaError:
            raise
        except Exception as error:  # keep going with Pillow's 8 bits, and say so
            metadata["bit_depth_read"] = 8
            metadata["note_16bit"] = f"16-bit decoder failed ({type(error).__name__}); read with 8 bits per sample"
    if mode == "RGB":
        return np.asarray(image, dtype=np.float32)
    if mode in ("RGBA", "RGBX", "RGBa"):
        metadata["alpha_dropped"] = mode != "RGBX"
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    if mode in ("L", "LA"):
        metadata["grayscale"] = True
        gray = np.asarray(image.getchannel(0), dtype=np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode.startswith("I;16") or (mode == "I" and bits == 16):
        metadata["grayscale"] = True
        gray = np.asarray(image, dtype=np.float32) * _SCALE_16BIT
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("CMYK", "YCbCr"):
        metadata["converted_from"] = mode
        metadata["conversion"] = f"{mode} converted to RGB by Pillow (no colour management)"
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    raise MediaError(
        f"{path}: unsupported pixel mode {mode} ({bits} bits per sample); convert it to 8- or 16-bit RGB with a lossless tool"
    )


def _describe_pillow(image: PILImage.Image, data: bytes, path: Path) -> tuple[dict, int]:
    try:
        exif = image.getexif()
    except Exception:  # damaged EXIF: the pixels may still be fine
        exif = None
    metadata, orientation = exif_metadata(exif)
    metadata.update({"format": image.format, "mode": image.mode, "bit_depth": _bit_depth(image, data)})
    if image.info.get("icc_profile"):
        metadata["icc_profile_bytes"] = len(image.info["icc_profile"])
    structure = jpeg_structure(image)
    if structure is not None:
        metadata["jpeg"] = structure
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        metadata["n_frames"] = int(frames)
        metadata["frame_used"] = 0
    if image.format == "HEIF":
        orientation = int(image.info.get("original_orientation") or 1)
    return metadata, orientation


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_png_end(data: bytes, path: Path, metadata: dict) -> None:
    """A PNG ends with an IEND chunk; Pillow does not check it, so a file cut inside its last chunk would pass."""
    end = data.rfind(PNG_END)
    if end < 0:
        raise MediaError(f"{path}: truncated PNG file (no IEND chunk at the end); obtain a complete copy")
    trailing = len(data) - end - len(PNG_END)
    if trailing:
        metadata["trailing_bytes"] = trailing  # data appended after the image: worth a look


def _common_metadata(metadata: dict, sniffed: Sniffed, path: Path) -> dict:
    if extension_mismatch(sniffed.container, path):
        metadata["extension_mismatch"] = (
            f"content is {metadata.get('format') or sniffed.container}, extension is {path.suffix or '(none)'}"
        )
    metadata.setdefault("datetime", None)
    metadata.setdefault("make", None)
    metadata.setdefault("model", None)
    clip = live_photo_partner(path, "image")
    if clip is not None:  # the still of a Live Photo: its clip is analysed as a video of its own
        metadata["live_photo_video"] = clip
    return metadata


def _identify_unknown(path: Path, head: bytes) -> None:
    """Content without a magic number listed in formats.py: let Pillow try to identify it from the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(path):
                return
        except PILImage.DecompressionBombError:
            return  # an image after all: the size check that follows names its pixel count
        except Exception as error:
            raise MediaError(
                f"{path}: not an image or a video (unrecognised content starting with {head[:8].hex()}); check the file type"
            ) from error


def _read_pillow(
    data: bytes, path: Path, sniffed: Sniffed, *, max_pixels: int, decode: bool
) -> tuple[np.ndarray | None, int, int, int, dict]:
    """Pixels (when `decode`), stored width and height, orientation and metadata of an image Pillow reads."""
    try:
        image = _open_pillow(data, path, max_pixels)
    except UnidentifiedImageError as error:
        if sniffed.kind == "unknown":
            raise MediaError(
                f"{path}: not an image or a video (unrecognised content starting with {data[:8].hex()}); check the file type"
            ) from error
        raise MediaError(
            f"{path}: corrupt {sniffed.container.upper()} header; the file cannot be opened as an image"
        ) from error
    except MediaError:
        raise
    except Exception as error:
        raise MediaError(
            f"{path}: truncated or corrupt {sniffed.container.upper()} file ({error}); obtain a complete copy"
        ) from error
    metadata, orientation = _describe_pillow(image, data, path)
    width, height = image.width, image.height
    pixels = None
    transformations = _heif_transformations(image) if image.format == "HEIF" else None
    if image.format == "HEIF" and transformations is not None:
        metadata["exif_orientation"] = orientation  # HEIF's own irot/imir decide; EXIF's code kept for the record
        orientation = _orientation_of_transformations(transformations) or orientation
        if orientation >= 5:  # Pillow reports the turned (display) size; the stored one is the other way round
            width, height = height, width
    if image.mode in QUANTISED_MODES:  # refused already by probe: no decision can be made on it
        raise MediaError(
            f"{path}: {QUANTISED_MODES[image.mode]} image; colour quantisation destroys the sensor noise, use the original camera file"
        )
    if decode:
        if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global someone set: truncated files would pass silently
            raise MediaError(
                f"{path}: refusing to decode while PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True (truncation would go unnoticed)"
            )
        try:
            image.load()
        except Exception as error:
            raise MediaError(
                f"{path}: truncated or corrupt {image.format or sniffed.container} file ({error}); obtain a complete copy"
            ) from error
        if image.format == "PNG":
            _check_png_end(data, path, metadata)
        pixels = _pillow_pixels(image, data, path, metadata)
        if image.format == "HEIF":
            pixels, orientation = _heif_orientation_and_undo(image, transformations, pixels, metadata)
            height, width = pixels.shape[:2]
    image.close()
    return pixels, width, height, orientation, metadata


def _read(path: Path, *, max_pixels: int, decode: bool) -> tuple[Medium, np.ndarray | None]:
    path = Path(path)
    head = evidence_head(path)
    sniffed = sniff(head, path)
    if sniffed.kind == "video":
        raise MediaError(f"{path}: is a video ({sniffed.container}), not a still image; read it with read_frames")
    if sniffed.kind == "unknown":
        _identify_unknown(path, head)  # before reading a possibly huge non-image file into memory
    data = _read_bytes(path)
    if sniffed.is_raw:
        pixels, width, height, orientation, metadata = read_raw(data, path, decode=decode, max_pixels=max_pixels)
    else:
        pixels, width, height, orientation, metadata = _read_pillow(
            data, path, sniffed, max_pixels=max_pixels, decode=decode
        )
    medium = Medium(
        path=path,
        sha256=sha256_bytes(data),
        size_bytes=len(data),
        kind="image",
        width=int(width),
        height=int(height),
        orientation=int(orientation),
        metadata=_common_metadata(metadata, sniffed, path),
    )
    return medium, pixels


def _read_noting_warnings(path: Path, *, max_pixels: int, decode: bool) -> tuple[Medium, np.ndarray | None]:
    """`_read`, with the decoders' warnings (Pillow's "Truncated File Read"...) kept in the metadata, not printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        medium, pixels = _read(path, max_pixels=max_pixels, decode=decode)
    notes = sorted({str(w.message) for w in caught if not issubclass(w.category, PILImage.DecompressionBombWarning)})
    if notes:
        medium.metadata["decoder_warnings"] = notes
    return medium, pixels


def probe_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Medium:
    """Describe an image file from its headers (no pixel decoding). Raises MediaError."""
    try:
        return _read_noting_warnings(path, max_pixels=max_pixels, decode=False)[0]
    except MediaError as error:
        raise one_line(error) from error.__cause__
    except Exception as error:  # the boundary: never a traceback for bad input
        raise MediaError(f"{path}: cannot read as an image ({type(error).__name__}: {error})") from error


def read_image(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image's pixels as stored: float32 H×W×3, grey levels 0..255 (16-bit scaled by 255/65535).

    EXIF orientation is recorded in `Image.medium.orientation`, never applied. Grayscale is
    replicated to 3 channels and CMYK converted to RGB (both noted in the metadata);
    palette and 1-bit images, images under 64 px on a side and images over `max_pixels`
    pixels are refused. The file is opened read-only. Raises MediaError with a one-line reason.
    """
    try:
        medium, pixels = _read_noting_warnings(path, max_pixels=max_pixels, decode=True)
    except MediaError as error:
        raise one_line(error) from error.__cause__
    except Exception as error:  # the boundary: never a traceback for bad input
        raise MediaError(f"{path}: cannot read as an image ({type(error).__name__}: {error})") from error
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    return Image(medium=medium, pixels=pixels, saturation=SATURATION)
