"""The evidence browser's rows (`workflow.listing.EvidenceIndex`) on a large synthetic case.

The case is filled by SQL as `benchmarks/web_browser.py` fills it (its 100,000-file page
times are that benchmark's figures); here 3,000 files check that the rows in memory say
what `file_rows` (the one rule) says, that a file recorded later is read alone, that any
other change reads every file again, and that filters, search and the p_fa sort are right.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from sensorprint.store import Case, browse
from sensorprint.store import identity as ident
from sensorprint.workflow.listing import EvidenceIndex, file_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from web_browser import DEVICES, build_case  # noqa: E402

N_FILES = 3000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("big") / "case"
    build_case(root, N_FILES).close()
    return root


def _same(index: EvidenceIndex, case: Case) -> None:
    expected = file_rows(case)
    got = [{k: v for k, v in row.items() if k not in ("id", "name")} for row in index.rows]
    assert got == expected


def test_rows_in_memory_say_what_file_rows_says(big):
    with Case.open(big, read_only=True) as case:
        index = EvidenceIndex(batch=700)  # several batches
        assert index.needs_full_read(case)
        index.refresh(case)
        assert len(index.rows) == N_FILES and not index.needs_full_read(case)
        _same(index, case)
    counts = index.counts()
    assert counts["files"] == N_FILES and counts["error"] == N_FILES // 100
    assert counts["match"] > N_FILES // 2 and counts["inconclusive"] > 0 and counts["disagree"] > 0
    assert all(r["answer"] == "match" for r in index.select("match"))
    assert all(r["agreement"] == "disagree" for r in index.select("disagree"))
    assert len(index.select("no match")) == counts["no match"]
    (found,) = index.select(query="dsc_001234")  # case-insensitive name search
    assert found["path"].endswith("DSC_001234.JPG")
    digest = hashlib.sha256(b"file 1234").hexdigest()
    assert [r["id"] for r in index.select(query=digest[:10].upper())] == [found["id"]]
    ranked = index.select("match", sort="p_fa")
    assert [r["p_fa"] for r in ranked] == sorted(r["p_fa"] for r in ranked)
    assert index.select(sort="p_fa")[-1]["p_fa"] is None  # files without a match last


def test_a_file_recorded_later_is_read_alone_and_other_changes_read_all(big, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "case"
    shutil.copytree(big, root)
    index = EvidenceIndex()
    with Case.open(root, read_only=True) as case:
        index.refresh(case)
    read = []
    original = browse.evidence_with_results
    monkeypatch.setattr(
        browse, "evidence_with_results", lambda case, ids: read.append(list(ids)) or original(case, ids)
    )
    with Case.open(root) as case:
        device = case.get_device(DEVICES[0])
        match = {"method": "prnu", "target": DEVICES[0], "score": 1e9, "decision": "match", "p_fa": 0.0}
        new_id = case.record_results({"path": "/evidence/late.jpg", "sha256": "f" * 64, "status": "ok"}, [match])
        first = case.list_media(role="evidence")[0]
        case.record_results({"path": first.path, "sha256": first.sha256, "status": "ok"}, [{**match, "score": 7.0,
                            "decision": "no match", "p_fa": 0.4}])  # fmt: skip
        ident.add_note(case, "a note changes no file's row")
        index.refresh(case)
        assert read == [sorted([new_id, first.id])]  # these two files alone
        _same(index, case)
        fresh = EvidenceIndex()
        fresh.read_all(case)
        assert [r["id"] for r in index.select(sort="p_fa")] == [r["id"] for r in fresh.select(sort="p_fa")]
        assert index.select(sort="p_fa")[0]["path"] == "/evidence/late.jpg"  # the strongest match
        assert index.select(query="late.jpg")[0]["answer"] == "match"
        ident.rename_device(case, device.id, "renamed <camera>")  # a correction: every file again
        assert index.needs_full_read(case)
        index.refresh(case)
        _same(index, case)
        assert "renamed <camera>" in {r["best_device"] for r in index.rows}


def test_the_server_says_how_far_it_reads_then_shows_stale_results_as_not_counted(big, tmp_path, monkeypatch):
    import shutil
    import threading

    from web_browser import Server

    root = tmp_path / "case"
    shutil.copytree(big, root)
    release = threading.Event()
    read_all = EvidenceIndex.read_all
    monkeypatch.setattr(EvidenceIndex, "read_all", lambda self, case: release.wait(20) and read_all(self, case))
    server = Server(root)
    try:
        _, body = server.get("/files")
        assert 'id="reading"' in body and 'http-equiv="refresh"' in body  # no waiting on a blank page
        release.set()
        body = _until(server, "/files", 'id="total"')
        assert f'<p id="total">{N_FILES} files' in body
        assert '<b>"3"</b>' not in body and "Phone &lt;b&gt;&#34;3&#34;&lt;/b&gt;" in body  # escaped device name
        with Case.open(root) as case, case._write() as conn:
            stale = ident.mark_results_stale(conn, DEVICES[0], "reference f0.jpg removed (wrong camera)")
            case._audit_in(conn, "reference removed", {"device": DEVICES[0], "results_marked_stale": stale}, None)
            case._audit_in(conn, "test line", {"results": ["x" * 100] * 100}, None)
        body = _until(server, "/files?answer=stale", 'id="total"')
        assert "stale, not counted: " + DEVICES[0] in body and "scan again" in body
        with Case.open(root, read_only=True) as case:
            expected = sum(r["answer"] == "stale" for r in file_rows(case))
            assert sum(r["best_device"] == DEVICES[0] for r in file_rows(case)) == 0  # a stale match decides nothing
        assert N_FILES // 3 <= expected < N_FILES and f'<p id="total">{expected} files' in body
        _, overview = server.get("/")
        assert "stale: scan them again" in overview
        _, runs = server.get("/runs")
        assert "characters in all" in runs and "x" * 2100 not in runs  # a huge audit line is cut on the page
    finally:
        release.set()
        server.close()


def _until(server, path: str, marker: str, timeout_s: float = 60.0) -> str:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _, body = server.get(path)
        if marker in body:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{path} never showed {marker!r}")
