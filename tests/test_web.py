"""The web interface in a real browser: Playwright driving Debian's chromium by its executable path.

Each browser test saves a screenshot to test-artifacts/web/ (git-ignored). Without
chromium the browser tests skip on a developer machine and FAIL when CI is set
(`make test` installs chromium with apt-get when it is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sensorprint.simulate import make_cameras
from sensorprint.store import Case
from sensorprint.store import identity as ident
from sensorprint.web import allowed_hosts, bind, create_app
from sensorprint.web.jobs import Busy, Jobs
from sensorprint.workflow import enroll

CHROMIUM = Path(os.environ.get("SENSORPRINT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
EVIL = "<script>window.__xss=1</script>\"'&"
EVIL_FILE = '<img src=x onerror="window.__xss=2">\'"&ünï ✓' + "x" * 150 + ".jpg"
CASE_NUMBER = 'CASE-2026/<b>42</b>"'
TOKEN = "test-token-" + "a" * 20


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A case with two devices (one with a hostile name), seized files not yet scanned, and its server."""
    root = tmp_path_factory.mktemp("web")
    cameras = make_cameras(n_models=1, units_per_model=2, width=640, height=480, seed=11)
    seized = root / "seized"
    for i, camera in enumerate(cameras):
        camera.save_jpeg(seized / f"{camera.name}_{i}.jpg", seed=300 + i)
    cameras[0].save_jpeg(seized / EVIL_FILE, seed=400)
    with Case.create(root / "case") as case:
        ident.set_identity(case, {"case_number": CASE_NUMBER, "examiner": EVIL})
        ident.add_note(case, EVIL)
        for camera, name in zip(cameras, [cameras[0].name, EVIL]):
            flats = [camera.save_jpeg(root / "refs" / camera.name / f"f{i}.jpg", flat=True, seed=i) for i in range(8)]
            enroll(case, name, flats, workers=1)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(root / "case", TOKEN, workers=1, allowed_hosts=allowed_hosts("127.0.0.1", port))
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "root": root, "seized": seized, "cameras": cameras, "app": app}
    server.should_exit = True
    thread.join(10)


def _status(url: str, **headers) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_refused_without_the_token_and_with_a_wrong_one(served):
    assert _status(served["url"] + "/") == 403
    assert _status(served["url"] + "/files") == 403
    assert _status(served["url"] + "/?token=wrong") == 403
    assert _status(served["url"] + "/", Cookie="sensorprint_token=wrong") == 403
    assert _status(served["url"] + "/", Cookie=f"sensorprint_token={TOKEN}") == 200
    # DNS rebinding: another Host header is refused even with the token
    assert _status(served["url"] + "/", Cookie=f"sensorprint_token={TOKEN}", Host="evil.example:80") == 421


