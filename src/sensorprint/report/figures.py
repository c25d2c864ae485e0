"""Figures for the HTML report, rendered off-screen (Agg) and returned as PNG bytes.

pyplot is not used: its global state and backend switch would leak into the
CLI or the web interface that imports the report.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

PCE_FLOOR = 1.0
"""PCE values below this (including negative peaks) are drawn at it: a log axis cannot show them."""


def pce_figure_png(
    records: Sequence[Mapping[str, Any]], device_names: Sequence[str], threshold: float, *, dpi: int = 110
) -> bytes | None:
    """PCE of every scanned file against every enrolled device, log scale, with the threshold line.

    One column per device; each dot one file (jittered sideways so they do not
    hide each other); filled red where the decision is 'match'. Returns None
    when there is no PRNU result to draw.
    """
    columns = [name for name in device_names if any(name in r.get("devices", {}) for r in records)]
    if not columns:
        return None
    rng = np.random.default_rng(0)  # fixed jitter: the same case gives the same figure
    figure = Figure(
        figsize=(min(14.0, max(5.0, 1.1 * len(columns) + 2.5)), 3.6 if len(columns) <= 12 else 4.6), dpi=dpi
    )
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    labelled: set[str] = set()

    def label_once(label: str) -> str | None:
        if label in labelled:
            return None
        labelled.add(label)
        return label

    for x, name in enumerate(columns):
        values, is_match = [], []
        for record in records:
            entry = record.get("devices", {}).get(name)
            if entry is None or entry.get("pce") is None:
                continue
            values.append(max(float(entry["pce"]), PCE_FLOOR))
            is_match.append(entry.get("decision") == "match")
        if not values:
            continue
        y = np.asarray(values)
        match = np.asarray(is_match)
        jitter = x + rng.uniform(-0.25, 0.25, size=y.size)
        if (~match).any():
            axes.scatter(
                jitter[~match], y[~match], s=14, color="0.55", alpha=0.8, linewidths=0, label=label_once("no match")
            )
        if match.any():
            axes.scatter(
                jitter[match], y[match], s=22, color="#c0392b", alpha=0.9, linewidths=0, label=label_once("match")
            )
    axes.axhline(threshold, color="#2c3e50", linestyle="--", linewidth=1.0, label=f"threshold PCE {threshold:g}")
    axes.set_yscale("log")
    axes.set_xticks(range(len(columns)))
    # A '$' in a device name would start matplotlib's mathtext: escape it so names show verbatim.
    rotation = 0 if len(columns) <= 4 else (30 if len(columns) <= 12 else 90)
    axes.set_xticklabels(
        [name.replace("$", r"\$") for name in columns],
        rotation=rotation,
        ha="right" if rotation == 30 else "center",
        fontsize=8 if len(columns) > 12 else None,
    )
    axes.set_xlim(-0.6, len(columns) - 0.4)
    axes.set_ylabel(f"PCE (values < {PCE_FLOOR:g} drawn at {PCE_FLOOR:g})")
    axes.set_title("PCE of each scanned file against each enrolled device")
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        axes.legend(fontsize=8, loc="best")
    axes.grid(True, axis="y", which="major", alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
