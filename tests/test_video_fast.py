"""The cheaper video-frame residual (sensorprint.prnu.video) and the aggregation of frames (FingerprintAccumulator, one half)."""

from __future__ import annotations

import numpy as np
import pytest

from sensorprint.prnu import FingerprintAccumulator, extract_residual
from sensorprint.prnu.video import frame_noise, spatial_wiener_noise


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def _frames(k: np.ndarray, n: int, rng) -> list[np.ndarray]:
    """Smooth scenes with the multiplicative pattern K and shot-like noise: I = I0 (1 + K) + noise."""
    h, w = k.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = []
    for i in range(n):
        scene = 120 + 60 * np.sin(xx / (17 + i) + i) * np.cos(yy / (23 + 2 * i))
        frames.append((scene * (1 + k) + rng.normal(0, 2.0, k.shape)).astype(np.float32))
    return frames


@pytest.mark.parametrize("method", ["spatial", "wavelet"])
def test_aggregate_of_frames_estimates_k(method):
    rng = np.random.default_rng(1)
    k = rng.normal(0, 0.02, (256, 320)).astype(np.float32)
    accumulator = FingerprintAccumulator(k.shape, halves=1)
    for frame in _frames(k, 6, rng):
        accumulator.add(frame, residual=frame_noise(frame, method=method, levels=2), weight=1.0)
    estimate = accumulator.estimate()
    assert estimate.dtype == np.float32 and estimate.shape == k.shape
    assert _correlation(estimate, k) > 0.8
    # a pattern the frames do not carry is not found
    assert abs(_correlation(estimate, rng.normal(0, 0.02, k.shape))) < 0.02


def test_spatial_residual_is_close_to_the_wavelet_residual_on_pure_noise_pattern():
    rng = np.random.default_rng(2)
    k = rng.normal(0, 0.02, (192, 256)).astype(np.float32)
    frame = _frames(k, 1, rng)[0]
    spatial = spatial_wiener_noise(frame)
    full = extract_residual(frame)
    assert spatial.dtype == np.float32
    assert _correlation(spatial, full) > 0.85
    assert _correlation(spatial * frame, k) > 0.6


def test_weights_and_saturation():
    rng = np.random.default_rng(3)
    k = rng.normal(0, 0.02, (64, 64)).astype(np.float32)
    frame = _frames(k, 1, rng)[0]
    noise = frame_noise(frame)
    accumulator = FingerprintAccumulator(k.shape, halves=1)
    accumulator.add(frame, residual=noise, weight=0.5)
    (num,), (den,) = accumulator.state()["num"], accumulator.state()["den"]
    expected_den = 0.5 * np.where(frame < 250, frame, 0) ** 2
    np.testing.assert_allclose(den, expected_den, rtol=1e-5)
    saturated = np.full_like(frame, 255.0)
    accumulator.add(saturated, residual=noise, weight=1.0)
    np.testing.assert_array_equal(accumulator.state()["num"][0], num)  # saturated pixels add nothing


def test_one_half_estimate_equals_the_two_half_estimate():
    rng = np.random.default_rng(5)
    k = rng.normal(0, 0.02, (64, 96)).astype(np.float32)
    one, two = FingerprintAccumulator(k.shape, halves=1), FingerprintAccumulator(k.shape)
    for frame in _frames(k, 5, rng):
        noise = frame_noise(frame)
        one.add(frame, residual=noise, weight=0.7)
        two.add(frame, residual=noise, weight=0.7)
    np.testing.assert_allclose(one.estimate(clean=False), two.estimate(clean=False), rtol=1e-5, atol=1e-7)
    assert two.result().quality > 0 and one.result().quality == 0.0


def test_unknown_denoiser_is_refused():
    with pytest.raises(ValueError, match="spatial"):
        frame_noise(np.zeros((32, 32), np.float32), method="median")


def test_box_mean_equals_uniform_filter():
    from scipy import ndimage

    from sensorprint.prnu.video import box_mean

    x = np.random.default_rng(4).random((37, 53)).astype(np.float32) * 255
    np.testing.assert_allclose(box_mean(x), ndimage.uniform_filter(x, 3, mode="reflect"), atol=1e-3)
    np.testing.assert_allclose(box_mean(x, 5), ndimage.uniform_filter(x, 5, mode="reflect"), atol=1e-3)
