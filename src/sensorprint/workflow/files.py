"""One file of evidence or reference as the workflow meets it: its facts, and reading it safely.

`FileFacts` is what the case store needs about a file whether it could be read or not;
`read_medium` opens it once (content sniffed, never the extension). Every failure a file
can cause becomes one line in its facts (`fail`), so one bad file never ends a run.
"""

from __future__ import annotations

import os
import stat
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import MatchError, MediaError
from sensorprint.media import Medium, probe, read_frames, read_image, sha256_file
from sensorprint.media.formats import sniff
from sensorprint.media.medium import FileState, check_regular_file, check_unchanged, evidence_head, file_state
from sensorprint.media.video import Frame, read_video
from sensorprint.store.names import printable, storable
from sensorprint.workflow.options import SignalOptions


@dataclass
class FileFacts:
    """What the store needs about one file, whether it could be read or not."""

    path: str
    size_bytes: int | None  # None: the path had no status at all (see `stat_file`)
    mtime_ns: int | None
    medium: Medium | None = None
    error: str | None = None
    sha256: str | None = None  # also for files that cannot be read: the hash goes into every result
    frames: list[dict] = field(default_factory=list)
    # CPU seconds (process time) per step: "probe" (read, hash), "decode", "residual"; for benchmarks, not stored
    timings: dict[str, float] = field(default_factory=dict)
    # a reference image's centre windows of W·I and I² and its pixel count (`signals.enrollment_part`), for the
    # leave-one-out check of references (`workflow.references`); not stored
    fit_window: tuple | None = field(default=None, repr=False)
    # a reference video's alignment to the running estimate (`signals._add_video`): stabilisation, frames
    # aligned and left out, their transforms; stored with the file's details
    alignment: dict | None = None

    def error_line(self) -> str:
        """The error as one line that names the file (messages from the readers often already do)."""
        shown = printable(self.path)
        return self.error if shown in self.error else f"{shown}: {self.error}"

    def store_fields(self) -> dict:
        """The keyword arguments of `Case.add_medium` / `Case.record_results` for this file."""
        m = self.medium
        return {
            "path": self.path,
            "sha256": m.sha256 if m else self.sha256,
            "size_bytes": self.size_bytes,
            "mtime_ns": self.mtime_ns,
            "kind": m.kind if m else None,
            "width": m.width if m else None,
            "height": m.height if m else None,
            "orientation": m.orientation if m else None,
            "metadata": m.metadata if m else {},
            "status": "error" if self.error else "ok",
            "error": self.error,
            "details": ({"frames": self.frames} if self.frames else {})
            | ({"alignment": self.alignment} if self.alignment else {}),
        }


def stat_file(path: Path) -> tuple[int | None, int | None]:
    """Size in bytes and modification time in ns: the cheap test that a file is unchanged.

    Never raises: a link that leads nowhere (broken, looping) gives the link's own values
    (lstat), so that it too is recognised as unchanged on a resumed scan; a path that has
    no status at all (deleted, or in a folder that cannot be searched) gives (None, None).
    """
    for follow in (True, False):
        try:
            info = os.stat(path, follow_symlinks=follow)
        except OSError:
            continue
        return info.st_size, info.st_mtime_ns
    return None, None


def file_facts(path: Path) -> FileFacts:
    """The facts of a file before it is read: its size and modification time (`stat_file`)."""
    size, mtime = stat_file(path)
    return FileFacts(path=str(path), size_bytes=size, mtime_ns=mtime)


def fail(facts: FileFacts, error: BaseException) -> None:
    """Record why a file could not be used (one line), and still hash it when its bytes can be read."""
    facts.error = one_line(error, facts.path)
    if not isinstance(error, (MediaError, MatchError)):
        facts.error += " | " + storable(traceback.format_exc(limit=3).replace("\n", " ")[-300:])
    facts.sha256 = stable_hash(Path(facts.path), facts.size_bytes, facts.mtime_ns)


