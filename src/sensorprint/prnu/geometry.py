"""Geometric relations between a query and a fingerprint: rotations, flips, crops, scales.

A query (an image's residual) maps onto the sensor by: a left-right mirror
(optional), a rotation by a multiple of 90°, a scale (the camera's own resizing,
e.g. a 1080p video from a 12 MP sensor) and a crop (the offset of the query in
the scaled sensor). Goljan & Fridrich, "Camera identification from cropped and
scaled images", SPIE 2008.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Transform:
    """How a query maps onto the sensor/fingerprint.

    Applied to the query in this order: mirror left-right (``flip``), rotate
    counter-clockwise by ``rotation`` degrees (as ``np.rot90``), then it lies at
    ``offset`` (row, col of its top-left corner) in the fingerprint resized by
    ``scale`` (query pixels per fingerprint pixel; 1.0 = native resolution).
    """

    rotation: int = 0
    flip: bool = False
    scale: float = 1.0
    offset: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.rotation % 90 != 0:
            raise ValueError(f"rotation must be a multiple of 90 degrees, got {self.rotation}")
        object.__setattr__(self, "rotation", int(self.rotation) % 360)
        object.__setattr__(self, "flip", bool(self.flip))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "offset", (int(self.offset[0]), int(self.offset[1])))

    def to_dict(self) -> dict:
        return {"rotation": self.rotation, "flip": self.flip, "scale": self.scale, "offset": list(self.offset)}

    @classmethod
    def from_dict(cls, d: dict) -> Transform:
        return cls(
            rotation=int(d.get("rotation", 0)),
            flip=bool(d.get("flip", False)),
            scale=float(d.get("scale", 1.0)),
            offset=tuple(d.get("offset", (0, 0))),  # type: ignore[arg-type]
        )

    def describe(self) -> str:
        """Human-readable, e.g. "rotated 90°, scaled 0.480, cropped at (12, 40)"."""
        parts = []
        if self.flip:
            parts.append("mirrored")
        if self.rotation:
            parts.append(f"rotated {self.rotation}°")
        if abs(self.scale - 1.0) > 1e-9:
            parts.append(f"scaled {self.scale:.3f}")
        if self.offset != (0, 0):
            parts.append(f"cropped at ({self.offset[0]}, {self.offset[1]})")
        return ", ".join(parts) if parts else "aligned (no rotation, no scaling, no crop)"

    @property
    def orientation(self) -> tuple[int, bool]:
        return self.rotation, self.flip


def orient(image: np.ndarray, rotation: int = 0, flip: bool = False) -> np.ndarray:
    """Mirror (left-right) when `flip`, then rotate counter-clockwise by `rotation` degrees (a view)."""
    a = np.asarray(image)
    if flip:
        a = a[:, ::-1]
    return np.rot90(a, k=(rotation // 90) % 4)


def unorient(image: np.ndarray, rotation: int = 0, flip: bool = False) -> np.ndarray:
    """The inverse of `orient`."""
    a = np.rot90(np.asarray(image), k=-((rotation // 90) % 4))
    return a[:, ::-1] if flip else a


# In the order they are tried: the likeliest first (landscape, upside down, portrait), mirrors last.
ALL_ORIENTATIONS: tuple[tuple[int, bool], ...] = tuple((r, f) for f in (False, True) for r in (0, 180, 90, 270))


def orientations_that_fit(
    query_shape: tuple[int, int],
    target_shape: tuple[int, int],
    *,
    flips: bool = True,
    exact: bool = False,
) -> list[tuple[int, bool]]:
    """(rotation, flip) pairs under which a query of `query_shape` fits inside (or, exact, equals) `target_shape`."""
    out = []
    for rotation, flip in ALL_ORIENTATIONS:
        if flip and not flips:
            continue
        h, w = query_shape if rotation in (0, 180) else query_shape[::-1]
        if exact:
            ok = (h, w) == tuple(target_shape)
        else:
            ok = h <= target_shape[0] and w <= target_shape[1]
        if ok:
            out.append((rotation, flip))
    return out


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D float32 array to `shape` by linear interpolation (pixel areas aligned, grid_mode)."""
    a = np.asarray(image, dtype=np.float32)
    h, w = a.shape
    th, tw = int(shape[0]), int(shape[1])
    if (th, tw) == (h, w):
        return a.copy()
    zoom = (th / h, tw / w)
    return ndimage.zoom(a, zoom, order=1, mode="nearest", grid_mode=True, prefilter=False).astype(
        np.float32, copy=False
    )[:th, :tw]


def scaled_shape(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """The fingerprint's shape at `scale` (query pixels per fingerprint pixel)."""
    return int(round(shape[0] * scale)), int(round(shape[1] * scale))


def priority_scales(query_shape: tuple[int, int], fingerprint_shape: tuple[int, int]) -> list[float]:
    """Scales that make an (oriented) query exactly full-width or full-height of the fingerprint.

    Video frames are usually the whole sensor width (or height) resized, so these
    are tried first. Only scales under which the query still fits are returned.
    """
    out: list[float] = []
    H, W = fingerprint_shape
    for h, w in {tuple(query_shape), tuple(query_shape[::-1])}:
        for s in (w / W, h / H):
            sh, sw = scaled_shape((H, W), s)
            if h <= sh and w <= sw and s <= 1.0 and all(abs(s - t) > 1e-6 for t in out):
                out.append(s)
    return sorted(out, reverse=True)


def scale_grid(lowest: float = 0.3, highest: float = 1.0, step: float = 0.01) -> list[float]:
    """Coarse grid of scales from `highest` down to `lowest` in relative steps of `step` (Goljan & Fridrich 2008)."""
    out = []
    s = highest
    while s >= lowest - 1e-12:
        out.append(round(s, 6))
        s /= 1.0 + step
    return out


def fits(query_shape: Sequence[int], target_shape: Sequence[int]) -> bool:
    return query_shape[0] <= target_shape[0] and query_shape[1] <= target_shape[1]
