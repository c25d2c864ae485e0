"""How figures are written for people: one form for the report, the web pages and the command line.

One home, so a PCE or a false-alarm probability reads the same in every place an examiner
sees it (and in the filed report that a court reads beside the screen).
"""

from __future__ import annotations

EXACT_COUNT_LIMIT = 10**9  # counts up to this are written in full; beyond, no one reads 17 digits


def pce_text(value: float | None) -> str:
    """A PCE: whole numbers (with thousands separators) from 100, one decimal below."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def probability_text(value: float | None) -> str:
    """A false-alarm probability: scientific notation under 0.01; 0.0 means it underflowed double precision."""
    if value is None:
        return "n/a"
    if value == 0.0:
        return "< 1e-300"
    return f"{value:.1e}" if value < 0.01 else f"{value:.3f}"


def share_text(value: float | None) -> str:
    """A classifier's probability or another share in 0..1, two decimals."""
    return "n/a" if value is None else f"{value:.2f}"


def count_text(value: int | float) -> str:
    """A count such as the positions a search tried: in full up to a billion, then as 1.2e+17."""
    return f"{int(value):,}" if abs(value) < EXACT_COUNT_LIMIT else f"{float(value):.1e}"
