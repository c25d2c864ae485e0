"""Use case: references that are crops or edits of the sensor's frame, registered into the device's fingerprint.

A reference image of a size the device's other references do not have (a crop made in an
editor, a screenshot of a part) is not a fingerprint of its own: its residual is searched
in the fingerprint of the device's other references at native scale, every offset and
every rotation (PCE, Goljan & Fridrich, "Camera identification from cropped and scaled
images", SPIE 2008). Found with the false-alarm probability of a decision over all the
positions searched (`prnu.decision.search_threshold`), its W·I and I² are added at that
offset to the device's main sums (`FingerprintAccumulator.add_placed`: the maximum-
likelihood estimate of Chen et al. 2008 then covers it, pixels outside the crop unchanged);
not found (resized, another camera's, or the others too weak to place it), it is refused
with a one-line reason, or kept on the examiner's word (`force`) and flagged.

The device's main size is the landscape size most of its image references have (the
largest on a tie). Each reference's outcome is stored with it (`registration` in its
details) and said by the enrollment.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sensorprint.errors import MediaError
from sensorprint.media.image import probe_image
from sensorprint.media.structure import editor_name
from sensorprint.prnu import DEFAULT_PCE_THRESHOLD, FingerprintAccumulator, PreparedFingerprint, landscape, match
from sensorprint.prnu.decision import FingerprintStrength, correlation_score, search_threshold, searched_weak
from sensorprint.prnu.geometry import Transform, orient
from sensorprint.store import Case, Device
from sensorprint.workflow.modules import module_key

Shape = tuple[int, int]


@dataclass(frozen=True)
class Probed:
    """What an image's header says: its landscape size, the EXIF Software that wrote it, its camera module."""

    shape: Shape
    software: str | None
    module: str | None = None  # the EXIF lens model (`workflow.modules.module_key`)


def probe_images(paths: list[str]) -> dict[str, Probed]:
    """The header of each regular file the image reader describes (`media.image.probe_image`, nothing decoded).

    Only regular files are opened (a FIFO or device would block or never end); those and
    files that are not still images (videos, damaged files) are left to the enrollment,
    which refuses or enrolls them as before.
    """
    found = {}
    for path in paths:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                continue
            medium = probe_image(Path(path))
        except (OSError, MediaError):
            continue
        software = medium.metadata.get("software")
        shape = landscape((medium.height, medium.width))
        found[path] = Probed(shape, str(software) if software else None, module_key(medium.metadata))
    return found


def registered_shape(details: dict | None) -> Shape | None:
    """The landscape size of the fingerprint a reference was registered into, or None."""
    registration = (details or {}).get("registration") or {}
    if "rows" not in registration:
        return None
    return int(registration["rows"]), int(registration["cols"])


def registration(details: dict | None) -> tuple[Shape, dict] | None:
    """(landscape size of the fingerprint, `Transform.to_dict` of the place) a reference was registered at, or None."""
    shape = registered_shape(details)
    return None if shape is None else (shape, details["registration"]["transform"])  # type: ignore[index]


def main_shape(case: Case, device: Device, probed: dict[str, Probed]) -> Shape | None:
    """The landscape size most of the device's image references have (stored and new), the largest on a tie."""
    sizes: Counter[Shape] = Counter()
    for medium in case.list_media(role="reference", device_id=device.id, status="ok"):
        if medium.kind == "image" and medium.width and registered_shape(medium.details) is None:
            sizes[landscape((medium.height, medium.width))] += 1
    sizes.update(p.shape for p in probed.values())
    if not sizes:
        return None
    return max(sizes, key=lambda s: (sizes[s], s[0] * s[1]))


def off_size(case: Case, device: Device, probed: dict[str, Probed], main: Shape | None) -> list[str]:
    """The new images smaller than the main size while fitting inside it, or written by an editor: crops to place.

    An editor's copy of the main size may still be turned or shifted: it is placed by the
    same search (at one position per rotation), not trusted to lie as the sensor reads out.

    An image whose EXIF names another camera module (lens model) than the main-size
    references is another sensor of the phone, not a crop: it is left to the enrollment as
    before (a fingerprint of its size, and the warning to enroll by module).
    """
    if main is None:
        return []
    modules = {p.module for p in probed.values() if p.shape == main}
    for medium in case.list_media(role="reference", device_id=device.id, status="ok"):
        if medium.kind == "image" and medium.width and landscape((medium.height, medium.width)) == main:
            modules.add(module_key(medium.metadata))
    return [
        path
        for path, p in probed.items()
        if (p.shape != main or editor_name(p.software))
        and p.shape[0] <= main[0]
        and p.shape[1] <= main[1]
        and (p.module is None or p.module in modules)
    ]


