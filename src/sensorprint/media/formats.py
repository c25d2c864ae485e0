"""What a file is, from its first bytes (magic numbers), never from its extension.

The extension is only compared with the content afterwards, so that a JPEG named
``.png`` is read as the JPEG it is and the mismatch is recorded for the examiner.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

# How many leading bytes `sniff` needs to decide.
HEAD_BYTES = 4096

RAW_EXTENSIONS = frozenset(
    {
        ".dng",
        ".nef",
        ".nrw",
        ".cr2",
        ".cr3",
        ".crw",
        ".arw",
        ".srf",
        ".sr2",
        ".orf",
        ".rw2",
        ".raf",
        ".pef",
        ".srw",
        ".x3f",
        ".3fr",
        ".fff",
        ".iiq",
        ".mos",
        ".mrw",
        ".erf",
        ".kdc",
        ".dcr",
        ".rwl",
    }
)

# Extensions an examiner expects for each detected container (to flag mismatches).
EXPECTED_EXTENSIONS = {
    "jpeg": {".jpg", ".jpeg", ".jpe", ".jfif", ".mpo"},
    "png": {".png"},
    "tiff": {".tif", ".tiff"},
    "heif": {".heic", ".heif", ".hif", ".avif"},
    "raw": RAW_EXTENSIONS,
    "bmp": {".bmp", ".dib"},
    "webp": {".webp"},
    "gif": {".gif"},
    "jpeg2000": {".jp2", ".j2k", ".jpf", ".jpx"},
    "mp4": {".mp4", ".m4v", ".mov", ".qt", ".3gp", ".3g2", ".mj2"},
    "matroska": {".mkv", ".webm", ".mka"},
    "avi": {".avi"},
    "mpegts": {".ts", ".mts", ".m2ts", ".m2t"},
    "mpegps": {".mpg", ".mpeg", ".vob", ".mod", ".tod"},
    "flv": {".flv"},
    "asf": {".wmv", ".asf"},
    "ogg": {".ogv", ".ogg"},
}

# ISO base media brands (ftyp) of still images; every other brand is treated as video.
HEIF_BRANDS = frozenset(
    {
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"hevc",
        b"hevx",
        b"mif1",
        b"mif2",
        b"msf1",
        b"avif",
        b"avis",
        b"avci",
        b"avcs",
    }
)
# HEIF sequences (hevc, msf1, avis) are decoded as their primary still image by libheif.
CANON_RAW_BRANDS = frozenset({b"crx "})


@dataclass(frozen=True)
class Sniffed:
    """The verdict on a file's leading bytes."""

    kind: str  # "image" | "video" | "unknown"
    container: str  # key of EXPECTED_EXTENSIONS, or "unknown"

    @property
    def is_raw(self) -> bool:
        return self.container == "raw"


def _ftyp_brands(head: bytes) -> tuple[bytes, set[bytes]]:
    """Major brand and the set of compatible brands of an ISO-BMFF `ftyp` box."""
    size = struct.unpack(">I", head[0:4])[0]
    major = head[8:12]
    end = min(size, len(head)) if size >= 16 else min(len(head), 64)
    compatible = {head[offset : offset + 4] for offset in range(16, end - 3, 4)}
    return major, compatible


def _tiff_ifd0_tags(head: bytes) -> set[int]:
    """Tag ids of the first IFD of a TIFF, when it lies within `head` (empty set otherwise)."""
    endian = "<" if head[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(endian + "I", head[4:8])
        (count,) = struct.unpack(endian + "H", head[offset : offset + 2])
        tags = set()
        for entry in range(min(count, 512)):
            start = offset + 2 + 12 * entry
            (tag,) = struct.unpack(endian + "H", head[start : start + 2])
            tags.add(tag)
        return tags
    except (struct.error, IndexError):
        return set()


TAG_MAKE, TAG_SUBIFDS, TAG_DNG_VERSION = 271, 330, 50706


def sniff(head: bytes, path: Path | None = None) -> Sniffed:
    """Classify a file from its first bytes (`HEAD_BYTES` of them suffice).

    `path` is used only for TIFF-structured files, where a camera RAW (NEF, ARW, DNG...)
    and a plain TIFF share the same magic number: a raw extension, a DNGVersion tag, or
    the camera-raw layout (Make plus SubIFDs in IFD0) mark it as RAW.
    """
    suffix = path.suffix.lower() if path is not None else ""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        if head[8:11] == b"CR\x02":  # Canon CR2
            return Sniffed("image", "raw")
        tags = _tiff_ifd0_tags(head)
        if suffix in RAW_EXTENSIONS or TAG_DNG_VERSION in tags or {TAG_MAKE, TAG_SUBIFDS} <= tags:
            return Sniffed("image", "raw")
        return Sniffed("image", "tiff")
    if (
        head[:4] in (b"IIRO", b"IIRS", b"IIU\x00", b"MMOR")
        or head.startswith(b"FUJIFILMCCD-RAW")
        or head.startswith(b"FOVb")
        or head.startswith(b"\x00MRM")
        or head[6:14] == b"HEAPCCDR"
    ):
        return Sniffed("image", "raw")  # ORF, RW2, RAF, X3F, MRW, CRW
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major, compatible = _ftyp_brands(head)
        if major in CANON_RAW_BRANDS:
            return Sniffed("image", "raw")  # Canon CR3
        if major in HEIF_BRANDS or (
            major not in {b"isom", b"mp41", b"mp42", b"qt  "} and compatible & {b"mif1", b"heic", b"avif"}
        ):
            return Sniffed("image", "heif")
        if major in (b"jp2 ", b"jpx "):
            return Sniffed("image", "jpeg2000")
        return Sniffed("video", "mp4")
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return Sniffed("video", "mp4")  # QuickTime without an ftyp box
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return Sniffed("image", "jpeg2000")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "matroska")
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return Sniffed("video", "avi")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    if head.startswith(b"BM") and len(head) >= 26:
        return Sniffed("image", "bmp")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif")
    if head.startswith(b"FLV\x01"):
        return Sniffed("video", "flv")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Sniffed("video", "asf")
    if head.startswith(b"OggS"):
        return Sniffed("video", "ogg")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Sniffed("video", "mpegps")
    if len(head) >= 189 * 3 and all(head[k * 188] == 0x47 for k in range(3)):
        return Sniffed("video", "mpegts")
    if len(head) >= 192 * 3 and all(head[4 + k * 192] == 0x47 for k in range(3)):
        return Sniffed("video", "mpegts")  # M2TS (AVCHD): 4-byte timestamp before each packet
    return Sniffed("unknown", "unknown")


def extension_mismatch(container: str, path: Path) -> bool:
    """True when the file's extension is not one expected for its detected container."""
    expected = EXPECTED_EXTENSIONS.get(container)
    return expected is not None and path.suffix.lower() not in expected


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of a file, opened read-only (OSError propagates)."""
    with open(path, "rb") as handle:
        return handle.read(size)
