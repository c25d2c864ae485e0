"""`Medium`: one file of evidence or reference, and `probe`, which describes a file without decoding it."""

from __future__ import annotations

import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sensorprint.errors import MediaError

from .discover import OS_JUNK_FOLDERS, skip_reason
from .formats import HEAD_BYTES, read_head, sniff

# Smallest side (pixels) an image or video frame may have: below it there is too little
# sensor noise for any decision.
MIN_SIDE = 64


@dataclass(frozen=True)
class Medium:
    """One file of evidence or reference.

    `width`/`height` are the pixels as stored. `orientation` is the EXIF orientation code
    1..8 as recorded (videos: the rotation tag mapped 0->1, 90->6, 180->3, 270->8); it is
    never applied to the pixels. `metadata` is JSON-serialisable.
    """

    path: Path
    sha256: str
    size_bytes: int
    kind: str  # "image" | "video"
    width: int
    height: int
    orientation: int
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict:
        """A JSON-serialisable dict of every field (path as a string)."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "orientation": self.orientation,
            "metadata": json.loads(json.dumps(self.metadata, default=str)),
        }


def one_line(error: MediaError) -> MediaError:
    """The same error with its message on one line (library messages may carry newlines)."""
    text = str(error)
    return error if "\n" not in text and "\r" not in text else MediaError(" ".join(text.split()))


def check_size(path: Path, width: int, height: int, max_pixels: int | None = None) -> None:
    """Refuse pixel sizes too small for sensor noise, or beyond `max_pixels` (decompression bombs)."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise MediaError(
            f"{path}: image too small ({width}x{height} px; at least {MIN_SIDE} px on each side are needed)"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise MediaError(
            f"{path}: {width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(possible decompression bomb); raise max_pixels only if the file is trusted"
        )


def probe(path: Path, *, max_pixels: int = 200_000_000) -> Medium:
    """Describe a file (hash, kind, size, orientation, metadata) without decoding its pixels.

    The kind is detected from the content (magic bytes), not the extension. Images are
    opened lazily (headers only: a truncated image passes probe and fails read_image);
    videos are demuxed in full (exact frame count, keyframes, truncation, frame rate) and
    their first frame is decoded (proves the codec, gives the display matrix). Raises MediaError.
    """
    try:
        return _probe(Path(path), max_pixels)
    except MediaError as error:
        raise one_line(error) from error.__cause__


def _probe(path: Path, max_pixels: int) -> Medium:
    # Imported here because image.py and video.py import Medium from this module.
    from .image import probe_image
    from .video import probe_video

    sniffed = sniff(evidence_head(path), path)
    if sniffed.kind == "video":
        return probe_video(path)
    if sniffed.kind == "image":
        return probe_image(path, max_pixels=max_pixels)
    try:  # unknown magic: Pillow knows formats this module does not list
        return probe_image(path, max_pixels=max_pixels)
    except MediaError as image_error:
        try:  # ... and FFmpeg knows containers without a clear magic number
            return probe_video(path, loose=True)
        except MediaError:
            raise image_error from None


def evidence_head(path: Path) -> bytes:
    """The leading bytes of a regular, non-empty file, which tell its format; MediaError otherwise."""
    check_regular_file(path)
    try:
        head = read_head(path, HEAD_BYTES)
    except OSError as error:
        raise MediaError(
            f"{path}: cannot read the file ({error.strerror or error}); check that it exists and is readable"
        ) from error
    if not head:
        raise MediaError(f"{path}: empty file (0 bytes)")
    return head


@dataclass(frozen=True)
class FileState:
    """One state of a file: size (bytes), modification time (ns since the epoch), inode and device.

    Two reads of a file describe the same bytes only when its state did not change in
    between (a rewrite in place changes the size or the modification time, a replacement
    the inode). Same size and same time can still hide a rewrite within the file system's
    timestamp resolution (a few ms on Linux): a limit of any check that does not reread.
    """

    size: int
    mtime_ns: int
    inode: int
    device: int


