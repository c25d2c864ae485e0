"""sensorprint.prnu — PRNU signal processing: residuals, fingerprints, PCE matching, geometric search.

Pure functions on float32 numpy arrays (no files, no global state). FFTs run on
``scipy.fft``'s worker count; use ``with scipy.fft.set_workers(n):`` to change it.
"""

from .correlation import cross_correlation, ncc, pce
from .decision import FingerprintStrength, Query, compare, decide, landscape, search_threshold
from .denoise import wavelet_noise
from .fingerprint import Fingerprint, FingerprintAccumulator, clean_fingerprint, estimate_fingerprint
from .geometry import Transform, orient, resize, unorient
from .matching import MatchResult, PreparedFingerprint, PreparedQuery, match
from .residual import extract_residual, intensity, saturation_mask, to_gray, wiener_dft, zero_mean_cfa
from .stats import DEFAULT_PCE_THRESHOLD, false_alarm_probability, log10_false_alarm_probability, pce_threshold_for
from .video import VIDEO_DENOISERS, frame_noise, frame_weight

__all__ = [
    "DEFAULT_PCE_THRESHOLD",
    "FingerprintStrength",
    "Query",
    "VIDEO_DENOISERS",
    "compare",
    "decide",
    "frame_noise",
    "landscape",
    "Fingerprint",
    "FingerprintAccumulator",
    "MatchResult",
    "PreparedFingerprint",
    "PreparedQuery",
    "Transform",
    "clean_fingerprint",
    "cross_correlation",
    "estimate_fingerprint",
    "extract_residual",
    "false_alarm_probability",
    "frame_weight",
    "intensity",
    "log10_false_alarm_probability",
    "match",
    "ncc",
    "orient",
    "pce",
    "pce_threshold_for",
    "resize",
    "saturation_mask",
    "search_threshold",
    "to_gray",
    "unorient",
    "wavelet_noise",
    "wiener_dft",
    "zero_mean_cfa",
]
