"""Finding the files to examine under the paths an examiner gives (files and folders, recursively)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# Operating-system bookkeeping files that are never evidence; they are the only files
# skipped by name (each skip is still reported through the `skipped` callback).
OS_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", ".localized", "Icon\r"})
# Folders of OS indexes (not user content). Recycle bins are NOT skipped: deleted files are evidence.
OS_JUNK_FOLDERS = frozenset({".Spotlight-V100", ".fseventsd", ".TemporaryItems", ".DocumentRevisions-V100"})
# macOS "AppleDouble" companions (._name) carry only resource forks; recognised by content, not by name alone.
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"


def _is_appledouble(path: Path) -> bool:
    if not path.name.startswith("._"):
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == APPLEDOUBLE_MAGIC
    except OSError:
        return False


def skip_reason(path: Path, mode: int | None) -> str | None:
    """Why a file met during the walk is not yielded, or None when it is yielded."""
    if path.name in OS_JUNK_NAMES:
        return "operating-system bookkeeping file"
    if mode is not None and not stat.S_ISREG(mode):
        return "not a regular file (device, pipe or socket): reading it could block"
    if _is_appledouble(path):
        return "macOS AppleDouble resource-fork companion"
    return None


def discover(paths: Iterable[Path], *, skipped: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every file under `paths` (files and folders, recursive), in a deterministic sorted order.

    Input paths are visited in sorted order and each folder's entries sorted by name, so
    the order is the lexicographic order of the path components. Symlinks are followed,
    but a folder already visited (same device and inode) is not entered again: no loops.
    Nothing is skipped silently: missing paths, broken links and unreadable folders are
    yielded (the reader then reports why they cannot be read); only OS bookkeeping files
    (OS_JUNK_NAMES, OS_JUNK_FOLDERS, AppleDouble ``._`` files) and non-regular files
    are skipped, each reported to `skipped(path, reason)` when given.
    """
    seen_folders: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def report(path: Path, reason: str) -> None:
        if skipped is not None:
            skipped(path, reason)

    def walk(path: Path) -> Iterator[Path]:
        try:
            info = path.stat()  # follows symlinks
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            if path.name in OS_JUNK_FOLDERS:
                report(path, "operating-system index folder")
                return
            key = (info.st_dev, info.st_ino)
            if key in seen_folders:
                report(path, "folder already visited (symlink loop or duplicate)")
                return
            seen_folders.add(key)
            try:
                children = sorted(os.scandir(path), key=lambda entry: entry.name)
            except OSError:
                yield path  # unreadable folder: let the reader say so
                return
            for child in children:
                yield from walk(Path(child.path))
            return
        reason = skip_reason(path, info.st_mode if info is not None else None)
        if reason is not None:
            report(path, reason)
            return
        if str(path) not in seen_files:
            seen_files.add(str(path))
            yield path

    for root in sorted(Path(p) for p in paths):
        yield from walk(root)
