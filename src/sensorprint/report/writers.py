"""Writers of the case report: one self-contained HTML file, JSON, or CSV.

All three render `report_data(case, threshold=...)`; files are written to a
temporary name and renamed, so an interrupted report never leaves a half file.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
from collections.abc import Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from jinja2.loaders import DictLoader

from sensorprint.errors import CaseError
from sensorprint.prnu.stats import DEFAULT_PCE_THRESHOLD
from sensorprint.report.figures import frame_transforms_png, pce_figure_png
from sensorprint.report.numbers import count_text, pce_text, probability_text, share_text
from sensorprint.report.records import describe_frames, describe_transform, frame_indices, report_data
from sensorprint.store import Case


class ReportFormat(StrEnum):
    """The formats a report is written in."""

    HTML = "html"  # one self-contained file to keep with the case
    JSON = "json"  # for other tools (schema: docs/report.schema.json)
    CSV = "csv"  # one row per file, for spreadsheets
    PDF = "pdf"  # the HTML report printed, every section open (WeasyPrint)
    CASE_UCO = "case-uco"  # CASE/UCO JSON-LD, the exchange format of forensic tools

    @property
    def suffix(self) -> str:
        """The file name suffix of a report in this format."""
        return "jsonld" if self is ReportFormat.CASE_UCO else self.value


FORMATS = tuple(ReportFormat)

CSV_COLUMNS = (
    "path",
    "sha256",
    "kind",
    "status",
    "error",
    "device",
    "device_model",
    "pce",
    "ncc",
    "p_fa",
    "decision",
    "decision_at_scan",
    "log10_likelihood_ratio",
    "jpeg_structure",
    "transform",
    "reason",
    "best_device",
    "is_best",
    "frames",
    "cnn_device_label",
    "cnn_device_probability",
    "cnn_this_device_probability",
    "cnn_model_label",
    "cnn_model_probability",
    "verdict",
    "agreement",
)

# Spreadsheet programs run cells that start with these as formulas; evidence file names are
# attacker-controlled, so such text cells are prefixed with an apostrophe (OWASP CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _write_atomically(out: Path, data: bytes) -> None:
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render_json(data: Mapping[str, Any]) -> str:
    """Strict JSON (no NaN), UTF-8 text, stable key order."""
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _stale_text(entry: Mapping[str, Any]) -> str | None:
    """The CSV's reason for a stale result: its decision is shown but is not counted."""
    return f"STALE, not counted ({entry['stale']}); scan again" if entry.get("stale") else None


