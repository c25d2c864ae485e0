"""PRNU core math on synthetic arrays: correlation, PCE, statistics, geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
from scipy import ndimage

from sensorprint.errors import MatchError
from sensorprint.prnu import (
    DEFAULT_PCE_THRESHOLD,
    Transform,
    cross_correlation,
    denoise,
    false_alarm_probability,
    log10_false_alarm_probability,
    match,
    orient,
    pce,
    pce_threshold_for,
    resize,
    unorient,
)
from sensorprint.prnu.denoise import local_energy_min
from sensorprint.prnu.matching import _aligned_score, whiten_spectrum


def noise(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def test_planted_shifted_copy_gives_its_shift():
    a = noise((240, 320), 1)
    b = np.roll(a, (17, 45), axis=(0, 1)) + noise((240, 320), 2, 2.0)
    c = cross_correlation(a, b)
    assert c.dtype == np.float32
    value, peak, sign = pce(c, shift_range=(239, 319))
    assert peak == (17, 45)
    assert sign == 1
    assert value > 1000


def test_zero_shift_search_ignores_a_shifted_copy():
    a = noise((240, 320), 3)
    b = np.roll(a, (5, 9), axis=(0, 1))
    value, peak, _ = pce(cross_correlation(a, b), shift_range=(0, 0))
    assert peak == (0, 0)
    assert abs(value) < 25  # the true peak is outside the allowed range


def test_pce_sign_is_kept_for_a_negative_peak():
    a = noise((200, 200), 4)
    value, peak, sign = pce(cross_correlation(a, -a + noise((200, 200), 5)))
    assert sign == -1
    assert value < -1000
    assert peak == (0, 0)


def test_pce_leaves_out_the_neighbourhood_of_the_peak():
    c = noise((101, 101), 6)
    c[0, 0] = 50.0
    c[1, 1] = 40.0  # inside 11×11: must not count in the energy
    value, _, _ = pce(c)
    rest = c.astype(np.float64).copy()
    idx = np.r_[0:6, 96:101]
    mask = np.ones_like(rest, bool)
    mask[np.ix_(idx, idx)] = False
    assert value == pytest.approx(2500.0 / np.mean(rest[mask] ** 2), rel=1e-5)


def test_aligned_score_equals_pce_of_the_inverse_fft():
    a = noise((150, 222), 7)
    b = a + noise((150, 222), 8, 3.0)
    x = np.conjugate(scipy.fft.rfft2(a)) * scipy.fft.rfft2(b)
    fast, peak = _aligned_score(x, a.shape, 11)
    slow, _, _ = pce(scipy.fft.irfft2(x, s=a.shape))
    assert fast == pytest.approx(slow, rel=1e-4)
    assert peak == pytest.approx(float(np.sum(a.astype(np.float64) * b)), rel=1e-4)


def test_false_alarm_probability_behaves():
    values = [false_alarm_probability(p, 1000) for p in (-10, 0, 10, 30, 60, 100, 500, 5000, 1e6)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(x >= y for x, y in zip(values, values[1:]))  # monotone in PCE
    assert false_alarm_probability(0.0, 1) == pytest.approx(0.5)
    assert false_alarm_probability(60.0, 10) > false_alarm_probability(60.0, 1)  # more positions, more risk
    # small p: 1 − (1 − p)^N ≈ N·p, no cancellation to 0
    p1 = false_alarm_probability(60.0, 1)
    assert 1e-16 < p1 < 1e-14
    assert false_alarm_probability(60.0, 1_000_000) == pytest.approx(1e6 * p1, rel=1e-3)
    assert not math.isnan(false_alarm_probability(float("inf"), 5))
    # far past underflow the log stays finite and keeps falling
    assert math.isfinite(log10_false_alarm_probability(1e5, 10))
    assert log10_false_alarm_probability(1e5, 10) < log10_false_alarm_probability(1e4, 10) < -300
    assert log10_false_alarm_probability(60.0, 100) == pytest.approx(math.log10(100 * p1), abs=1e-3)
    assert pce_threshold_for(false_alarm_probability(60.0, 1000), 1000) == pytest.approx(60.0, rel=1e-6)
    assert DEFAULT_PCE_THRESHOLD == 60.0


@pytest.mark.parametrize("shape", [(97, 131), (700, 300), (5, 4), (2000, 40)])
def test_local_energy_min_equals_uniform_filters(shape, monkeypatch):
    # small blocks: the row blocks (and their borders) are exercised on small arrays too
    monkeypatch.setattr(denoise, "BLOCK_VALUES", 4096)
    e = np.square(noise(shape, 9, 10.0)) * np.exp(2 * noise(shape, 10))
    e[: shape[0] // 3] *= 1e4  # a textured region above a flat one: float32 running sums would fail here
    ref = np.min([ndimage.uniform_filter(e.astype(np.float64), s, mode="constant") for s in (3, 5, 7, 9)], axis=0)
    got = local_energy_min(e)
    assert got.dtype == np.float32
    assert np.all(np.abs(got - ref) <= 1e-5 * ref + 1e-30)


def test_wiener_noise_is_the_wiener_complement():
    x = noise((300, 200), 11, 6.0)
    local = np.min(
        [ndimage.uniform_filter(np.square(x.astype(np.float64)), s, mode="constant") for s in (3, 5, 7, 9)], axis=0
    )
    ref = x * 9.0 / (np.maximum(local - 9.0, 0.0) + 9.0)
    assert np.allclose(denoise.wiener_noise(x, 9.0), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(241, 333), (100, 37), (33, 64)])
def test_wavelet_noise_equals_the_2d_transforms_of_pywavelets(shape):
    # the denoiser runs its 2-D wavelet transform as row transforms with transposes between
    # them (for speed); the plain reading of Mihcak et al. with pywt.wavedec2/waverec2:
    import pywt

    x = 100.0 + noise(shape, 12, 6.0)
    levels = min(4, pywt.dwt_max_level(min(shape), pywt.Wavelet("db4").dec_len))
    coeffs = pywt.wavedec2(x.astype(np.float64), "db4", mode="symmetric", level=levels)
    shrunk = [np.zeros_like(coeffs[0])] + [tuple(denoise.wiener_noise(b, 9.0) for b in d) for d in coeffs[1:]]
    ref = pywt.waverec2(shrunk, "db4", mode="symmetric")[: shape[0], : shape[1]]
    got = denoise.wavelet_noise(x, sigma=3.0)
    assert got.dtype == np.float32 and got.shape == shape
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("shape", [(64, 90), (3, 7), (130, 9)])
def test_whitening_divides_by_the_wrapped_local_rms(shape):
    rng = np.random.default_rng(12)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    spectrum *= np.exp(rng.standard_normal(shape)).astype(np.float32)
    power = np.abs(spectrum.astype(np.complex128)) ** 2
    local = ndimage.uniform_filter(power, 3, mode="wrap")
    ref = spectrum / np.sqrt(np.maximum(local, power.mean() * 1e-6))
    got = whiten_spectrum(spectrum, 3)
    assert got.dtype == np.complex64
    assert np.allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def test_transform_round_trips_and_describes():
    t = Transform(rotation=90, flip=True, scale=0.48, offset=(12, 40))
    assert Transform.from_dict(t.to_dict()) == t
    assert t.describe() == "mirrored, rotated 90°, scaled 0.480, cropped at (12, 40)"
    assert Transform().describe().startswith("aligned")
    a = noise((5, 7), 11)
    for rotation in (0, 90, 180, 270):
        for flip in (False, True):
            assert np.array_equal(unorient(orient(a, rotation, flip), rotation, flip), a)
    with pytest.raises(ValueError):
        Transform(rotation=45)


# ---- geometric search ------------------------------------------------------------------------

K_SHAPE = (256, 384)


def camera_k(seed=20):
    return noise(K_SHAPE, seed, 0.03)


def query_from(k, seed, level=120.0, noise_std=1.0):
    """A 'residual' W = I·K + noise of a flat scene, and its intensity."""
    inten = np.full(k.shape, level, np.float32)
    return inten * k + noise(k.shape, seed, noise_std), inten


@pytest.mark.parametrize("rotation,flip", [(0, False), (90, False), (180, False), (270, False), (0, True), (90, True)])
def test_rotation_and_flip_are_recovered(rotation, flip):
    k = camera_k()
    w, inten = query_from(k, 21)
    # the stored query is the sensor image turned back: matching must turn it by `rotation`
    qw, qi = unorient(w, rotation, flip), unorient(inten, rotation, flip)
    r = match(np.ascontiguousarray(qw), np.ascontiguousarray(qi), k, orientations="all")
    assert (r.transform.rotation, r.transform.flip) == (rotation, flip)
    assert r.transform.offset == (0, 0) and r.transform.scale == 1.0
    assert r.pce > 1000 and r.p_fa < 1e-100 and r.peak_sign == 1
    assert r.stage == "aligned"


def test_wrong_camera_stays_below_threshold():
    k = camera_k()
    w, inten = query_from(camera_k(99), 22)
    r = match(w, inten, k, orientations="all")
    assert r.pce < DEFAULT_PCE_THRESHOLD
    assert r.p_fa > 0.01
    assert r.n_positions == 4  # same size: zero shift at 0°, 180° and their mirrors only


@pytest.mark.parametrize(
    "rotation,flip,found",
    [(0, False, True), (90, False, True), (270, False, True), (180, False, False), (0, True, False)],
)
def test_by_default_only_the_orientations_of_a_camera_are_searched(rotation, flip, found):
    # a camera stores its pixels as read out, or turned to portrait; 180° and mirrors need orientations="all"
    k = camera_k()
    w, inten = query_from(k, 24)
    qw, qi = unorient(w, rotation, flip), unorient(inten, rotation, flip)
    r = match(np.ascontiguousarray(qw), np.ascontiguousarray(qi), k)
    assert (r.pce >= DEFAULT_PCE_THRESHOLD) == found
    assert r.n_positions == (1 if rotation in (0, 180) else 2)


def test_crop_offset_is_found_exactly():
    k = camera_k()
    w, inten = query_from(k, 23)
    r = match(w[37 : 37 + 150, 101 : 101 + 200], inten[37 : 37 + 150, 101 : 101 + 200], k)
    assert r.transform.offset == (37, 101)
    assert r.transform.rotation == 0 and not r.transform.flip
    assert r.stage == "crop" and r.pce > 500
    assert r.n_positions >= (256 - 150 + 1) * (384 - 200 + 1)


def test_full_width_scale_is_tried_first_and_found():
    k = camera_k()
    w, inten = query_from(k, 24, noise_std=0.5)
    small_shape = (int(round(256 * 0.5)), int(round(384 * 0.5)))
    ws = resize(w, small_shape)[10:110, :]  # full width, cropped in height (like 16:9 from 4:3)
    r = match(ws, resize(inten, small_shape)[10:110, :], k)
    assert r.stage == "scale"
    assert r.transform.scale == pytest.approx(0.5, abs=0.003)
    assert r.transform.offset == (10, 0)
    assert r.pce > DEFAULT_PCE_THRESHOLD


def test_scale_grid_search_recovers_an_arbitrary_scale():
    k = camera_k()
    w, inten = query_from(k, 25, noise_std=0.5)
    s = 0.7
    shape = (int(round(256 * s)), int(round(384 * s)))
    ws = resize(w, shape)[20:140, 30:230]
    r = match(ws, None, k, search="scale", scales=[0.9, 0.8, 0.75, 0.7, 0.65])
    assert r.transform.scale == pytest.approx(s, abs=0.01)
    assert r.transform.offset == (20, 30)
    assert r.pce > DEFAULT_PCE_THRESHOLD


def test_hint_is_tried_first_and_progress_reported():
    k = camera_k()
    w, inten = query_from(k, 26)
    calls = []
    hint = Transform(rotation=0, flip=False, scale=1.0, offset=(37, 101))
    r = match(w[37:187, 101:301], None, k, hint=hint, progress=lambda d, t: calls.append((d, t)))
    assert r.stage == "hint" and r.transform.offset == (37, 101)
    assert calls and calls[0][0] == 1 and all(d <= t for d, t in calls)


def test_a_query_larger_than_the_fingerprint_is_no_match():
    k = camera_k()
    r = match(noise((300, 400), 27), None, k)
    assert r.pce == 0.0 and r.p_fa == 1.0 and r.n_positions == 0 and r.stage == "none"


def test_bad_search_mode_is_a_match_error():
    with pytest.raises(MatchError):
        match(noise((64, 64), 28), None, noise((64, 64), 29), search="everything")
