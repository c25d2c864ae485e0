"""PRNU residuals, fingerprints and frame weights on synthetic images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from sensorprint.errors import MatchError
from sensorprint.prnu import (
    Fingerprint,
    FingerprintAccumulator,
    estimate_fingerprint,
    extract_residual,
    frame_weight,
    intensity,
    match,
    to_gray,
    wiener_dft,
    zero_mean_cfa,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

SHAPE = (192, 256)


def corr(a, b):
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


def camera(seed=1):
    return (np.random.default_rng(seed).standard_normal(SHAPE) * 0.02).astype(np.float32)


def shot(k, seed, level=130.0, texture=0.0, noise_std=1.5):
    """An RGB image of a smooth scene through a sensor with PRNU k: I = I0·(1 + K) + noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    scene = level + 20 * np.sin(x / 40 + seed) * np.cos(y / 50) + texture * rng.standard_normal(SHAPE)
    rgb = np.stack([scene * 0.9, scene, scene * 1.1], axis=2) * (1 + k)[:, :, None]
    rgb += rng.standard_normal(rgb.shape) * noise_std
    return np.clip(rgb, 0, 255).astype(np.float32)


def test_to_gray_shapes_and_weights():
    rgb = np.zeros((4, 5, 3), np.float32)
    rgb[..., 1] = 100
    g = to_gray(rgb)
    assert g.shape == (4, 5) and g.dtype == np.float32
    assert g[0, 0] == pytest.approx(58.704307, rel=1e-5)
    assert to_gray(g) is g or np.array_equal(to_gray(g), g)


def test_residual_of_a_flat_image_correlates_with_the_planted_k():
    k = camera()
    w = extract_residual(shot(k, 2))
    assert w.shape == SHAPE and w.dtype == np.float32
    assert corr(w, k) > 0.5
    assert abs(corr(w, camera(7))) < 0.05


def test_residual_is_zero_mean_on_every_cfa_sub_lattice():
    z = zero_mean_cfa(np.random.default_rng(3).standard_normal((64, 96)).astype(np.float32) + 5)
    for dr in (0, 1):
        for dc in (0, 1):
            sub = z[dr::2, dc::2]
            assert np.abs(sub.mean(axis=0)).max() < 1e-5
            assert np.abs(sub.mean(axis=1)).max() < 1e-5
    odd = zero_mean_cfa(np.random.default_rng(4).standard_normal((63, 95)).astype(np.float32) + 5)
    assert np.abs(odd[1::2, 0::2].mean(axis=0)).max() < 1e-5


@pytest.mark.parametrize("shape", [(64, 96), (63, 95), (64, 95)])
def test_zero_mean_in_the_spectrum_equals_zero_mean_then_wiener(shape):
    # extract_residual folds zero_mean_cfa into the DFT of wiener_dft (exact for even sides)
    x = np.random.default_rng(13).standard_normal(shape).astype(np.float32) * 3 + 5
    x += np.linspace(0, 2, shape[1], dtype=np.float32)[None, :]  # a column pattern to remove
    x[0::2, 1::2] += 1.5  # and a CFA-phase offset
    separate = wiener_dft(zero_mean_cfa(x))
    fused = wiener_dft(x, zero_mean=True)
    assert np.allclose(fused, separate, atol=1e-5 * np.abs(separate).max())
    assert np.abs(fused[1::2, 0::2].mean(axis=0)).max() < 1e-3 * np.abs(fused).max()


def test_wiener_dft_removes_a_periodic_artefact():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((128, 128)).astype(np.float32)
    y, x = np.mgrid[0:128, 0:128]
    grid = (2.0 * np.cos(2 * np.pi * x / 8)).astype(np.float32)  # a JPEG-like 8-pixel period
    out = wiener_dft(base + grid)
    assert abs(corr(out, grid)) < 0.2 * abs(corr(base + grid, grid))
    assert corr(out, base) > 0.8


def test_fast_residual_correlates_with_the_plain_implementation():
    from prnu_plain import plain_residual

    image = shot(camera(), 6, texture=8.0)
    plain = plain_residual(image)
    assert corr(extract_residual(image), plain) >= 0.99
    assert corr(extract_residual(image, per_channel=True), plain) >= 0.99


def test_fingerprint_estimate_converges_to_k():
    k = camera()
    fp = estimate_fingerprint(shot(k, s) for s in range(10, 18))
    assert isinstance(fp, Fingerprint)
    assert fp.k.shape == SHAPE and fp.k.dtype == np.float32 and fp.n_media == 8
    assert corr(fp.k, k) > 0.8
    assert 0.3 < fp.quality <= 1.0
    weak = estimate_fingerprint(shot(k, s, level=20.0, noise_std=4.0) for s in range(20, 22))
    assert weak.quality < fp.quality


def test_saturated_pixels_are_masked():
    img = shot(camera(), 8)
    img[:50] = 255.0
    inten = intensity(img)
    assert np.all(inten[:50] == 0) and np.all(inten[60:] > 0)


def test_accumulator_turns_portrait_images_and_merges():
    k = camera()
    images = [shot(k, s) for s in range(30, 36)]
    acc = FingerprintAccumulator()
    assert acc.add(images[0]) == 0
    assert acc.add(images[1]) == 0
    # portrait shots: the camera was turned; the stored pixels are the sensor turned by 90 or 270
    assert acc.add(np.ascontiguousarray(np.rot90(images[2], 1))) == 270
    assert acc.add(np.ascontiguousarray(np.rot90(images[3], 3))) == 90
    other = FingerprintAccumulator()
    other.add(images[4])
    other.add(images[5], weight=0.5)
    acc.merge(other)
    fp = acc.result()
    assert fp.n_media == 6 and corr(fp.k, k) > 0.8
    with pytest.raises(MatchError):
        acc.add(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(MatchError):
        FingerprintAccumulator().result()


def test_parallel_enrollment_equals_serial():
    k = camera()
    images = [shot(k, s) for s in range(40, 44)]
    serial = FingerprintAccumulator()
    for im in images:
        serial.add(im)
    a, b = FingerprintAccumulator(), FingerprintAccumulator()
    a.add(images[0])
    a.add(images[1])
    b.add(images[2])
    b.add(images[3])
    merged = a.merge(b).result()
    assert np.allclose(merged.k, serial.result().k, atol=1e-6)
    assert merged.quality == pytest.approx(serial.result().quality, abs=1e-6)


def test_natural_query_matches_its_camera_only():
    k, other = camera(50), camera(51)
    fp = estimate_fingerprint(shot(k, s) for s in range(60, 66))
    query = shot(k, 70, texture=10.0)
    w = extract_residual(query)
    assert match(w, intensity(query), fp).pce > 60
    wrong = shot(other, 71, texture=10.0)
    assert match(extract_residual(wrong), intensity(wrong), fp).pce < 60


def test_frame_weight():
    rng = np.random.default_rng(9)
    frame = rng.uniform(60, 200, (90, 160)).astype(np.float32)
    assert frame_weight(frame) == pytest.approx(1.0)
    assert frame_weight(frame * 0.05) == 0.0  # dark
    saturated = frame.copy()
    saturated[:60] = 255
    assert frame_weight(saturated) < 0.4
    assert frame_weight(frame, frame + 0.1) < 0.1  # nearly identical to the previous frame
    moved = np.roll(frame, 7, axis=1)
    assert frame_weight(frame, moved) == pytest.approx(1.0)
    assert 0.0 <= frame_weight(frame * 0.3) <= 1.0
