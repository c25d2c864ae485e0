"""Camera RAW files (DNG, NEF, CR2, CR3, ARW, ...) through rawpy (LibRaw).

Processing choice, made to keep the sensor noise (PRNU) intact:
- demosaiced by LibRaw (AHD), in the camera's own RGB (``output_color=raw``: no colour
  matrix, which would mix and amplify the noise across channels),
- linear (``gamma=(1, 1)``) and without auto-brightening (``no_auto_bright``), so the
  values stay proportional to the light on each photosite,
- the camera's white balance (``use_camera_wb``); highlights clipped (LibRaw default),
  so a saturated photosite becomes 65535 and maps to 255.0,
- 16 bits per sample, scaled by 255/65535 to float32 grey levels,
- ``user_flip=0``: the sensor's own orientation, as ``raw_image_visible`` is stored; the
  orientation LibRaw read from the file is recorded as an EXIF code, not applied.
Linear data is darker than a JPEG of the same scene; the residual and fingerprint are
multiplicative and unaffected by that scale.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sensorprint.errors import MediaError

from .exif import exif_metadata, json_safe

if TYPE_CHECKING:  # imported where used: reading a JPEG never loads LibRaw
    import rawpy

# LibRaw's `flip` code -> EXIF orientation code (inverse of dcraw's "50132467" table).
LIBRAW_FLIP_TO_EXIF = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}

POSTPROCESS_PARAMETERS = {
    "gamma": [1, 1],
    "no_auto_bright": True,
    "output_bps": 16,
    "use_camera_wb": True,
    "output_color": "raw",
    "user_flip": 0,
    "demosaic_algorithm": "AHD",
    "highlight_mode": "clip",
}


def _tiff_exif(data: bytes) -> tuple[dict, int | None]:
    """EXIF of TIFF-structured RAW files (NEF, DNG, ARW, CR2), parsed from IFD0 by Pillow; empty when not TIFF."""
    from PIL import Image as PILImage

    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return {}, None  # CR3, RAF, ORF...: LibRaw reads them, their metadata is not parsed here
    try:
        exif = PILImage.Exif()
        exif.load(data)  # the header and IFDs only: Pillow cannot decode CFA pixels, and need not
        return exif_metadata(exif)
    except Exception:
        return {}, None


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _captured_stderr(sink: list[str]):
    """Collect what LibRaw writes to the C-level stderr (its data-error handler prints instead of failing).

    The file descriptor is redirected for the duration of the call only, under a lock;
    the text is returned to the caller, never printed.
    """
    with _STDERR_LOCK, tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sink.append(capture.read().decode("utf-8", "replace").strip())


def _tiff_data_end(data: bytes) -> int:
    """The largest end offset of any strip or tile of IFD0, its chained IFDs and their SubIFDs (0 if not TIFF).

    LibRaw pads a RAW file that ends early with zeros instead of failing; for TIFF-based
    RAW files (DNG, NEF, ARW, CR2) this bound catches the truncation.
    """
    import struct

    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return 0
    endian = "<" if data[:2] == b"II" else ">"
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
    codes = {1: "B", 3: "H", 4: "I", 13: "I"}

    def values(kind: int, count: int, field: bytes) -> list[int]:
        size = sizes.get(kind, 1) * count
        if kind not in codes:
            return []
        raw = field if size <= 4 else data[struct.unpack(endian + "I", field)[0] :][:size]
        return list(struct.unpack(endian + codes[kind] * count, raw[:size])) if len(raw) >= size else []

    end, pending, seen = 0, [struct.unpack(endian + "I", data[4:8])[0]], set()
    while pending and len(seen) < 64:
        offset = pending.pop()
        if offset in seen or offset <= 0 or offset + 2 > len(data):
            continue
        seen.add(offset)
        (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
        tags = {}
        for entry in range(min(count, 1024)):
            start = offset + 2 + 12 * entry
            if start + 12 > len(data):
                break
            tag, kind, number = struct.unpack(endian + "HHI", data[start : start + 8])
            if number < 1 << 20:
                tags[tag] = values(kind, number, data[start + 8 : start + 12])
        for offsets, counts in ((273, 279), (324, 325), (513, 514)):  # strips, tiles, JPEG thumbnails
            for place, length in zip(tags.get(offsets, []), tags.get(counts, [])):
                end = max(end, place + length)
        pending.extend(tags.get(330, []))  # SubIFDs hold the full-size raw data
        next_at = offset + 2 + 12 * count
        if next_at + 4 <= len(data):
            pending.append(struct.unpack(endian + "I", data[next_at : next_at + 4])[0])
    return end


def read_raw(
    data: bytes, path: Path, *, decode: bool, max_pixels: int | None
) -> tuple[np.ndarray | None, int, int, int, dict]:
    """(pixels or None, width, height, orientation, metadata) of a camera RAW file in memory.

    `decode=False` reads the headers only (for `probe`). Raises MediaError.
    """
    import rawpy

    from .medium import check_size

    try:
        raw = rawpy.RawPy()
        raw.open_buffer(io.BytesIO(data))
        sizes = raw.sizes
        width, height = int(sizes.width), int(sizes.height)
        check_size(path, width, height, max_pixels)
        _check_complete(data, path)
        if decode:
            _unpack(raw, path)  # before any other property: rawpy unpacks implicitly, and a second unpack is refused
        orientation = LIBRAW_FLIP_TO_EXIF.get(int(sizes.flip), 1)
        metadata = _header_metadata(raw, sizes, data)
        pixels = None
        if decode:
            pixels = _decoded_pixels(raw, metadata)
            height, width = pixels.shape[:2]
        raw.close()
    except MediaError:
        raise
    except rawpy.LibRawFileUnsupportedError as error:
        raise MediaError(f"{path}: not a camera RAW file LibRaw can read ({error}); check the file type") from error
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawTooBigError) as error:
        raise MediaError(f"{path}: truncated or corrupt camera RAW file ({type(error).__name__}: {error})") from error
    except Exception as error:
        raise MediaError(f"{path}: cannot decode camera RAW file ({type(error).__name__}: {error})") from error
    return pixels, width, height, orientation, metadata


def _check_complete(data: bytes, path: Path) -> None:
    """Raise MediaError where the TIFF structure says the image data runs past the end of `data`."""
    needed = _tiff_data_end(data)
    if needed > len(data):
        raise MediaError(
            f"{path}: truncated camera RAW file ({len(data):,} bytes, its image data runs to {needed:,}); obtain a complete copy"
        )


def _unpack(raw: rawpy.RawPy, path: Path) -> None:
    """Unpack the raw data; MediaError where LibRaw complains on stderr (it pads missing data instead of failing)."""
    libraw_said: list[str] = []
    with _captured_stderr(libraw_said):
        raw.unpack()
    if libraw_said[0]:  # e.g. "Unexpected end of file"
        raise MediaError(
            f"{path}: corrupt camera RAW file (LibRaw: {' '.join(libraw_said[0].split())[:200]}); obtain a complete copy"
        )


def _header_metadata(raw: rawpy.RawPy, sizes: rawpy.ImageSizes, data: bytes) -> dict:
    """EXIF (of TIFF-structured files), what LibRaw read from the headers, and the processing applied.

    `sizes`: `raw.sizes` as read before unpacking.
    """
    metadata, _ = _tiff_exif(data)
    metadata.update(
        {
            "format": "RAW",
            "mode": "RGB",
            "bit_depth": 16,
            "color_desc": raw.color_desc.decode("ascii", "replace"),
            "raw_size": [int(sizes.raw_width), int(sizes.raw_height)],
            "libraw_flip": int(sizes.flip),
            "pixel_aspect": float(sizes.pixel_aspect),
            "raw_processing": dict(POSTPROCESS_PARAMETERS),
        }
    )
    return metadata


def _decoded_pixels(raw: rawpy.RawPy, metadata: dict) -> np.ndarray:
    """H×W×3 float32 grey levels 0..255 (see the module docstring); records the sensor levels in `metadata`."""
    import rawpy

    metadata["raw_type"] = str(raw.raw_type).rsplit(".", 1)[-1]
    metadata["black_level_per_channel"] = json_safe(list(raw.black_level_per_channel))
    metadata["white_level"] = int(raw.white_level)
    metadata["camera_whitebalance"] = json_safe(list(raw.camera_whitebalance))
    metadata["raw_pattern"] = json_safe(raw.raw_pattern.tolist()) if raw.raw_pattern is not None else None
    rgb16 = raw.postprocess(
        gamma=(1, 1),
        no_auto_bright=True,
        output_bps=16,
        use_camera_wb=True,
        output_color=rawpy.ColorSpace.raw,
        user_flip=0,
        demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
        highlight_mode=rawpy.HighlightMode.Clip,
    )
    return rgb16.astype(np.float32) * np.float32(255.0 / 65535.0)
