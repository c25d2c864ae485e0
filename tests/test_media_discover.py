"""sensorprint.media.discover: recursive, sorted, deterministic, no loops, nothing skipped silently."""

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
    assert relative == [
        "a/._notes.jpg",
        "a/.hidden_photo.jpg",
        "a/c.jpg",
        "b/1.png",
        "b/deep/2.mov",
        "corrupt.bin",
        "dangling.jpg",
        "z.jpg",
    ]
    names = {name for name, _ in skipped}
    assert names == {".DS_Store", "Thumbs.db", "._c.jpg", ".Spotlight-V100", "pipe", "loop"}
    assert list(discover([tmp_path])) == found  # deterministic
    # the dangling link is yielded so that the reader can say what is wrong with it
    with pytest.raises(MediaError, match="not found"):
        probe(tmp_path / "dangling.jpg")
    with pytest.raises(MediaError, match="not a regular file"):
        probe(tmp_path / "pipe")


def test_discover_files_folders_and_missing_paths(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.jpg").write_bytes(b"1")
    (tmp_path / "y.jpg").write_bytes(b"2")
    given = [tmp_path / "y.jpg", tmp_path / "missing.jpg", tmp_path / "d", tmp_path / "y.jpg"]
    assert list(discover(given)) == [tmp_path / "d" / "x.jpg", tmp_path / "missing.jpg", tmp_path / "y.jpg"]
