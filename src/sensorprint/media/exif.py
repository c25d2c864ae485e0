"""EXIF metadata as a small JSON-serialisable dict (Pillow's getexif and its sub-IFDs)."""

from __future__ import annotations

import math
from typing import Any

TAG_ORIENTATION = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825

# IFD0 tags kept, by the name they get in Medium.metadata.
IFD0_TAGS = {
    0x010F: "make",
    0x0110: "model",
    0x0131: "software",
    0x0132: "datetime_modified",
    0x013B: "artist",
    0x010E: "image_description",
}
# Exif sub-IFD tags kept.
EXIF_TAGS = {
    0x9003: "datetime_original",
    0x9004: "datetime_digitized",
    0x9011: "offset_time_original",
    0x9291: "subsec_time_original",
    0xA431: "body_serial_number",
    0xA430: "camera_owner_name",
    0xA433: "lens_make",
    0xA434: "lens_model",
    0xA420: "image_unique_id",
    0x829A: "exposure_time_s",
    0x829D: "f_number",
    0x8827: "iso",
    0x920A: "focal_length_mm",
    0xA002: "exif_pixel_width",
    0xA003: "exif_pixel_height",
}


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy of an EXIF or container value (bytes, rationals, tuples...)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value.strip("\x00 ").strip() if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        try:
            return text.decode("ascii").strip()
        except UnicodeDecodeError:
            return text.hex()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    try:  # IFDRational, Fraction, numpy scalars
        return json_safe(float(value))
    except (TypeError, ValueError, ZeroDivisionError):
        return str(value)


def _gps_degrees(values: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (float(v) for v in values)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    sign = -1.0 if str(ref).strip("\x00").upper() in ("S", "W") else 1.0
    decimal = sign * (degrees + minutes / 60.0 + seconds / 3600.0)
    return decimal if math.isfinite(decimal) else None


def exif_metadata(exif: Any) -> tuple[dict, int]:
    """(metadata dict, orientation code 1..8) from a Pillow ``Image.Exif`` object.

    A missing or out-of-range orientation is reported as 1 (no rotation recorded) and the
    raw value, if any, is kept under ``orientation_recorded`` so nothing is hidden.
    """
    metadata: dict = {}
    if exif is None or len(exif) == 0:
        return metadata, 1
    for tag, name in IFD0_TAGS.items():
        if tag in exif:
            metadata[name] = json_safe(exif[tag])
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # a damaged sub-IFD leaves the rest of the EXIF usable
        sub = {}
    for tag, name in EXIF_TAGS.items():
        if tag in sub:
            metadata[name] = json_safe(sub[tag])
    metadata["datetime"] = metadata.get("datetime_original") or metadata.get("datetime_modified")
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:
        gps = {}
    if gps:
        latitude, longitude = _gps_degrees(gps.get(2), gps.get(1)), _gps_degrees(gps.get(4), gps.get(3))
        if latitude is not None and longitude is not None:
            metadata["gps"] = {"latitude": latitude, "longitude": longitude}
    raw = exif.get(TAG_ORIENTATION)
    orientation = raw if isinstance(raw, int) and 1 <= raw <= 8 else 1
    if raw is not None and raw != orientation:
        metadata["orientation_recorded"] = json_safe(raw)
    return {key: value for key, value in metadata.items() if value not in (None, "")}, orientation
