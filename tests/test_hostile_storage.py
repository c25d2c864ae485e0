"""Seized storage is hostile: every entry a scan or an enrollment meets is examined or reported
with a one-line error, and nothing ends the run (broken and looping links, pipes, sockets,
unreadable files and folders, files deleted or rewritten while the run goes on, names that
are not UTF-8 or hold HTML or newlines, OS bookkeeping files)."""

from __future__ import annotations

import builtins
import csv
import errno
import importlib
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from markupsafe import escape

from sensorprint.errors import MediaError
from sensorprint.media import discover, probe
from sensorprint.media.video import read_video
from sensorprint.report import write_report
from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.workflow import enroll, scan

# the modules themselves (sensorprint.workflow exports functions of the same names)
video_module = importlib.import_module("sensorprint.media.video")
enroll_module = importlib.import_module("sensorprint.workflow.enroll")
scan_module = importlib.import_module("sensorprint.workflow.scan")
SIZE = dict(width=384, height=384)  # small: the whole file runs in seconds, PCE still far above 60
ODD_BYTES = b"\xff\xfe.jpg"  # not UTF-8: Python gives it with lone surrogates
ODD_STORED = "\\xff\\xfe.jpg"  # how the case stores (and the report shows) it
HTML_FOLDER, HTML_FILE = "<script>alert(1)<", "script>.jpg"  # the path holds <script>alert(1)</script>.jpg
QUOTED = 'it\'s "quoted" & <b>.jpg'
LONG = "L" * 251 + ".jpg"  # 255 bytes, the longest name most file systems allow
NEWLINE = "line\nbreak.jpg"
NOT_AN_IMAGE = b"this is not a picture\n"


@dataclass(frozen=True)
class Entry:
    """One entry planted in a folder: the path the case must record it under, and what it must say."""

    stored: str  # the path as the case stores it (absolute, names that are not UTF-8 escaped)
    status: str  # "ok" or "error"
    words: tuple[str, ...] = ()  # lower-case words the one-line error must hold


def plant(folder: Path, shoot) -> dict[str, Entry]:
    """Good files and every kind of hostile entry in `folder`; `shoot(path)` writes a good image."""
    folder.mkdir(parents=True)
    root = str(folder.resolve())
    entries: dict[str, Entry] = {}

    def add(key: str, name: str, status: str = "error", *words: str) -> None:
        entries[key] = Entry(f"{root}/{name}", status, tuple(words))

    shoot(folder / "good.jpg")
    add("good", "good.jpg", "ok")
    shoot(Path(os.fsdecode(os.fsencode(folder) + b"/" + ODD_BYTES)))
    add("odd bytes", ODD_STORED, "ok")
    shoot(folder / NEWLINE)
    add("newline", NEWLINE, "ok")
    (folder / HTML_FOLDER).mkdir()
    (folder / HTML_FOLDER / HTML_FILE).write_bytes(NOT_AN_IMAGE)
    add("html", f"{HTML_FOLDER}/{HTML_FILE}", "error", "not an image")
    (folder / QUOTED).write_bytes(NOT_AN_IMAGE)
    add("quoted", QUOTED, "error", "not an image")
    (folder / LONG).write_bytes(NOT_AN_IMAGE)
    add("long", LONG, "error", "not an image")
    (folder / "dangling.jpg").symlink_to("/nowhere/x.jpg")
    add("dangling", "dangling.jpg", "error", "broken link", "/nowhere/x.jpg")
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    add("loop a", "loop_a.jpg", "error", "link loop")
    add("loop b", "loop_b.jpg", "error", "link loop")
    os.mkfifo(folder / "pipe.jpg")
    add("fifo", "pipe.jpg", "error", "not a regular file", "pipe")
    _make_socket(folder, "socket.jpg")
    add("socket", "socket.jpg", "error", "not a regular file", "socket")
    shoot(folder / "denied.jpg")
    add("denied", "denied.jpg", "error", "permission denied")
    (folder / "locked").mkdir()
    shoot(folder / "locked" / "inside.jpg")
    add("locked folder", "locked", "error", "cannot be listed", "permission denied")
    shoot(folder / "deleted.jpg")
    add("deleted", "deleted.jpg", "error", "not found")
    make_cameras(1, 1, seed=5, **SIZE)[0].record_video(folder / "clip.mp4", seconds=0.5, fps=10, size=(384, 384))
    add("rewritten video", "clip.mp4", "error", "changed while it was being read", "examine it again")
    (folder / "empty.jpg").write_bytes(b"")
    add("empty", "empty.jpg", "error", "empty file")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    add("ds_store", ".DS_Store", "error", "not examined", "bookkeeping")
    (folder / ".Spotlight-V100").mkdir()
    (folder / ".Spotlight-V100" / "store.db").write_bytes(b"index")
    add("index folder", ".Spotlight-V100", "error", "not examined", "index folder")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    add("folder link loop", "sub/up", "error", "link to the folder", "not examined again")
    return entries


