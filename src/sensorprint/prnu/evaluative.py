"""Measured error rates and score-based likelihood ratios, for evaluative reporting.

The ENFSI guideline for evaluative reporting (2015) asks for the strength of evidence as a
likelihood ratio LR = p(score | same source) / p(score | different sources), from scores of
comparisons whose truth is known. Here the two sets come from `sensorprint validate`: held-out
references of a device (same source) and media known not to come from it (different sources).

The score is s = −log10 p_fa, the false-alarm probability of the comparison over every
position searched, so that an aligned comparison and a wide crop search are on one scale
(the rule the decisions use). Scores become LRs by logistic regression on log10(1 + s), the
two sets weighted equally (Brümmer & du Preez, "Application-independent evaluation of
speaker detection", Computer Speech & Language 2006; Morrison, "Tutorial on logistic-
regression calibration and fusion", Australian Journal of Forensic Sciences 2013): the LR
then grows with the score, as it must for PCE, and extrapolates smoothly where the two sets
leave a gap, which kernel densities do not. A small ridge on the slope keeps it finite when
the sets do not overlap (the usual case for PRNU).

An LR computed where one of the two sets has no data is an extrapolation. It is bounded
by the data behind it: never above n_different + 1 nor below 1 / (n_same + 1), a
conservative version of the empirical lower and upper bounds of Vergeer, van Es, de Jongh,
Alberink & Stoel, "Numerical likelihood ratios outputted by LR systems are often based on
extrapolation: when to stop extrapolating?", Science & Justice 2016: with n comparisons
one cannot claim a rate below about 1/n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MIN_SAME = 10  # fewer same-source scores than this: the LR is said to rest on thin data
MIN_DIFFERENT = 100  # fewer different-source scores than this: likewise


def comparison_score(log10_p_fa: float) -> float:
    """The score of one comparison: −log10 p_fa (0 for p_fa = 1), the same scale whatever was searched."""
    return max(0.0, -float(log10_p_fa))


RIDGE = 1e-3  # on the slope: finite when the two sets of scores do not overlap


def logistic_fit(same: np.ndarray, different: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(a, b) of log LR = a + b·x by class-balanced logistic regression (Newton's method, ridge on b)."""
    x = np.concatenate([same, different])
    y = np.concatenate([np.ones(same.size), np.zeros(different.size)])
    w = np.concatenate([np.full(same.size, 0.5 / same.size), np.full(different.size, 0.5 / different.size)])
    a = b = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a + b * x)))
        r = w * (p - y)
        gradient = np.array([r.sum(), (r * x).sum() + RIDGE * b])
        h = w * p * (1 - p)
        hessian = np.array([[h.sum(), (h * x).sum()], [(h * x).sum(), (h * x * x).sum() + RIDGE]])
        step = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
        a, b = a - float(step[0]), b - float(step[1])
        if abs(step).max() < 1e-9:
            break
    return a, b


@dataclass(frozen=True)
class LikelihoodRatio:
    """A score-based LR with the data behind it.

    log10_lr: log10 of the LR after bounding. bounded: the unbounded estimate lay beyond the
    bounds (the score lies outside what the data can speak for). thin: why the data behind
    it is thin (too few comparisons, or a score in the gap between the two sets), or None.
    """

    log10_lr: float
    n_same: int
    n_different: int
    bounded: bool
    thin: str | None

    @property
    def value(self) -> float:
        return 10.0**self.log10_lr


def _transform(scores: Sequence[float]) -> np.ndarray:
    return np.log10(1.0 + np.maximum(np.asarray(scores, dtype=np.float64), 0.0))


