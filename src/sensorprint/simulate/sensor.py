"""The image sensor: fixed patterns (PRNU, model pattern, DSNU) and the exposure of one frame.

Physical model (Healey & Kondepudy 1994; the PRNU form of Lukáš, Fridrich & Goljan 2006,
Chen et al. 2008): the charge collected by pixel (i, j) is

    e = Poisson(Φ·(1 + K)) + D + N_read,      then quantised by the ADC,

with Φ the photo-electrons the scene delivers (scene radiance × full-well), K the
photo-response non-uniformity (multiplicative, dimensionless), D the dark signal
(DSNU, electrons) and N_read the read noise (electrons). Shot noise is Poisson; for the
photon counts of any useful exposure (tens of electrons and up) it is drawn with its
Gaussian approximation, which is an order of magnitude faster and statistically
indistinguishable at these counts.
"""

from __future__ import annotations

import numpy as np

from .scenes import smooth_field


def unit_prnu(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    strength: float,
    lowfreq_strength: float = 0.0,
    lowfreq_cell: int = 128,
) -> np.ndarray:
    """The PRNU of one physical sensor: i.i.d. Gaussian with std ``strength`` (e.g. 0.008 = 0.8 %)
    plus an optional smooth part (std ``lowfreq_strength``, features ~``lowfreq_cell`` px) that a
    denoiser-based residual does not see. float32 H×W, zero mean.
    """
    k = rng.standard_normal((height, width), dtype=np.float32) * np.float32(strength)
    if lowfreq_strength > 0:
        k += np.float32(lowfreq_strength) * smooth_field(height, width, rng, lowfreq_cell)
    return k


def model_pattern(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    row_column_strength: float,
    periodic_strength: float,
    period: int = 8,
    shared_random_strength: float = 0.0,
) -> np.ndarray:
    """A multiplicative pattern that every unit of one camera model shares (float32 H×W).

    It reproduces the artefacts that make units of one model hard to tell apart
    (Chen et al. 2008, section on non-unique artefacts; Goljan 2009):

    - a linear row/column pattern (per-row and per-column gain from the readout
      circuitry), std ``row_column_strength`` in total — removed by zero-meaning rows
      and columns;
    - a periodic pattern with period ``period`` px in both directions (on-chip layout,
      the same period as JPEG blocks), std ``periodic_strength`` — removed by Wiener
      filtering in the DFT domain, since it is a few isolated spectral peaks;
    - optionally an i.i.d. pattern shared by the model, std ``shared_random_strength``,
      which no filter can remove (default 0: real units of a model have independent PRNU).
    """
    rows = rng.standard_normal(height).astype(np.float32)
    cols = rng.standard_normal(width).astype(np.float32)
    pattern = (rows[:, None] + cols[None, :]) * np.float32(row_column_strength / np.sqrt(2.0))
    if periodic_strength > 0:
        tile = rng.standard_normal((period, period)).astype(np.float32) * np.float32(periodic_strength)
        reps = (-(-height // period), -(-width // period))
        pattern += np.tile(tile, reps)[:height, :width]
    if shared_random_strength > 0:
        pattern += rng.standard_normal((height, width), dtype=np.float32) * np.float32(shared_random_strength)
    return pattern


def dark_signal(height: int, width: int, rng: np.random.Generator, *, mean_e: float, std_e: float) -> np.ndarray:
    """Dark-signal non-uniformity D in electrons per exposure (float32 H×W, ≥ 0).

    Log-normal so a few hot pixels stand out, as in real sensors.
    """
    if std_e <= 0:
        return np.full((height, width), mean_e, np.float32)
    sigma2 = np.log1p((std_e / max(mean_e, 1e-6)) ** 2)
    mu = np.log(max(mean_e, 1e-6)) - sigma2 / 2
    return np.exp(mu + np.sqrt(sigma2) * rng.standard_normal((height, width), dtype=np.float32)).astype(np.float32)


def expose(
    photo_electrons: np.ndarray,
    gain_pattern: np.ndarray,
    dark_e: np.ndarray,
    rng: np.random.Generator,
    *,
    read_noise_e: float,
    full_well_e: float,
    adc_bits: int,
) -> np.ndarray:
    """One exposure: the raw sensor values, float32 H×W in 0..1 of the ADC range (quantised).

    ``photo_electrons`` is Φ (expected electrons without PRNU), ``gain_pattern`` is 1 + K,
    ``dark_e`` the dark signal in electrons. Shot noise is Poisson in electrons
    (Gaussian approximation), read noise Gaussian, the well saturates at ``full_well_e``
    and the ADC has ``adc_bits`` bits.
    """
    signal = photo_electrons * gain_pattern
    signal += dark_e
    np.maximum(signal, 0.0, out=signal)
    noise_std = np.sqrt(signal + np.float32(read_noise_e**2))
    signal += noise_std * rng.standard_normal(signal.shape, dtype=np.float32)
    levels = np.float32(2**adc_bits - 1)
    raw = np.clip(signal * (levels / np.float32(full_well_e)), 0.0, levels)
    np.rint(raw, out=raw)
    raw *= np.float32(1.0) / levels
    return raw