def _make_socket(folder: Path, name: str) -> None:
    """A UNIX socket file (bound from inside the folder: socket paths are limited to ~107 bytes)."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(name)
    finally:
        os.chdir(here)


class Hostility:
    """What the operating system does to some entries during a run, through monkeypatching.

    Tests run as root, for whom chmod 000 denies nothing: opening `denied.jpg` and listing
    `locked/` raise EACCES here (and `test_permission_denied_as_nobody` checks the real
    thing). `deleted.jpg` is deleted once discovery is over, `clip.mp4` rewritten right
    after the reader hashed it (once).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path, workflow_module) -> None:
        self.denied = os.fspath(folder / "denied.jpg")
        self.locked = os.fspath(folder / "locked")
        self.deleted = folder / "deleted.jpg"
        self.rewritten = os.fspath(folder / "clip.mp4")
        self.rewrites = 0
        real_open, real_os_open, real_scandir = builtins.open, os.open, os.scandir
        real_discover, real_hash = workflow_module.discover, video_module.sha256_file

        def denied(path) -> bool:
            return isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) == self.denied

        def guarded_open(file, *args, **kwargs):
            if denied(file):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        def guarded_os_open(path, *args, **kwargs):
            if denied(path):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_os_open(path, *args, **kwargs)

        def guarded_scandir(path="."):
            if isinstance(path, (str, os.PathLike)) and os.path.abspath(os.fspath(path)) == self.locked:
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return real_scandir(path)

        def discover_then_delete(paths, **kwargs):
            yield from real_discover(paths, **kwargs)
            self.deleted.unlink(missing_ok=True)  # found, listed, then gone before any worker reads it

        def hash_then_rewrite(path):
            digest = real_hash(path)
            if os.fspath(path) == self.rewritten and self.rewrites == 0:
                self.rewrites += 1
                with real_open(path, "ab") as handle:  # appended: another size, another time
                    handle.write(b"\x00" * 4096)
            return digest

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)
        monkeypatch.setattr(os, "scandir", guarded_scandir)
        monkeypatch.setattr(workflow_module, "discover", discover_then_delete)
        monkeypatch.setattr(video_module, "sha256_file", hash_then_rewrite)


@pytest.fixture(scope="module")
def camera():
    return make_cameras(1, 1, seed=3, **SIZE)[0]


