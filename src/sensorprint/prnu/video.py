"""Weights for video frames in a fingerprint or an aggregated query residual.

Dark frames carry little PRNU (the signal is I·K), saturated pixels carry none,
and a frame nearly identical to the previous one adds the same scene content
again rather than new, independent noise (Chen et al. 2008 weight by I²; the
rest follows the practice for video PRNU, e.g. Mandelli et al. 2019).
"""

from __future__ import annotations

import numpy as np

from .residual import SATURATION_LEVEL

# Mean grey level under which a frame is considered dark, and over which it is fully usable.
DARK_LEVEL = 16.0
BRIGHT_ENOUGH = 64.0
# Mean absolute difference to the previous frame (grey levels) from which a frame counts as new.
NEW_FRAME_DIFFERENCE = 2.0


def frame_weight(gray: np.ndarray, previous_gray: np.ndarray | None = None) -> float:
    """Weight in 0..1 of a video frame (H×W float32 grey levels 0..255).

    Product of three factors: brightness (0 at a mean under 16 grey levels, 1 from
    64), the fraction of unsaturated pixels (under 250), and novelty (mean absolute
    difference to `previous_gray`, 1 from 2 grey levels; 1 when there is no
    previous frame or its size differs).
    """
    g = np.asarray(gray, dtype=np.float32)
    mean = float(g.mean(dtype=np.float64))
    brightness = float(np.clip((mean - DARK_LEVEL) / (BRIGHT_ENOUGH - DARK_LEVEL), 0.0, 1.0))
    unsaturated = 1.0 - float(np.count_nonzero(g >= SATURATION_LEVEL)) / max(g.size, 1)
    novelty = 1.0
    if previous_gray is not None:
        p = np.asarray(previous_gray, dtype=np.float32)
        if p.shape == g.shape:
            difference = float(np.abs(g - p).mean(dtype=np.float64))
            novelty = float(np.clip(difference / NEW_FRAME_DIFFERENCE, 0.0, 1.0))
    return float(np.clip(brightness * unsaturated * novelty, 0.0, 1.0))
