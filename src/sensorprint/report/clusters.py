"""The report's section on media grouped by unknown source (`sensorprint cluster`).

Data only (`clusters_section`), from the latest cluster run of the case: each group with its
members (path, SHA-256), the PCE of each scored pair of members (the score matrix; a pair
the signatures did not nominate has no score), each member's PCE against the group's
fingerprint, its thumbnail (kept by the clustering from the pixels it read), the group's link
to enrolled devices and to other groups, and the single media listed as such. `score_matrix_png` draws one group's matrix for the HTML report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sensorprint.errors import CaseError
from sensorprint.store import Case
from sensorprint.store import clusters as store


def thumbnail_jpeg(case: Case, record: store.ClusterFile) -> str | None:
    """The thumbnail the clustering kept of a file (its pixels as read, not the file now), base64 JPEG; None when none."""
    from PIL import Image

    try:
        pixels = store.load_cache(case, record, ("thumb",))["thumb"]
    except (KeyError, OSError, ValueError, CaseError):  # a cache of an earlier version, or none
        return None
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="JPEG", quality=80)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _member(case: Case, record: store.ClusterFile, score: float | None, *, thumbnail: bool) -> dict[str, Any]:
    return {
        "path": record.path,
        "sha256": record.sha256,
        "kind": record.kind,
        "width": record.width,
        "height": record.height,
        "pce_vs_group": score,
        "thumbnail": thumbnail_jpeg(case, record) if thumbnail else None,
    }


def _matrix(members: tuple[int, ...], pairs: Mapping[tuple[int, int], float]) -> list[list[float | None]]:
    """PCE of each pair of members (None where no score was computed; the diagonal is None)."""
    return [[None if a == b else pairs.get((min(a, b), max(a, b))) for b in members] for a in members]


def clusters_section(case: Case) -> dict[str, Any] | None:
    """The groups of the latest cluster run, or None when the case holds no clustering."""
    run_id = store.latest_run(case)
    if run_id is None:
        return None
    files = {r.id: r for r in store.files(case)}
    pairs = {(s.a_id, s.b_id): s.score for s in store.scores(case, "pair")}
    groups, singles = [], []
    for group in store.groups(case, run_id):
        grouped = len(group.members) > 1
        members = [_member(case, files[f], group.member_scores.get(f), thumbnail=grouped) for f in group.members]
        if not grouped:
            singles.append({"id": group.id, **members[0]})
            continue
        groups.append(
            {
                "id": group.id,
                "number": group.number,
                "members": members,
                "scores": _matrix(group.members, pairs),
                "device": group.device,
                "device_pce": group.device_score,
                "devices": group.details.get("devices", []),
                "near_groups": group.details.get("near", {}),
            }
        )
    return {"run_id": run_id, "groups": groups, "singletons": singles}


def score_matrix_png(group: Mapping[str, Any], *, dpi: int = 100) -> str | None:
    """One group's pair PCEs as a heat map (log₁₀ PCE, unscored pairs blank), base64 PNG for the HTML report."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scores = group.get("scores") or []
    if len(scores) < 2:
        return None
    values = np.array([[np.nan if v is None else np.log10(max(v, 1.0)) for v in row] for row in scores])
    figure = Figure(figsize=(4.2, 3.6), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(values, cmap="viridis", vmin=0.0, interpolation="nearest")
    names = [Path(m["path"]).name for m in group["members"]]
    if len(names) <= 24:
        axes.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        axes.set_yticks(range(len(names)), names, fontsize=6)
    figure.colorbar(image, ax=axes, label="log10 PCE")
    axes.set_title(f"group {group['id']}: PCE of member pairs", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
