"""The web interface over one case: server-rendered pages (Jinja2, autoescaped), actions as background jobs.

Pages read the case through the same functions as the report (`report_records`,
`report_data`, `workflow.listing`); actions call the same workflow functions as the CLI.
Nothing is read from disk but the case itself and the thumbnails of evidence files the
case recorded (by their id, never by a path the browser sends).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, StrictUndefined, select_autoescape
from jinja2.loaders import DictLoader

from sensorprint.prnu.stats import DEFAULT_PCE_THRESHOLD
from sensorprint.report.clusters import clusters_section
from sensorprint.report.filing import identity_section
from sensorprint.report.numbers import count_text, pce_text, probability_text
from sensorprint.report.records import device_entries, report_record
from sensorprint.store import Case
from sensorprint.store.browse import audit_page, overview_counts
from sensorprint.web import actions
from sensorprint.web.jobs import Busy, Jobs
from sensorprint.web.security import TokenMiddleware, csrf_ok, csrf_token
from sensorprint.workflow import listing
from sensorprint.workflow.runs import run_status

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 200
ANSWERS = (*listing.ANSWERS, "disagree")
TEMPLATES = (
    "base.html",
    "overview.html",
    "devices.html",
    "files.html",
    "file.html",
    "runs.html",
    "job.html",
    "message.html",
    "groups.html",
    "reading.html",
)


def _environment() -> Environment:
    folder = resources.files("sensorprint.web").joinpath("templates")
    env = Environment(
        loader=DictLoader({name: folder.joinpath(name).read_text(encoding="utf-8") for name in TEMPLATES}),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pce=pce_text, p=probability_text, count=count_text, log_width=_log_width)
    return env


def _log_width(pce: float | None, top: float) -> float:
    """Bar width in percent of a PCE on a log scale up to `top` (the chart of one file's devices)."""
    if pce is None or pce <= 1:
        return 0.0
    return round(100 * math.log10(pce) / max(math.log10(max(top, 10.0)), 1e-9), 1)


class State:
    """What the routes share: the case folder, the token, the jobs, the templates, the evidence files' rows.

    The rows (`workflow.listing.EvidenceIndex`) are read in a background thread when the
    server starts and whenever the case changed in a way that touches every file (an
    enrollment, a correction); pages that need them meanwhile say how far the reading is.
    Files recorded since (a scan) are read again at the next page, alone.
    """

    def __init__(self, root: Path, token: str, workers: int | None) -> None:
        self.root, self.token, self.workers = root, token, workers
        self.env = _environment()
        self.jobs = Jobs(root, lambda: actions.foreign_writer(root))
        self.index = listing.EvidenceIndex()
        self._reader: threading.Thread | None = None
        self._reader_lock = threading.Lock()
        self.reader_error: str | None = None

    def case(self) -> Case:
        return Case.open(self.root, read_only=True)

    def start_reading(self) -> None:
        """Read every file's row in a background thread (unless one already does)."""
        with self._reader_lock:
            if self._reader is not None and self._reader.is_alive():
                return
            self._reader = threading.Thread(target=self._read_all, name="evidence-index", daemon=True)
            self._reader.start()

    def _read_all(self) -> None:
        try:
            with self.case() as case:
                self.index.read_all(case)
            self.reader_error = None
        except Exception as error:  # noqa: BLE001 - shown on the page; the next page tries again
            self.reader_error = f"{type(error).__name__}: {error}"

    def rows_ready(self, case: Case) -> bool:
        """Whether the rows are current (files recorded since are read now); False: a full read is under way."""
        if self._reader is not None and self._reader.is_alive():
            return False
        if self.index.needs_full_read(case):
            self.start_reading()
            return False
        self.index.refresh(case)
        return True

    def reading(self, request: Request) -> HTMLResponse:
        """The page shown while every file's row is read: how far it is; it reloads itself."""
        done, total = self.index.progress
        return self.page("reading.html", request, done=done, total=total, error=self.reader_error)

    def page(self, name: str, request: Request, **values: Any) -> HTMLResponse:
        job = self.jobs.running()
        html = self.env.get_template(name).render(
            csrf=csrf_token(self.token), path=request.url.path, running=job, case_root=str(self.root), **values
        )
        return HTMLResponse(html)


def create_app(
    root: Path | str, token: str, *, workers: int | None = None, allowed_hosts: set[str] | None = None
) -> FastAPI:
    """The application for the case in `root`, refusing every request without `token`."""
    root = Path(root).absolute()
    with Case.open(root):  # migrates an older case once, and fails here with one line if it is none
        pass
    state = State(root, token, workers)
    state.start_reading()  # every evidence file's row, in the background from the start
    app = FastAPI(title="sensorprint", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(TokenMiddleware, token=token, allowed_hosts=allowed_hosts or set())
    app.state.sp = state
    _pages(app, state)
    _files(app, state)
    _actions(app, state)
    return app


def _pages(app: FastAPI, state: State) -> None:
    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request):
        with state.case() as case:
            counts = overview_counts(case)
            identity = identity_section(case)
            ready = state.rows_ready(case)
        summary = state.index.counts() if ready else None  # None: the files are being read
        values = dict(identity=identity, summary=summary, counts=counts, threshold=DEFAULT_PCE_THRESHOLD)
        return state.page("overview.html", request, jobs=list(state.jobs.jobs.values()), **values)

    @app.get("/devices", response_class=HTMLResponse)
    def devices(request: Request):
        with state.case() as case:
            devices = device_entries(case)
            checks = {  # each reference's own score against the device's others, and its flag (workflow.references)
                d.name: {m.path: m.details or {} for m in case.list_media(role="reference", device_id=d.id)}
                for d in case.list_devices()
            }
        return state.page("devices.html", request, devices=devices, checks=checks)

    @app.get("/groups", response_class=HTMLResponse)
    def groups(request: Request):
        with state.case() as case:
            clusters = clusters_section(case)  # None until `cluster` has run
        return state.page("groups.html", request, clusters=clusters)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request, page: int = 1):
        with state.case() as case:
            records = [(r, run_status(r)) for r in case.runs()]
            _, total = audit_page(case, offset=0, limit=0)
            pages = max(1, math.ceil(total / AUDIT_PAGE_SIZE))
            page = min(max(page, 1), pages)
            audit, _ = audit_page(case, offset=(page - 1) * AUDIT_PAGE_SIZE, limit=AUDIT_PAGE_SIZE)
        return state.page("runs.html", request, runs=records, audit=audit, page=page, pages=pages)

    @app.get("/static/{name}")
    def static(name: str):
        types = {"live.js": "text/javascript", "style.css": "text/css"}
        if name not in types:  # two named files, never a path
            raise HTTPException(404, "no such file")
        text = resources.files("sensorprint.web").joinpath("static", name).read_text(encoding="utf-8")
        return Response(text, media_type=types[name])