def test_serve_binds_localhost_prints_a_token_and_refuses_without_it(served, tmp_path):
    import re
    import sys

    command = [sys.executable, "-m", "sensorprint.cli", "serve", str(served["root"] / "case"), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
        assert found, line + process.stderr.read() if process.poll() is not None else line
        url, token = found.groups()
        assert len(token) >= 40 and token != TOKEN
        assert _status(url + "/") == 403
        assert _status(url + "/devices", Cookie=f"sensorprint_token={token}") == 200
    finally:
        process.terminate()
        process.wait(10)
    bad = subprocess.run([*command[:4], str(tmp_path / "nocase"), "--port", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a sensorprint case" in bad.stderr and "Traceback" not in bad.stderr


def test_only_recorded_files_and_named_assets_are_served(served):
    cookie = {"Cookie": f"sensorprint_token={TOKEN}"}
    assert _status(served["url"] + "/files/999999/thumbnail", **cookie) == 404
    assert _status(served["url"] + "/static/..%2Fcase.sqlite", **cookie) == 404
    assert _status(served["url"] + "/reports/..%2F..%2Fcase.sqlite", **cookie) == 404
    assert _status(served["url"] + "/reports/case.sqlite", **cookie) == 404


def test_a_second_writer_gets_a_clear_message(tmp_path):
    Case.create(tmp_path / "c").close()
    jobs = Jobs(tmp_path / "c", lambda: None)
    release = threading.Event()
    first = jobs.start("scan", {}, lambda case, progress: [release.wait(10) and "done"])
    with pytest.raises(Busy, match=f"job {first.id} \\(scan\\) is writing the case"):
        jobs.start("enroll", {}, lambda case, progress: [])
    release.set()
    deadline = time.monotonic() + 10
    while first.state == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.state == "completed"
    refused = Jobs(tmp_path / "c", lambda: "run 3 (scan, process 42 on host) is writing the case")
    with pytest.raises(Busy, match="process 42"):
        refused.start("scan", {}, lambda case, progress: [])


# ---------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def browser_page(served):
    if not CHROMIUM.exists():
        message = f"chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI is set: browser tests must not be skipped")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
        page.goto(served["url"] + f"/?token={TOKEN}")
        yield page
        browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _no_injection(page) -> None:
    assert page.evaluate("window.__xss") is None
    assert page.locator("b:text('42')").count() == 0  # the case number's <b> is text, not markup


def test_in_with_the_token_overview_escapes_names(browser_page, served):
    page = browser_page
    assert "token" not in page.url  # the cookie replaced it
    assert CASE_NUMBER in page.inner_text("h1")
    assert EVIL in page.inner_text("body")
    _no_injection(page)
    _shot(page, "overview")


def test_devices_page_lists_fingerprints_and_references(browser_page, served):
    page = browser_page
    page.click("text=Devices")
    assert page.locator("section.device").count() == 2
    assert EVIL in page.inner_text("main")
    assert page.locator("section.device >> text=f0.jpg").count() == 2
    fits = page.locator("section.device td.fit").all_inner_texts()  # each reference's own score
    assert len(fits) == 16 and all(float(f) > 60 for f in fits)
    _no_injection(page)
    _shot(page, "devices")


def test_start_a_scan_watch_it_finish_and_browse_the_files(browser_page, served):
    page = browser_page
    page.goto(served["url"] + "/")
    page.fill("#scan-form textarea", str(served["seized"]))
    page.click("#scan-form button")
    try:
        page.wait_for_url("**/jobs/*", timeout=20_000)
    finally:
        _shot(page, "scan-started")
    from playwright.sync_api import expect

    expect(page.locator("#job-state")).to_have_text("completed", timeout=120_000)
    assert "files: 3" in page.inner_text("#job-lines")
    _shot(page, "scan-job")
    page.goto(served["url"] + "/files")
    assert page.inner_text("#total").startswith("3 files")
    assert page.locator("#files tr").count() == 4
    page.select_option("select[name=answer]", "match")
    page.click(".filter button")
    assert page.locator("#files tr.match").count() >= 2
    _no_injection(page)
    _shot(page, "files")
    page.goto(served["url"] + "/files?q=" + "ünï")
    assert page.inner_text("#total").startswith("1 file")
    page.click("#files a")
    assert EVIL_FILE in page.inner_text("h1")
    assert len(page.inner_text("#sha256").strip()) == 64
    assert page.locator("#devices tr").count() == 3  # header + both devices, each with PCE and p_fa
    thumb = page.locator("img.thumb")
    thumb.wait_for()
    deadline = time.monotonic() + 20
    while not thumb.evaluate("img => img.complete && img.naturalWidth") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert thumb.evaluate("img => img.naturalWidth") > 0
    _no_injection(page)
    _shot(page, "file")


def test_groups_page_without_a_clustering(browser_page, served):
    page = browser_page
    page.click("text=Groups")
    assert "No clustering yet" in page.inner_text("main")
    _shot(page, "groups")


def test_runs_and_audit_log(browser_page, served):
    page = browser_page
    page.goto(served["url"] + "/runs")
    assert "scan" in page.inner_text("#runs") and "completed" in page.inner_text("#runs")
    assert page.locator("#audit tr").count() > 5
    _no_injection(page)
    _shot(page, "runs")


def test_actions_need_the_csrf_token(browser_page, served):
    page = browser_page
    response = page.request.post(served["url"] + "/actions/scan", form={"paths": str(served["seized"])})
    assert response.status == 403
    response = page.request.post(
        served["url"] + "/actions/scan", form={"paths": "x", "csrf": "wrong"}, headers={"Origin": "http://evil.example"}
    )
    assert response.status == 403


def test_a_pdf_report_from_the_browser_holds_the_case_number_and_a_hash(browser_page, served, tmp_path):
    page = browser_page
    page.goto(served["url"] + "/")
    page.select_option("#report-form select", "pdf")
    page.click("#report-form button")
    page.wait_for_selector("#report-link", timeout=120_000)
    _shot(page, "report-job")
    response = page.request.get(served["url"] + page.get_attribute("#report-link", "href"))
    assert response.status == 200 and response.body().startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.body())
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is missing")
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = subprocess.run([pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "CASE-2026/<b>42</b>" in text
    with Case.open(served["root"] / "case", read_only=True) as case:
        digest = case.list_media(role="evidence")[0].sha256
    assert digest in text.replace("\n", "").replace(" ", "")


def test_the_html_report_printed_keeps_every_section_open(browser_page, served, tmp_path):
    from sensorprint.report import write_report

    with Case.open(served["root"] / "case", read_only=True) as case:
        out = write_report(case, "html", tmp_path / "report.html", threshold=60.0)
    page = browser_page.context.browser.new_page()
    try:
        page.goto(out.as_uri())
        audit = page.locator("#audit ~ details table")
        assert not audit.is_visible()  # collapsed on screen
        page.emulate_media(media="print")
        assert audit.is_visible()  # open on paper
        assert page.locator("details li code").first.is_visible()  # the reference files with their hashes
        page.screenshot(path=str(ARTIFACTS / "report-print.png"), full_page=True)
        assert EVIL in page.inner_text("body") and page.evaluate("window.__xss") is None
    finally:
        page.close()