@dataclass(frozen=True)
class LikelihoodRatioSystem:
    """A score-to-LR calibration fitted once on validation scores (`fit_likelihood_ratio`), then applied to each score.

    a, b: log LR = a + b·log10(1 + s) (natural log); n_same, n_different: the scores behind
    it; lowest_same, highest_different: the edges of the gap between the two sets.
    """

    a: float
    b: float
    n_same: int
    n_different: int
    lowest_same: float
    highest_different: float

    def at(self, score: float) -> LikelihoodRatio:
        """The LR of one comparison score, bounded by the data and flagged where it is thin."""
        log10_lr = (self.a + self.b * float(_transform([score])[0])) / math.log(10)
        upper, lower = math.log10(self.n_different + 1), -math.log10(self.n_same + 1)
        bounded = not lower <= log10_lr <= upper
        thin = []
        if self.n_same < MIN_SAME:
            thin.append(f"{self.n_same} same-source comparisons (< {MIN_SAME})")
        if self.n_different < MIN_DIFFERENT:
            thin.append(f"{self.n_different} different-source comparisons (< {MIN_DIFFERENT})")
        if self.highest_different < score < self.lowest_same:
            thin.append(
                f"the score lies between the highest different-source ({self.highest_different:.1f}) and the lowest "
                f"same-source ({self.lowest_same:.1f}) validation scores: the LR there is an extrapolation"
            )
        return LikelihoodRatio(
            round(min(upper, max(lower, log10_lr)), 3), self.n_same, self.n_different, bounded, "; ".join(thin) or None
        )


def fit_likelihood_ratio(same: Sequence[float], different: Sequence[float]) -> LikelihoodRatioSystem | None:
    """The LR system of same-source and different-source scores (`comparison_score`); None when either set is empty."""
    if not len(same) or not len(different):
        return None
    a, b = logistic_fit(_transform(same), _transform(different))
    return LikelihoodRatioSystem(a, b, len(same), len(different), float(min(same)), float(max(different)))


def likelihood_ratio(score: float, same: Sequence[float], different: Sequence[float]) -> LikelihoodRatio | None:
    """The LR of one comparison score from same-source and different-source scores (None: no LR can be formed)."""
    system = fit_likelihood_ratio(same, different)
    return system.at(score) if system is not None else None


@dataclass(frozen=True)
class ErrorRate:
    """k of n comparisons of known truth that were answered a given way, with a 95% Wilson interval."""

    k: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    def interval(self, z: float = 1.96) -> tuple[float, float] | None:
        """The Wilson score interval (Wilson 1927): sound at k = 0, where k/n alone says nothing of the risk."""
        if not self.n:
            return None
        p, n = self.k / self.n, self.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EmpiricalFalseAlarm:
    """A comparison's p_fa checked against the case's wrong pairs: the Gaussian model's, the empirical tail's, which rules.

    k of n wrong pairs (files of known other sources, `workflow.validate`) reached a p_fa as
    small as this comparison's; `upper` is the one-sided 95% upper bound of that tail (the
    Wilson bound of `ErrorRate`; about 1.9/n at k = 0: n wrong pairs cannot show a smaller
    rate). `log10_p_fa` is the larger of the two, `rule` which one it is.
    """

    gaussian_log10: float
    k: int
    n: int
    upper: float

    @property
    def log10_p_fa(self) -> float:
        return max(self.gaussian_log10, math.log10(self.upper)) if self.upper > 0 else self.gaussian_log10

    @property
    def rule(self) -> str:
        return "empirical" if self.upper > 0 and math.log10(self.upper) > self.gaussian_log10 else "gaussian"

    def text(self) -> str:
        return (
            f"p_fa {10**self.log10_p_fa:.2g} ({self.rule} rules: Gaussian {10**self.gaussian_log10:.2g}; "
            f"{self.k} of {self.n} wrong pairs of the validation as far, 95% bound {self.upper:.2g})"
        )


def empirical_false_alarm(log10_p_fa: float, wrong_log10_p_fa: Sequence[float]) -> EmpiricalFalseAlarm | None:
    """The empirical check of a comparison's p_fa (log₁₀) against the log₁₀ p_fa of the case's wrong pairs.

    None without wrong pairs. The tail counts the wrong pairs whose p_fa was as small or
    smaller (they counted the same positions-searched correction, so the scales agree).
    """
    if not wrong_log10_p_fa:
        return None
    k = sum(1 for v in wrong_log10_p_fa if v <= log10_p_fa)
    n = len(wrong_log10_p_fa)
    interval = ErrorRate(k, n).interval(z=1.645)  # the upper end of a two-sided 90% interval: one-sided 95%
    return EmpiricalFalseAlarm(float(log10_p_fa), k, n, interval[1] if interval else 1.0)