def csv_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (file, enrolled device scanned); files without device results get one row."""
    device_models = {d["name"]: d["model"] for d in data["devices"]}
    rows: list[dict[str, Any]] = []
    for record in data["records"]:
        cnn_device = record["cnn"].get("device") or {}
        cnn_model = record["cnn"].get("model") or {}
        base = {
            "path": record["path"],
            "sha256": record["sha256"],
            "kind": record["kind"],
            "status": record["status"],
            "error": record["error"],
            "best_device": record["best_device"],
            "frames": " ".join(str(i) for i in frame_indices(record["frames"])) or None,
            "cnn_device_label": cnn_device.get("label"),
            "cnn_device_probability": cnn_device.get("probability"),
            "cnn_model_label": cnn_model.get("label"),
            "cnn_model_probability": cnn_model.get("probability"),
            "verdict": record["verdict"],
            "agreement": record["agreement"],
        }
        if not record["devices"]:
            rows.append(base)
            continue
        for name, entry in record["devices"].items():
            rows.append(
                {
                    **base,
                    "device": name,
                    "device_model": device_models.get(name),
                    "pce": entry["pce"],
                    "ncc": entry["ncc"],
                    "p_fa": entry["p_fa"],
                    "decision": entry["decision"],
                    "decision_at_scan": entry.get("decision_at_scan"),
                    "log10_likelihood_ratio": (entry.get("likelihood_ratio") or {}).get("log10"),
                    "jpeg_structure": (entry.get("structure") or {}).get("state"),
                    "transform": entry["transform_text"],
                    "reason": entry.get("reason") or _stale_text(entry),
                    "is_best": name == record["best_device"],
                    "cnn_this_device_probability": (cnn_device.get("probabilities") or {}).get(name),
                }
            )
    return rows


def render_csv(data: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(data):
        writer.writerow({column: _csv_cell(row.get(column)) for column in CSV_COLUMNS})
    return buffer.getvalue()


# ---------------------------------------------------------------------- HTML


def _fmt_json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)


def _template_text(name: str) -> str:
    return resources.files("sensorprint.report").joinpath("templates", name).read_text(encoding="utf-8")


def _environment() -> Environment:
    env = Environment(
        loader=DictLoader({"report.html": _template_text("report.html")}),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        pce=pce_text,
        p=probability_text,
        prob=share_text,
        count=count_text,
        tojson_pretty=_fmt_json,
        transform=describe_transform,
        frames=describe_frames,
    )
    return env


def _cluster_figures(data: Mapping[str, Any]) -> dict:
    from sensorprint.report.clusters import score_matrix_png

    return {g["id"]: score_matrix_png(g) for g in (data.get("clusters") or {}).get("groups", [])}


def _transform_figures(records: list[Mapping[str, Any]]) -> dict:
    """{(record id, device): PNG in base64} of the per-frame transforms of each frame-by-frame match."""
    out = {}
    for record in records:
        times = {
            int(f["index"]): float(f["time_s"])
            for f in record.get("frames") or []
            if isinstance(f, Mapping) and f.get("time_s") is not None and "index" in f
        }
        for name, entry in (record.get("devices") or {}).items():
            if entry.get("decision") == "match" and entry.get("frame_transforms"):
                png = frame_transforms_png(entry["frame_transforms"], times or None)
                if png:
                    out[(record["id"], name)] = base64.b64encode(png).decode("ascii")
    return out


def render_html(data: Mapping[str, Any], *, open_all: bool = False) -> str:
    """The report as one HTML file: CSS inline, the figure an embedded PNG, every value escaped.

    open_all: every collapsible section open (for PDF; a browser opens them when printing).
    """
    device_names = [d["name"] for d in data["devices"]]
    png = pce_figure_png(data["records"], device_names, data["threshold"]["pce"])
    runs = {r["id"]: r for r in data["runs"]}
    fingerprints = {d["name"]: d["fingerprints"] for d in data["devices"]}
    evidence = [
        r
        for r in data["records"]
        if r["matches"]
        or r["agreement"] == "disagree"
        or any(e.get("label") not in (None, "unknown") for e in r["cnn"].values())
    ]
    return (
        _environment()
        .get_template("report.html")
        .render(
            data=data,
            css=_template_text("report.css"),
            figure=base64.b64encode(png).decode("ascii") if png else None,
            runs_by_id=runs,
            open_all=open_all,
            fingerprints=fingerprints,
            evidence=evidence,
            errors=[r for r in data["records"] if r["status"] == "error"],
            linked={r["id"] for r in evidence} | {r["id"] for r in data["records"] if r["status"] == "error"},
            cluster_figures=_cluster_figures(data),
            transform_figures=_transform_figures(evidence),
        )
    )


def render_pdf(data: Mapping[str, Any]) -> bytes:
    """The HTML report as PDF (WeasyPrint), every section open, the figure included."""
    from PIL import ImageFile

    tolerant = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: its system libraries (Pango) are missing
        raise CaseError(f"PDF reports need WeasyPrint and its libraries ({exc}); write --format html instead") from exc
    finally:
        # importing WeasyPrint turns on Pillow's decoding of truncated images for the whole process;
        # the evidence readers (media.image) then refuse to decode, so a scan after a PDF would fail
        ImageFile.LOAD_TRUNCATED_IMAGES = tolerant
    return HTML(string=render_html(data, open_all=True)).write_pdf()


def _render(data: Mapping[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return render_json(data).encode("utf-8")
    if fmt == "csv":
        return render_csv(data).encode("utf-8")
    if fmt == "pdf":
        return render_pdf(data)
    if fmt == "case-uco":
        from sensorprint.report.uco import render_case_uco

        return render_case_uco(data).encode("utf-8")
    return render_html(data).encode("utf-8")


def write_report(case: Case, fmt: str, out: Path | str, *, threshold: float, rehash: bool = False) -> Path:
    """Write the case report as html, json, csv, pdf or case-uco to `out` (a file, or a folder for report.<suffix>).

    rehash: read every evidence file again for its SHA-256 at report (chain of custody).
    A case opened for writing keeps the SHA-256 of the report written in its audit log.
    """
    if fmt not in FORMATS:
        raise CaseError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if not math.isfinite(threshold) or threshold <= 0:
        raise CaseError(
            f"the PCE threshold must be a positive number (the customary one is {DEFAULT_PCE_THRESHOLD:g}), not {threshold}"
        )
    out = Path(out)
    if out.is_dir():
        out = out / f"report.{ReportFormat(fmt).suffix}"
    if not out.parent.is_dir():
        raise CaseError(f"cannot write the report to {out}: folder {out.parent} does not exist; create it first")
    data = report_data(case, threshold=threshold, rehash=rehash)
    content = _render(data, fmt)
    _write_atomically(out, content)
    if not case.read_only:
        from sensorprint.hashing import sha256_bytes

        details = {"path": str(out.absolute()), "format": fmt, "sha256": sha256_bytes(content), "bytes": len(content)}
        case.audit("report written", {**details, "threshold": threshold})
    return out
