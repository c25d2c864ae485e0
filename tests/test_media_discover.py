"""sensorprint.media.discover: recursive, sorted, deterministic, no loops, nothing skipped (the reader says why)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sensorprint.errors import MediaError
from sensorprint.media import discover, probe
from sensorprint.media.discover import APPLEDOUBLE_MAGIC


def make_tree(root: Path) -> None:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a").mkdir()
    (root / ".Spotlight-V100").mkdir()
    (root / ".Spotlight-V100" / "index.db").write_bytes(b"x")
    for name in [
        "z.jpg",
        "b/deep/2.mov",
        "b/1.png",
        "a/c.jpg",
        "a/.hidden_photo.jpg",
        "b/Thumbs.db",
        ".DS_Store",
        "a/._notes.jpg",
        "corrupt.bin",
    ]:
        (root / name).write_bytes(b"content")
    (root / "a" / "._c.jpg").write_bytes(APPLEDOUBLE_MAGIC + b"\x00\x02\x00\x00")
    (root / "b" / "loop").symlink_to(root, target_is_directory=True)  # a symlink loop back to the top
    (root / "dangling.jpg").symlink_to(root / "nowhere.jpg")
    os.mkfifo(root / "pipe")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX fifos")
def test_discover_sorted_no_loops_nothing_silent(tmp_path):
    make_tree(tmp_path)
    skipped = []
    found = list(discover([tmp_path], skipped=lambda path, reason: skipped.append((path.name, reason))))
    relative = [str(p.relative_to(tmp_path)) for p in found]
    # every entry not entered is yielded: the reader says why it is not examined (one line each)
    assert relative == [
        ".DS_Store",
        ".Spotlight-V100",
        "a/._c.jpg",
        "a/._notes.jpg",
        "a/.hidden_photo.jpg",
        "a/c.jpg",
        "b/1.png",
        "b/Thumbs.db",
        "b/deep/2.mov",
        "b/loop",
        "corrupt.bin",
        "dangling.jpg",
        "pipe",
        "z.jpg",
    ]
    names = {name for name, _ in skipped}
    assert names == {".DS_Store", "Thumbs.db", "._c.jpg", ".Spotlight-V100", "pipe", "loop"}
    assert list(discover([tmp_path])) == found  # deterministic
    for name, words in {
        "dangling.jpg": "not found",
        "pipe": r"not a regular file \(pipe\)",
        ".DS_Store": "not examined: operating-system bookkeeping file",
        "b/Thumbs.db": "not examined: operating-system bookkeeping file",
        "a/._c.jpg": "not examined: macOS AppleDouble",
        ".Spotlight-V100": "not examined: operating-system index folder",
        "b/loop": "link to the folder .*not examined again",
        "a/._notes.jpg": "not an image",  # named like AppleDouble, but its content is not: examined
    }.items():
        with pytest.raises(MediaError, match=words):
            probe(tmp_path / name)


def test_discover_files_folders_and_missing_paths(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.jpg").write_bytes(b"1")
    (tmp_path / "y.jpg").write_bytes(b"2")
    given = [tmp_path / "y.jpg", tmp_path / "missing.jpg", tmp_path / "d", tmp_path / "y.jpg"]
    assert list(discover(given)) == [tmp_path / "d" / "x.jpg", tmp_path / "missing.jpg", tmp_path / "y.jpg"]