def _files(app: FastAPI, state: State) -> None:
    @app.get("/files", response_class=HTMLResponse)
    def files(request: Request, answer: str = "", q: str = "", sort: str = "", page: int = 1):
        answer = answer if answer in ANSWERS else ""
        with state.case() as case:
            if not state.rows_ready(case):
                return state.reading(request)
        rows = state.index.select(answer, q, sort)
        pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
        page = min(max(page, 1), pages)
        shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        values = dict(
            rows=shown, total=len(rows), page=page, pages=pages, answer=answer, q=q, sort=sort, answers=ANSWERS
        )
        return state.page("files.html", request, **values)

    @app.get("/files/{medium_id}", response_class=HTMLResponse)
    def one_file(request: Request, medium_id: int):
        with state.case() as case:
            record = report_record(case, medium_id)
        if record is None:
            raise HTTPException(404, "no such evidence file in this case")
        top = max([e["pce"] or 0 for e in record["devices"].values()] + [100.0])
        metadata = json.dumps(record["metadata"] or {}, indent=1, ensure_ascii=False, sort_keys=True, default=str)
        return state.page("file.html", request, r=record, top=top, metadata=metadata)

    @app.get("/files/{medium_id}/thumbnail")
    def thumbnail(medium_id: int):
        with state.case() as case:
            medium = case.get_medium(medium_id)  # only a file the case recorded, by its id
        if medium is None or medium.role != "evidence" or medium.kind != "image" or medium.status != "ok":
            raise HTTPException(404, "no thumbnail")
        data = actions.thumbnail_jpeg(medium.path, medium.sha256)
        if data is None:
            raise HTTPException(404, "no thumbnail: the file is gone or changed since it was scanned")
        return Response(data, media_type="image/jpeg")


def _actions(app: FastAPI, state: State) -> None:
    def start(request: Request, csrf: str, kind: str, parameters: dict[str, Any]):
        if not csrf_ok(state.token, csrf):
            raise HTTPException(403, "refused: the form's CSRF token is missing or wrong; reload the page")
        try:
            job = state.jobs.start(kind, parameters, actions.work(kind, parameters, state.workers))
        except (Busy, ValueError) as error:
            return state.page("message.html", request, title="Not started", message=str(error))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.post("/actions/{kind}")
    def action(
        request: Request,
        kind: str,
        csrf: str = Form(""),
        paths: str = Form(""),
        device: str = Form(""),
        model: str = Form(""),
        target: str = Form("device"),
        fmt: str = Form("html"),
    ):
        if kind not in actions.KINDS:
            raise HTTPException(404, "no such action")
        parameters = {"paths": paths, "device": device, "model": model, "target": target, "format": fmt}
        return start(request, csrf, kind, parameters)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: int):
        job = state.jobs.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return state.page("job.html", request, job=job.snapshot())

    @app.get("/jobs/{job_id}/events")
    async def job_events(job_id: int):
        job = state.jobs.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return StreamingResponse(_events(state, job), media_type="text/event-stream")

    @app.get("/reports/{name}")
    def report_file(name: str):
        path = actions.report_path(state.root, name)
        if path is None:
            raise HTTPException(404, "no such report")
        return Response(path.read_bytes(), media_type=actions.media_type(path))


async def _events(state: State, job):
    """Server-sent events: the job's state at once, then on every change, until it ends."""
    version = -1
    while True:
        version = await asyncio.to_thread(state.jobs.wait_change, job, version, 10.0)
        snapshot = job.snapshot()
        yield f"data: {json.dumps(snapshot, ensure_ascii=False)}\n\n"
        if snapshot["state"] != "running":
            return