@dataclass(frozen=True)
class Placement:
    """Where the crop search put one reference: found (decisive) or not, with the figures and the reason."""

    found: bool
    transform: dict
    pce: float
    log10_p_fa: float
    n_positions: int
    reason: str = ""

    def details(self, main: Shape) -> dict:
        return {
            "rows": main[0],
            "cols": main[1],
            "transform": self.transform,
            "pce": round(self.pce, 1),
            "log10_p_fa": round(self.log10_p_fa, 1),
            "n_positions": self.n_positions,
        }


def locate(
    signal,
    accumulator: FingerprintAccumulator,
    name: str,
    software: str | None,
    *,
    threshold: float = DEFAULT_PCE_THRESHOLD,
) -> Placement:
    """Search a reference's residual (`Query`) in the fingerprint of the device's other references at native scale.

    Found: PCE at least the threshold of the search made (all offsets, rotations by 90°,
    180°, 270°; an edited copy of the sensor's size: the rotations at one position), from a
    fingerprint that is not weak. A weak fingerprint (one image, or too low a split-half
    reliability) cannot place a crop by a search: scene content lines up somewhere.
    """
    fingerprint = accumulator.result()
    strength = FingerprintStrength(fingerprint.n_media, fingerprint.quality)
    rows, cols = fingerprint.shape
    edited = f", written by {software!r}" if software and editor_name(software) else ""
    size = f"{signal.residual.shape[1]}x{signal.residual.shape[0]}"
    what = (
        f"{name} ({size}{edited}) is no size of the device's sensor ({cols}x{rows})"
        if landscape(signal.residual.shape) != (rows, cols)
        else f"{name} ({size}{edited}) is an edited copy"
    )
    result = match(
        signal.prepared(),
        None,
        PreparedFingerprint(fingerprint.k),
        search="aligned" if landscape(signal.residual.shape) == (rows, cols) else "crop",
        orientations="all",
        flips=False,
        threshold=threshold,
    )
    transform = _exact_offset(signal, fingerprint.k, result.transform)
    needed = search_threshold(threshold, result.n_positions)
    figures = f"{transform.describe()}, PCE {result.pce:.1f}, needed {needed:.1f} over {result.n_positions} positions"
    if searched_weak(strength.weak, result.n_positions):
        reason = (
            f"{what} and the fingerprint of the device's "
            f"other references is too weak to place it ({fingerprint.n_media} media, quality {fingerprint.quality:.3f}; "
            f"{figures})"
        )
        return Placement(False, transform.to_dict(), result.pce, result.log10_p_fa, result.n_positions, reason)
    if result.pce < needed:
        reason = (
            f"{what} and was not found as a crop "
            f"of the sensor at native scale ({figures}): resized, another camera's, or too dark or textured to show it"
        )
        return Placement(False, transform.to_dict(), result.pce, result.log10_p_fa, result.n_positions, reason)
    return Placement(True, transform.to_dict(), result.pce, result.log10_p_fa, result.n_positions)


REFINE = 2  # pixels either side of the PCE peak where the placement is checked by direct correlation


def _exact_offset(signal, k, transform: Transform) -> Transform:
    """The offset within `REFINE` pixels of the search's peak where W·I correlates best with K.

    The search's peak is that of the whitened cross-correlation (`prnu.matching`), which on
    demosaiced media can sit one pixel beside the crop's place; a placement must be exact
    (the CFA phase), so the neighbours are compared directly (N·ρ², `correlation_score`).
    """
    query = orient(signal.residual * signal.intensity, transform.rotation, transform.flip)
    h, w = query.shape
    top, left = transform.offset
    scores = {}
    for row in range(max(0, top - REFINE), min(k.shape[0] - h, top + REFINE) + 1):
        for col in range(max(0, left - REFINE), min(k.shape[1] - w, left + REFINE) + 1):
            scores[(row, col)] = correlation_score(query, k[row : row + h, col : col + w])
    best = max(scores, key=scores.__getitem__) if scores else (top, left)
    return Transform(transform.rotation, transform.flip, 1.0, best)


def outcome_line(path: str, placement: Placement, main: Shape) -> str:
    """One line for the examiner: where the reference was registered, or why it was refused."""
    if not placement.found:
        return f"refused: {placement.reason}"
    row, col = placement.transform["offset"]
    turned = f", rotated {placement.transform['rotation']}°" if placement.transform["rotation"] else ""
    return (
        f"registered {Path(path).name} at offset (x={col}, y={row}){turned} of the {main[1]}x{main[0]} fingerprint "
        f"(PCE {placement.pce:.0f}, log10 p_fa {placement.log10_p_fa:.1f})"
    )