def stable_hash(path: Path, size: int | None, mtime_ns: int | None) -> str | None:
    """The SHA-256 of a regular file still of `size` bytes and modified at `mtime_ns`, and unchanged while hashed; else None.

    Never opens anything but a regular file (opening a pipe blocks). A file that changed
    since its facts were taken gets no hash: its facts keep the state before reading, so
    the hash, size and time of its record never describe two different states of it.
    """
    try:
        state, mode = file_state(path)
        if not stat.S_ISREG(mode) or (state.size, state.mtime_ns) != (size, mtime_ns):
            return None
        digest = sha256_file(path)
        check_unchanged(path, state)
    except MediaError:
        return None
    return digest


def read_medium(
    path: Path, options: SignalOptions | None = None, facts: FileFacts | None = None
) -> tuple[Medium, np.ndarray | None, Iterator[Frame] | None]:
    """The medium of a file, with an image's pixels or the frames `options` choose of a video.

    One open of the file for images and for videos (`read_video` gives the probe and the
    frames together); a video's frames come only when `options` are given. The kind is told
    from the content, never the extension; content no magic number identifies is tried as
    an image first, then as a video container.

    The file is refused before anything opens it unless it is a regular file that may be
    examined (`media.medium.check_regular_file`). Its state (size, modification time,
    inode) is taken then and checked again after the pixels are read, or after the last
    frame (videos are decoded by path after hashing): a file that changed in between
    raises MediaError. `facts`, when given, get their size and time from that first state,
    so that they describe the bytes that were hashed.
    """
    before = check_regular_file(path)
    if facts is not None:
        facts.size_bytes, facts.mtime_ns = before.size, before.mtime_ns
    medium, pixels, frames = _read_kind(path, options)
    if frames is None:
        check_unchanged(path, before)
        return medium, pixels, None
    return medium, None, _unchanged_at_end(frames, path, before)


def _unchanged_at_end(frames: Iterator[Frame], path: Path, before: FileState) -> Iterator[Frame]:
    """The frames, then a check that the file is still in the state `before`."""
    yield from frames
    check_unchanged(path, before)


def _read_kind(path: Path, options: SignalOptions | None) -> tuple[Medium, np.ndarray | None, Iterator[Frame] | None]:
    kind = sniff(evidence_head(path), path).kind
    if kind == "video":
        if options is None:
            return probe(path), None, None
        medium, frames = read_video(path, **frame_choice(options))
        return medium, None, frames
    try:
        image = read_image(path)
        return image.medium, image.pixels, None
    except MediaError:
        if kind == "image":
            raise
    medium = probe(path)  # the image error again, or a video in a container without a magic number
    frames = read_frames(path, **frame_choice(options)) if options is not None else None
    return medium, None, frames


def one_line(error: BaseException, path: str | None = None) -> str:
    """A user-facing one-line message; unexpected errors say they are internal.

    `path`, a file name the message may hold, is written there with `names.printable`: a
    newline in a name is shown as ``\\n`` (not split into a space) and bytes that are not
    UTF-8 as ``\\xff``, which a terminal can print and the case can store.
    """
    text = str(error)
    shown = printable(path) if path else None
    if shown is not None and shown != path:
        text = text.replace(path, shown)
    text = " ".join(text.split())
    if shown is not None and shown != path:  # the readers' own one-line messages hold the name with spaces
        text = text.replace(" ".join(path.split()), shown)
    text = storable(text) or type(error).__name__
    if isinstance(error, (MediaError, MatchError)):
        return text
    return f"internal error ({type(error).__name__}): {text}"


def frame_choice(options: SignalOptions) -> dict:
    # n_frames caps every strategy ("keyframes" alone would return every keyframe); one
    # decoder thread: the scan already runs one process per core
    return {
        "strategy": options.frame_strategy,
        "n": options.n_frames,
        "seed": options.seed,
        "max_frames": options.n_frames,
        "threads": 1,
    }