def file_state(path: Path) -> tuple[FileState, int]:
    """The state and st_mode of a file (links followed; nothing is opened); MediaError (one line) when it has none."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise MediaError(_stat_problem(Path(path), error)) from error
    return FileState(info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev), info.st_mode


def _stat_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return f"{path}: symbolic link loop (the link leads back to itself); nothing to read"
    if isinstance(error, FileNotFoundError):
        try:
            target = os.readlink(path)
        except OSError:  # not a link (or gone): a plain missing file
            target = None
        if target is not None:
            return f"{path}: file not found: broken link to {target}; nothing to read"
        return f"{path}: file not found (or a broken link); it may have been deleted or moved after it was listed"
    return f"{path}: cannot read the file ({error.strerror or error}); check that it exists and is readable"


def check_unchanged(path: Path, before: FileState) -> None:
    """Refuse a file whose state is no longer `before` (it changed while it was being read)."""
    after, _ = file_state(path)
    changed = [
        what
        for what, old, new in (
            ("size", before.size, after.size),
            ("modification time", before.mtime_ns, after.mtime_ns),
            ("inode", (before.device, before.inode), (after.device, after.inode)),
        )
        if old != new
    ]
    if changed:
        raise MediaError(f"{path}: changed while it was being read ({', '.join(changed)}); examine it again")


def check_regular_file(path: Path) -> FileState:
    """The state of a regular file that may be examined; MediaError (one line) for anything else.

    Refused without being opened: missing paths, broken and looping links, folders, pipes,
    sockets and devices (reading a pipe could block forever). Refused by name or content:
    OS bookkeeping files (see `discover`); a ``._*`` file is opened (4 bytes) to tell.
    """
    state, mode = file_state(path)
    if stat.S_ISDIR(mode):
        raise MediaError(_folder_problem(Path(path)))
    reason = skip_reason(Path(path), mode)
    if reason is not None:
        raise MediaError(f"{path}: {reason}" if not stat.S_ISREG(mode) else f"{path}: not examined: {reason}")
    return state


def _folder_problem(path: Path) -> str:
    """Why a folder met as a file is not examined (`discover` yields only the folders it does not enter)."""
    if path.name in OS_JUNK_FOLDERS:
        return f"{path}: not examined: operating-system index folder"
    try:
        with os.scandir(path):
            pass
    except OSError as error:
        return f"{path}: folder cannot be listed ({error.strerror or error}); the files in it were not examined"
    if os.path.islink(path):
        return (
            f"{path}: link to the folder {os.path.realpath(path)}, whose files are examined once, "
            "under the path where they were first met; not examined again"
        )
    return f"{path}: is a folder, not a file; pass the files in it or use discover()"


# A Live Photo is a still (HEIC, or JPEG when the phone saves "most compatible") and a
# QuickTime clip of about 3 s around it, written side by side under one base name
# (IMG_0001.HEIC + IMG_0001.MOV) and tied by an Apple content identifier.
LIVE_PHOTO_STILLS = (".heic", ".heif", ".jpg", ".jpeg")
LIVE_PHOTO_CLIPS = (".mov",)


def live_photo_partner(path: Path, kind: str) -> str | None:
    """The file name of the other half of a Live Photo beside `path` (same folder, same base name), or None.

    kind: "video" looks for the still (.HEIC, .HEIF, .JPG, .JPEG, any case) beside a .MOV;
    "image" looks for the .MOV beside a still. Never raises.
    """
    path = Path(path)
    own, wanted = (LIVE_PHOTO_CLIPS, LIVE_PHOTO_STILLS) if kind == "video" else (LIVE_PHOTO_STILLS, LIVE_PHOTO_CLIPS)
    if path.suffix.lower() not in own:
        return None
    for suffix in wanted:  # a few stat calls, not a listing of the folder (evidence folders can be huge)
        for spelled in (suffix.upper(), suffix):
            sibling = path.with_suffix(spelled)
            try:
                if sibling.is_file():
                    return sibling.name
            except (OSError, ValueError):
                continue
    return None
