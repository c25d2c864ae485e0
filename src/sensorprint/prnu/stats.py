"""False-alarm probability of a PCE decision (Goljan 2009; Goljan, Fridrich & Filler, SPIE 2009).

Under the hypothesis "not this camera" the correlation at one position is
Gaussian, so sign(c)·√PCE is standard normal and one position exceeds a PCE τ
with probability p = Q(√τ). Searching N positions (shifts × rotations × scales)
gives 1 − (1 − p)^N. The customary threshold PCE 60 was set on over a million
Flickr images from 6,896 cameras (Goljan, Fridrich & Filler 2009).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

DEFAULT_PCE_THRESHOLD = 60.0


def _log_q(pce: float) -> float:
    """ln Q(sign·√|pce|), the one-position tail probability, without underflow."""
    z = math.copysign(math.sqrt(abs(pce)), pce)
    return float(special.log_ndtr(-z))


def false_alarm_probability(pce: float, n_positions: int) -> float:
    """Probability that a wrong camera reaches this PCE somewhere among `n_positions` searched.

    pce: the PCE found (negative: the peak was negative). n_positions: every shift,
    rotation, flip and scale tried (≥ 1). Returns 1 − (1 − Q(√pce))^N in 0..1,
    computed through logarithms: it is 0.0 only when the true value is below the
    smallest float (about 1e-308; use `log10_false_alarm_probability` to report it).
    """
    if not np.isfinite(pce):
        return 0.0 if pce > 0 else 1.0
    n = max(int(n_positions), 1)
    log_p = _log_q(float(pce))
    p = math.exp(log_p)
    if p >= 1.0:
        return 1.0
    # 1 − (1 − p)^N = −expm1(N·log1p(−p)); log1p(−p) ≈ −p keeps tiny p exact.
    value = -math.expm1(n * math.log1p(-p))
    return float(min(max(value, 0.0), 1.0))


def log10_false_alarm_probability(pce: float, n_positions: int) -> float:
    """log₁₀ of `false_alarm_probability`, finite even where the probability underflows."""
    n = max(int(n_positions), 1)
    if not np.isfinite(pce):
        return -math.inf if pce > 0 else 0.0
    log_p = _log_q(float(pce))
    if log_p > -30.0:
        prob = false_alarm_probability(pce, n)
        return math.log10(prob) if prob > 0 else -math.inf
    # p tiny: 1 − (1 − p)^N = N·p (1 + O(N·p))
    return (math.log(n) + log_p) / math.log(10.0)


def pce_threshold_for(false_alarm: float, n_positions: int) -> float:
    """The PCE at which the false-alarm probability over `n_positions` equals `false_alarm`."""
    n = max(int(n_positions), 1)
    p = -math.expm1(math.log1p(-false_alarm) / n)
    z = float(-special.ndtri(p))
    return math.copysign(z * z, z)
