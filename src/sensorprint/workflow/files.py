"""One file of evidence or reference as the workflow meets it: its facts, and reading it safely.

`FileFacts` is what the case store needs about a file whether it could be read or not;
`read_medium` opens it once (content sniffed, never the extension). Every failure a file
can cause becomes one line in its facts (`fail`), so one bad file never ends a run.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorprint.errors import MatchError, MediaError
from sensorprint.media import Medium, probe, read_frames, read_image, sha256_file
from sensorprint.media.formats import sniff
from sensorprint.media.medium import evidence_head
from sensorprint.media.video import Frame, read_video
from sensorprint.workflow.options import SignalOptions


@dataclass
class FileFacts:
    """What the store needs about one file, whether it could be read or not."""

    path: str
    size_bytes: int
    mtime_ns: int
    medium: Medium | None = None
    error: str | None = None
    sha256: str | None = None  # also for files that cannot be read: the hash goes into every result
    frames: list[dict] = field(default_factory=list)
    # CPU seconds (process time) per step: "probe" (read, hash), "decode", "residual"; for benchmarks, not stored
    timings: dict[str, float] = field(default_factory=dict)

    def error_line(self) -> str:
        """The error as one line that names the file (messages from the readers often already do)."""
        return self.error if self.path in self.error else f"{self.path}: {self.error}"

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
            "details": {"frames": self.frames} if self.frames else {},
        }


def stat_file(path: Path) -> tuple[int, int]:
    """Size in bytes and modification time in ns: the cheap test that a file is unchanged."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def file_facts(path: Path) -> FileFacts:
    """The facts of a file before it is read: its size and modification time."""
    size, mtime = stat_file(path)
    return FileFacts(path=str(path), size_bytes=size, mtime_ns=mtime)


def fail(facts: FileFacts, error: BaseException) -> None:
    """Record why a file could not be used, and still hash it when its bytes can be read."""
    facts.error = one_line(error)
    if not isinstance(error, (MediaError, MatchError)):
        facts.error += " | " + traceback.format_exc(limit=3).replace("\n", " ")[-300:]
    try:
        facts.sha256 = sha256_file(Path(facts.path))
    except OSError:
        pass


def read_medium(
    path: Path, options: SignalOptions | None = None
) -> tuple[Medium, np.ndarray | None, Iterator[Frame] | None]:
    """The medium of a file, with an image's pixels or the frames `options` choose of a video.

    One open of the file for images and for videos (`read_video` gives the probe and the
    frames together); a video's frames come only when `options` are given. The kind is told
    from the content, never the extension; content no magic number identifies is tried as
    an image first, then as a video container.
    """
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


def one_line(error: BaseException) -> str:
    """A user-facing one-line message; unexpected errors say they are internal."""
    text = " ".join(str(error).split()) or type(error).__name__
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
