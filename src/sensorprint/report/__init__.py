"""sensorprint.report: the case report as one self-contained HTML file, JSON or CSV.

`report_records(case)` gives one dict per scanned evidence file (PRNU per device,
CNN per network, the fused verdict); `write_report(case, fmt, out, threshold=...)`
writes a file an examiner can keep with the case.
"""

from sensorprint.report.records import (
    DEFAULT_THRESHOLD,
    describe_frames,
    describe_transform,
    false_alarm_per_position,
    report_data,
    report_records,
    threshold_meaning,
    verdict_text,
)
from sensorprint.report.writers import FORMATS, render_csv, render_html, render_json, write_report

__all__ = [
    "DEFAULT_THRESHOLD",
    "FORMATS",
    "describe_frames",
    "describe_transform",
    "false_alarm_per_position",
    "verdict_text",
    "render_csv",
    "render_html",
    "render_json",
    "report_data",
    "report_records",
    "threshold_meaning",
    "write_report",
]
