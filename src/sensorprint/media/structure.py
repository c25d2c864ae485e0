"""The structure of a JPEG file, and whether it is consistent with a camera's own files.

A camera writes its JPEGs with its own quantisation tables, chroma subsampling, EXIF
make/model, thumbnail size and maker notes; editing software and social networks rewrite
some of them. Comparing these with the device's reference files is model-level
corroboration that is not noise (Kee, Johnson & Farid, "Digital image authentication from
JPEG headers", IEEE TIFS 2011; Farid, "Digital image ballistics from JPEG quantization",
2006). It is shown beside PRNU and the CNN and never decides on its own: several cameras
share tables, and one camera can use several (Nikon bodies pick them per image).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# IJG's standard luminance table (ITU-T T.81 Annex K), in the row order Pillow reports.
_IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
# Software names that say a file was written by an editor, not by the camera (case-insensitive substrings).
EDITORS = (
    "photoshop", "lightroom", "gimp", "snapseed", "picasa", "paint.net", "affinity", "pixelmator",
    "capture one", "darktable", "rawtherapee", "acdsee", "irfanview", "windows photo", "photos",
    "instagram", "facetune", "vsco", "picsart", "canva", "imagemagick", "exiftool",
)  # fmt: skip
IFD1, THUMBNAIL_OFFSET, THUMBNAIL_LENGTH, MAKER_NOTE, EXIF_IFD = -1, 0x0201, 0x0202, 0x927C, 0x8769


def ijg_quality(luma: Sequence[int]) -> int | None:
    """The IJG quality factor (1..100) whose scaled standard table is closest to this luminance table."""
    if len(luma) != 64:
        return None
    scale = sum(100.0 * q / s for q, s in zip(luma, _IJG_LUMA, strict=True)) / 64
    quality = (200.0 - scale) / 2 if scale <= 100 else 5000.0 / scale
    return max(1, min(100, round(quality)))


def _thumbnail_size(image: Any, exif: Any) -> list[int] | None:
    """The pixel size of the EXIF thumbnail (IFD1), read from the EXIF bytes already in memory."""
    try:
        ifd1 = exif.get_ifd(IFD1)
        offset, length = int(ifd1[THUMBNAIL_OFFSET]), int(ifd1[THUMBNAIL_LENGTH])
        raw = image.info.get("exif", b"")
        tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
        from PIL import Image

        with Image.open(io.BytesIO(tiff[offset : offset + length])) as thumb:
            return [int(thumb.width), int(thumb.height)]
    except Exception:  # noqa: BLE001 - no thumbnail, or a damaged one: simply not recorded
        return None


def jpeg_structure(image: Any) -> dict[str, Any] | None:
    """The structure of an opened Pillow JPEG: tables (hash and IJG quality), subsampling, thumbnail, maker notes.

    Returns None for an image that is not a JPEG. Reads nothing beyond what Pillow holds.
    """
    if getattr(image, "format", None) != "JPEG":
        return None
    from PIL import JpegImagePlugin

    tables = {str(k): [int(v) for v in table] for k, table in sorted(getattr(image, "quantization", {}).items())}
    try:
        exif = image.getexif()
        maker_notes = MAKER_NOTE in exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 - damaged EXIF: the tables still speak
        exif, maker_notes = None, False
    return {
        "tables_sha256": hashlib.sha256(json.dumps(tables, sort_keys=True).encode()).hexdigest(),
        "quality": ijg_quality(tables.get("0", [])),
        "n_tables": len(tables),
        "subsampling": {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(image), "other"),
        "thumbnail": _thumbnail_size(image, exif) if exif is not None else None,
        "maker_notes": bool(maker_notes),
        "progressive": bool(image.info.get("progressive") or image.info.get("progression")),
    }


class Consistency(StrEnum):
    CONSISTENT = "consistent"
    INCONSISTENT = "inconsistent"  # another make or model, subsampling or thumbnail size than every reference
    EDITED = "edited"  # written by editing software, or its camera metadata stripped
    UNKNOWN = "unknown"  # not a JPEG, or no reference of the device has a recorded structure


@dataclass(frozen=True)
class StructureCheck:
    """How a file's JPEG structure compares with a device's reference files, and why."""

    state: Consistency
    reasons: list[str] = field(default_factory=list)


def editor_name(software: Any) -> str | None:
    """The editing application an EXIF Software value names (one of `EDITORS`), or None for a camera's own."""
    return _editor(software)


def _editor(software: Any) -> str | None:
    name = str(software or "").lower()
    return next((editor for editor in EDITORS if editor in name), None)


def _contradictions(query: Mapping[str, Any], refs: list[Mapping[str, Any]]) -> list[str]:
    """What the query's structure has that no reference has and the camera would not change from file to file."""
    found = []
    for key in ("make", "model"):
        seen = {r.get(key) for r in refs if r.get(key)}
        if query.get(key) and seen and query.get(key) not in seen:
            found.append(f"EXIF {key} {query.get(key)!r}, the references {sorted(seen)!r}")
    q = query["jpeg"]
    if q["subsampling"] not in {r["jpeg"]["subsampling"] for r in refs}:
        found.append(f"chroma subsampling {q['subsampling']}, never in the references")
    thumbs = {tuple(r["jpeg"]["thumbnail"] or ()) for r in refs}
    if q["thumbnail"] and not thumbs & {tuple(q["thumbnail"]), tuple(q["thumbnail"][::-1])}:
        found.append(f"EXIF thumbnail {q['thumbnail'][0]}x{q['thumbnail'][1]}, never in the references")
    return found


def _table_note(query: Mapping[str, Any], refs: list[Mapping[str, Any]]) -> str | None:
    """A note when the query's quantisation tables are not among the references' (not a contradiction)."""
    seen = {r["jpeg"]["tables_sha256"] for r in refs}
    if query["jpeg"]["tables_sha256"] in seen:
        return None
    return (
        f"its quantisation tables (IJG quality ~{query['jpeg']['quality']}) are not among the {len(seen)} set(s) "
        f"of the {len(refs)} references: some cameras pick tables per image (Nikon bodies do), so this alone "
        "says nothing"
    )


def compare_structure(
    query: Mapping[str, Any] | None, references: Sequence[Mapping[str, Any] | None]
) -> StructureCheck:
    """Compare a file's metadata (`Medium.metadata`, with its "jpeg" structure) with a device's references'."""
    refs = [r for r in references if r and r.get("jpeg")]
    if not query or not query.get("jpeg"):
        return StructureCheck(Consistency.UNKNOWN, ["not a JPEG file: no structure to compare"])
    if not refs:
        return StructureCheck(Consistency.UNKNOWN, ["no reference file of the device has a recorded JPEG structure"])
    editor = _editor(query.get("software"))
    if editor and not any(_editor(r.get("software")) for r in refs):
        return StructureCheck(Consistency.EDITED, [f"written by {query.get('software')!r} (editing software)"])
    if not query.get("make") and not query["jpeg"]["maker_notes"] and any(r.get("make") for r in refs):
        return StructureCheck(
            Consistency.EDITED, ["camera EXIF stripped (no make, no maker notes): re-saved or shared"]
        )
    contradictions = _contradictions(query, refs)
    if contradictions:
        return StructureCheck(Consistency.INCONSISTENT, contradictions)
    note = _table_note(query, refs)
    reasons = [f"make, model, subsampling and thumbnail as in {len(refs)} references"] + ([note] if note else [])
    return StructureCheck(Consistency.CONSISTENT, reasons)
