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


def frame_transforms_png(
    transforms: Sequence[Mapping[str, Any]], times: Mapping[int, float] | None = None, *, dpi: int = 110
) -> bytes | None:
    """Scale, rotation and translation of each frame of a video matched frame by frame, over time.

    transforms: `PrnuEvidence.frame_transforms` (frame, keyframe, pce, scale, rotation in
    degrees, shift in frame pixels). times: seconds of each frame index (from the frames
    used), else the frame index is the axis. Keyframes are drawn filled. A transform that
    changes from frame to frame is what electronic stabilisation does. None when empty.
    """
    rows = sorted((t for t in transforms if "scale" in t), key=lambda t: int(t.get("frame", 0)))
    if not rows:
        return None
    x = np.asarray([times.get(int(t["frame"]), np.nan) if times else float(t["frame"]) for t in rows], dtype=float)
    if times and np.isnan(x).any():
        x = np.asarray([float(t["frame"]) for t in rows])
        times = None
    key = np.asarray([bool(t.get("keyframe")) for t in rows])
    series = [
        ("scale (frame px per fingerprint px)", [float(t["scale"]) for t in rows]),
        ("rotation (°)", [float(t.get("rotation", 0.0)) for t in rows]),
    ]
    shifts = np.asarray([t.get("shift", (0.0, 0.0)) for t in rows], dtype=float)
    figure = Figure(figsize=(7.0, 4.8), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.subplots(3, 1, sharex=True)
    for ax, (label, values) in zip(axes[:2], series):
        y = np.asarray(values)
        ax.plot(x, y, color="0.6", linewidth=0.8)
        ax.scatter(x[key], y[key], s=18, color="#2c3e50", label="keyframe")
        ax.scatter(x[~key], y[~key], s=18, facecolors="none", edgecolors="#2c3e50", label="other frame")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[2].plot(x, shifts[:, 0], marker="o", markersize=3, linewidth=0.8, label="rows")
    axes[2].plot(x, shifts[:, 1], marker="s", markersize=3, linewidth=0.8, label="columns")
    axes[2].set_ylabel("translation (px)", fontsize=8)
    axes[2].grid(True, alpha=0.3)
    axes[2].legend(fontsize=7, loc="best")
    axes[0].legend(fontsize=7, loc="best")
    axes[2].set_xlabel("time in the video (s)" if times else "frame index")
    axes[0].set_title("Transform of each frame onto the fingerprint (per-frame search)", fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