@pytest.fixture(scope="module")
def flats(camera, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("flats")
    for i in range(8):
        camera.save_jpeg(folder / f"flat{i}.jpg", flat=True, seed=i)
    return folder


def _shooter(camera, *, flat: bool, first_seed: int):
    seeds = iter(range(first_seed, first_seed + 100))
    return lambda path: camera.save_jpeg(path, flat=flat, seed=next(seeds))


def _rows_by_path(records) -> dict[str, list]:
    rows: dict[str, list] = {}
    for record in records:
        rows.setdefault(record.path, []).append(record)
    return rows


def _check_rows(records, entries: dict[str, Entry]) -> None:
    """Exactly one row per planted entry, nothing else, each with the status and the one-line error it must have."""
    rows = _rows_by_path(records)
    assert set(rows) == {e.stored for e in entries.values()}, set(rows) ^ {e.stored for e in entries.values()}
    for key, entry in entries.items():
        (row,) = rows[entry.stored]
        assert row.status == entry.status, (key, row.status, row.error)
        if entry.status == "ok":
            assert row.error is None and len(row.sha256) == 64, key
            continue
        message = row.error
        assert message and "\n" not in message and "\r" not in message, (key, message)
        assert "traceback" not in message.lower() and "internal error" not in message, (key, message)
        assert message.startswith(entry.stored + ": "), (key, message)  # names the file, as it is stored
        for word in entry.words:
            assert word in message.lower(), (key, word, message)


@pytest.fixture(scope="module")
def scanned(camera, flats, tmp_path_factory) -> dict:
    """A case with the camera enrolled from clean flats, and a hostile folder scanned twice, then a third time."""
    root = tmp_path_factory.mktemp("hostile")
    case = Case.create(root / "case")
    enroll(case, camera.name, [flats], workers=1)
    seized = root / "seized"
    entries = plant(seized, _shooter(camera, flat=False, first_seed=100))
    with pytest.MonkeyPatch.context() as monkeypatch:
        hostility = Hostility(monkeypatch, seized, scan_module)
        first = scan(case, [seized], workers=1)
        first_rows = {r.path: (r.status, r.sha256, r.size_bytes, r.mtime_ns) for r in case.list_media("evidence")}
        counts = [case.counts()]
        second = scan(case, [seized], workers=1)
        counts.append(case.counts())
        third = scan(case, [seized], workers=1)
        counts.append(case.counts())
    reports = {}
    for fmt in ("json", "csv", "html"):
        reports[fmt] = write_report(case, fmt, root / f"report.{fmt}", threshold=60.0).read_text(encoding="utf-8")
    return {
        "case": case,
        "entries": entries,
        "first": first,
        "second": second,
        "third": third,
        "first_rows": first_rows,
        "counts": counts,
        "rewrites": hostility.rewrites,
        "reports": reports,
        "camera": camera,
    }


def test_the_scan_completes_and_every_entry_has_one_row(scanned):
    entries, first = scanned["entries"], scanned["first"]
    assert scanned["rewrites"] == 1
    assert first.files == len(entries)
    assert first.scanned == len(entries) and first.skipped == 0
    errors = [e for e in entries.values() if e.status == "error"]
    assert first.errors == len(errors) and len(first.error_lines) == len(errors)
    for line in first.error_lines:
        assert "\n" not in line and "\udcff" not in line and "Traceback" not in line, line
    rows = scanned["first_rows"]
    assert set(rows) == {e.stored for e in entries.values()}
    for entry in entries.values():
        assert rows[entry.stored][0] == entry.status, entry


def test_after_the_rescan_every_row_is_as_expected(scanned):
    """The second scan examined the rewritten video again (it said so); it is readable now."""
    entries = dict(scanned["entries"])
    clip = entries.pop("rewritten video")
    records = scanned["case"].list_media("evidence")
    _check_rows([r for r in records if r.path != clip.stored], entries)
    (clip_row,) = [r for r in records if r.path == clip.stored]
    assert clip_row.status == "ok" and len(clip_row.sha256) == 64
    assert clip_row.size_bytes == os.stat(clip.stored).st_size  # the state that was hashed


def test_an_error_row_keeps_the_state_before_reading_and_no_hash_of_other_bytes(scanned):
    clip = scanned["entries"]["rewritten video"]
    status, sha256, size, _ = scanned["first_rows"][clip.stored]
    assert status == "error" and sha256 is None  # the bytes changed: no hash of bytes never examined
    assert size == os.stat(clip.stored).st_size - 4096  # the size before the rewrite: a rescan examines it


def test_the_good_files_are_matched(scanned):
    records = json.loads(scanned["reports"]["json"])["records"]
    by_path = {r["path"]: r for r in records}
    for key in ("good", "odd bytes", "newline"):
        record = by_path[scanned["entries"][key].stored]
        assert record["status"] == "ok" and record["best_device"] == scanned["camera"].name, (key, record)


def test_rescans_examine_nothing_twice_and_double_nothing(scanned):
    entries, second, third = scanned["entries"], scanned["second"], scanned["third"]
    present = len(entries) - 1  # deleted.jpg is gone: it keeps its row, it is not found again
    # only the video that changed while it was read is examined again, as its error line asked
    assert second.files == present and second.scanned == 1 and second.skipped == present - 1
    assert third.files == present and third.scanned == 0 and third.skipped == present
    first, after_second, after_third = scanned["counts"]
    assert first["evidence_media"] == after_second["evidence_media"] == after_third["evidence_media"] == len(entries)
    assert after_second["results"] == first["results"] + 1  # the video's result, now that it could be read
    assert {**after_third, "runs": 0} == {**after_second, "runs": 0}  # one more run, nothing else


def test_the_reports_list_every_entry(scanned):
    stored = {e.stored for e in scanned["entries"].values()}
    records = json.loads(scanned["reports"]["json"])["records"]
    assert sorted(r["path"] for r in records) == sorted(stored)
    rows = list(csv.DictReader(io.StringIO(scanned["reports"]["csv"], newline="")))
    assert {r["path"] for r in rows} == stored
    for key, entry in scanned["entries"].items():
        (row,) = [r for r in rows if r["path"] == entry.stored]  # one device enrolled: one row per file
        assert row["status"] == ("ok" if key == "rewritten video" else entry.status), key  # read on the rescan
        if entry.status == "error" and key != "rewritten video":
            assert all(word in row["error"].lower() for word in entry.words), (key, row["error"])
    html = scanned["reports"]["html"]
    for path in stored:
        assert str(escape(path)) in html, path
    assert "<script>alert(1)</script>" not in html and QUOTED not in html


def test_enroll_over_hostile_entries(camera, flats, tmp_path):
    refs = tmp_path / "refs"
    entries = plant(refs, _shooter(camera, flat=True, first_seed=50))
    for flat in sorted(flats.iterdir()):
        shutil.copy(flat, refs / flat.name)
        entries[flat.name] = Entry(f"{refs.resolve()}/{flat.name}", "ok")
    case = Case.create(tmp_path / "case")
    with pytest.MonkeyPatch.context() as monkeypatch:
        Hostility(monkeypatch, refs, enroll_module)
        summary = enroll(case, camera.name, [refs], workers=1)
        again = enroll(case, camera.name, [refs], workers=1)  # the names that are not UTF-8 are found again
    good = [e for e in entries.values() if e.status == "ok"]
    bad = [e for e in entries.values() if e.status == "error"]
    assert summary.added == len(good) == 11
    assert len(summary.errors) == len(bad)
    for line in summary.errors:
        assert "\n" not in line and "Traceback" not in line and "internal error" not in line, line
    _check_rows(case.list_media(role="reference"), entries)
    assert again.added == 0 and again.already == len(entries) - 1  # all but the deleted file
    assert again.added == 0 and len(case.list_media(role="reference")) == len(entries)


def test_the_command_line_scan_goes_on_without_a_traceback(camera, flats, tmp_path):
    """The real CLI in a subprocess: real stdout, where a name that is not UTF-8 must not stop the printing."""
    seized = tmp_path / "seized"
    seized.mkdir()
    camera.save_jpeg(seized / "good.jpg", seed=300)
    (seized / "dangling.jpg").symlink_to("/nowhere/x.jpg")
    (seized / "loop").symlink_to(seized / "loop")
    os.mkfifo(seized / "pipe")
    _make_socket(seized, "sock")
    (seized / ".DS_Store").write_bytes(b"x")
    with open(os.fsencode(seized) + b"/" + ODD_BYTES, "wb") as handle:
        handle.write(NOT_AN_IMAGE)
    (seized / NEWLINE).write_bytes(NOT_AN_IMAGE)
    case = Case.create(tmp_path / "case")
    enroll(case, camera.name, [flats], workers=1)
    case.close()
    command = [sys.executable, "-m", "sensorprint.cli", "scan", str(tmp_path / "case"), str(seized), "--workers", "1"]
    done = subprocess.run(command, capture_output=True, timeout=300, env={**os.environ, "COLUMNS": "400"})
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, output
    assert "Traceback" not in output and "internal error" not in output, output
    for words in ("broken link", "link loop", "(pipe)", "(socket)", "bookkeeping", ODD_STORED, "line\\nbreak.jpg: not"):
        assert words in output, (words, output)
    assert "line break.jpg" not in output  # the newline of the name is shown, not made a space
    with Case.open(tmp_path / "case") as reopened:
        assert len(reopened.list_media("evidence")) == 8


def test_a_video_rewritten_after_its_medium_was_read_fails_at_its_last_frame(tmp_path):
    clip = make_cameras(1, 1, seed=5, **SIZE)[0].record_video(
        tmp_path / "clip.mp4", seconds=0.5, fps=10, size=(384, 384)
    )
    medium, frames = read_video(clip, strategy="even", n=3)
    assert medium.size_bytes == clip.stat().st_size
    with open(clip, "ab") as handle:  # decoded by path after hashing: a rewrite now must not pass
        handle.write(b"\x00" * 100)
    with pytest.raises(MediaError, match="changed while it was being read"):
        list(frames)


def test_nothing_met_is_opened_when_it_must_not_be(tmp_path):
    """A pipe is never opened by discover or by the reader (opening one blocks until a writer comes)."""
    os.mkfifo(tmp_path / "pipe")
    assert list(discover([tmp_path])) == [tmp_path / "pipe"]
    with pytest.raises(MediaError, match=r"not a regular file \(pipe\)"):
        probe(tmp_path / "pipe")


def test_the_store_finds_names_that_are_not_utf8_again(tmp_path):
    case = Case.create(tmp_path / "case")
    name = os.fsdecode(b"/evidence/\xff\xfe.jpg")
    fields = dict(sha256=None, size_bytes=1, mtime_ns=2, kind=None, width=None, height=None, orientation=None)
    medium_id = case.add_medium(role="evidence", path=name, metadata={}, status="error", error=f"{name}: bad", **fields)
    found = case.find_medium("evidence", name)
    assert found is not None and found.id == medium_id
    assert found.path == "/evidence/\\xff\\xfe.jpg" and found.error == "/evidence/\\xff\\xfe.jpg: bad"
    assert case.find_medium("evidence", "/evidence/plain.jpg") is None
    plain = case.add_medium(role="evidence", path="/evidence/é.jpg", metadata={}, **fields)
    assert case.find_medium("evidence", "/evidence/é.jpg").id == plain  # valid UTF-8 is stored as it is


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs root and setpriv")
def test_permission_denied_as_nobody():
    """The real permission checks of the OS, as an unprivileged user: one line each, no traceback."""
    folder = Path(tempfile.mkdtemp(prefix="sensorprint-perm-"))
    try:
        os.chmod(folder, 0o755)
        (folder / "secret.jpg").write_bytes(b"\xff\xd8\xff\xe0 secret")
        os.chmod(folder / "secret.jpg", 0)
        (folder / "locked").mkdir()
        (folder / "locked" / "inside.jpg").write_bytes(b"x")
        os.chmod(folder / "locked", 0)
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from sensorprint.media import discover, probe\n"
            "from sensorprint.errors import MediaError\n"
            "for path in discover([Path(sys.argv[1])]):\n"
            "    try:\n"
            "        probe(path)\n"
            "    except MediaError as error:\n"
            "        print(error)\n"
        )
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", script]
        done = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == 2, done.stdout
        assert "locked: folder cannot be listed (Permission denied)" in lines[0]
        assert "secret.jpg: cannot read the file (Permission denied)" in lines[1]
    finally:
        os.chmod(folder / "locked", stat.S_IRWXU)
        shutil.rmtree(folder)
