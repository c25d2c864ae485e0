"""Finding the files to examine under the paths an examiner gives (files and folders, recursively)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

# Operating-system bookkeeping files that are never evidence: yielded like any file, and
# refused by name by the reader (`medium.check_regular_file`), so each is one line in the results.
OS_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", ".localized", "Icon\r"})
# Folders of OS indexes (not user content): not entered, yielded, and refused by name by the reader.
# Recycle bins are NOT among them: deleted files are evidence.
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
    """Why a file is not examined (OS bookkeeping, or not a regular file), or None when it is.

    `mode` is the file's st_mode (None when unknown). A file is opened (4 bytes read) only
    when it is regular and named ``._*``, to recognise an AppleDouble companion by content.
    """
    if path.name in OS_JUNK_NAMES:
        return "operating-system bookkeeping file"
    if mode is not None and not stat.S_ISREG(mode):
        return f"not a regular file ({file_type(mode)}): not read, reading it could block"
    if mode is not None and _is_appledouble(path):
        return "macOS AppleDouble resource-fork companion"
    return None


def file_type(mode: int) -> str:
    """The kind of a non-regular file, in words, from its st_mode."""
    for test, name in (
        (stat.S_ISFIFO, "pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISDIR, "folder"),
    ):
        if test(mode):
            return name
    return "special file"


def recorded_path(path: Path) -> Path:
    """The absolute path under which an entry that `discover` yields is recorded.

    A file (or a link to one) is recorded under its resolved path, as always. A link that
    leads nowhere (broken, looping) and a folder (or a link to one) keep their own name in
    their resolved parent folder: the record then names the entry the examiner sees, and
    resolving never fails (Path.resolve raises RuntimeError on a symlink loop).
    """
    path = Path(path)
    try:
        if not path.is_dir():
            return path.resolve(strict=True)
    except (OSError, RuntimeError):
        pass
    return path.parent.resolve() / path.name


def discover(paths: Iterable[Path], *, skipped: Callable[[Path, str], None] | None = None) -> Iterator[Path]:
    """Every entry under `paths` (files and folders, recursive), in a deterministic sorted order.

    Input paths (duplicates dropped) are visited in sorted order and each folder's entries
    sorted by name, so the order is the lexicographic order of the path components.
    Symlinks are followed, but a folder already visited (same device and inode) is not
    entered again: no loops.

    Nothing is skipped, silently or not: every entry the walk meets and does not enter is
    yielded, and the reader refuses those that must not be examined with a one-line
    MediaError (`medium.check_regular_file`), so each becomes one error row in a case and
    one line of its report. That covers missing paths, broken and looping links, unreadable
    folders, pipes, sockets and devices (never opened: opening a pipe blocks), OS
    bookkeeping files (OS_JUNK_NAMES, AppleDouble ``._`` files), OS index folders
    (OS_JUNK_FOLDERS) and folders met a second time (through a link). `skipped(path,
    reason)`, when given, is also told of each such entry that the walk can name a reason for.
    """
    seen_folders: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def report(path: Path, reason: str) -> None:
        if skipped is not None:
            skipped(path, reason)

    def walk(path: Path) -> Iterator[Path]:
        try:
            info = path.stat()  # follows symlinks; never opens the file
        except OSError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            yield from folder(path, info)
            return
        reason = skip_reason(path, info.st_mode if info is not None else None)
        if reason is not None:
            report(path, reason)
        if str(path) not in seen_files:
            seen_files.add(str(path))
            yield path

    def folder(path: Path, info: os.stat_result) -> Iterator[Path]:
        key = (info.st_dev, info.st_ino)
        if path.name in OS_JUNK_FOLDERS or key in seen_folders:
            index = path.name in OS_JUNK_FOLDERS
            report(path, "operating-system index folder" if index else "folder already visited (link loop or alias)")
            yield path
            return
        seen_folders.add(key)
        try:
            children = sorted(os.scandir(path), key=lambda entry: entry.name)
        except OSError:
            yield path  # unreadable folder: let the reader say so
            return
        for child in children:
            yield from walk(Path(child.path))

    for root in sorted({Path(p) for p in paths}):
        yield from walk(root)
