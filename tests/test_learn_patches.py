"""Patch and frame selection of sensorprint.learn (ESWA 2022 / SN CS 2022 rules)."""

from __future__ import annotations

import numpy as np
import pytest

from sensorprint.errors import MediaError
from sensorprint.learn.patches import (
    FrameParameters,
    PatchParameters,
    choose_frame_indices,
    extract_patches,
    flat_share,
    highpass_residual,
    homogeneous_patches,
    patch_statistics,
    patches_and_flat_share,
    prepare_frame,
    select_patch_positions,
)


def _image(height=256, width=512, seed=0):
    """Left half: homogeneous (std 0.01 in [0,1] units); right half: textured (std ~0.1)."""
    rng = np.random.default_rng(seed)
    image = 120.0 + rng.normal(0, 2.55, (height, width, 3))
    image[:, width // 2 :] += rng.normal(0, 25.5, (height, width - width // 2, 3))
    return np.clip(image, 0, 255).astype(np.float32)


def test_statistics_match_brute_force():
    image = _image()
    for params in (PatchParameters(size=64, stride=32), PatchParameters(size=50, stride=30)):
        positions, std, clipped = patch_statistics(image, params)
        for k in (0, len(positions) // 2, len(positions) - 1):
            r, c = positions[k]
            patch = image[r : r + params.size, c : c + params.size] / 255.0
            np.testing.assert_allclose(std[k], patch.reshape(-1, 3).std(axis=0), rtol=1e-4, atol=1e-6)
        assert positions[:, 0].max() + params.size <= image.shape[0]
        assert positions[:, 1].max() + params.size <= image.shape[1]


def test_homogeneous_patches_are_chosen_and_textured_rejected():
    params = PatchParameters(size=64, stride=32, max_patches=1000)
    positions = select_patch_positions(_image(), params)
    # Homogeneous patches lie entirely in the left half (columns 0..255): 7 rows × 7 columns.
    # Left half (columns 0..255): 7 × 7 homogeneous grid positions; the textured ones only fill up.
    assert (positions[:, 1] + 64 <= 256).sum() == 49
    strict = select_patch_positions(_image(), PatchParameters(size=64, stride=32, max_patches=49))
    assert len(strict) == 49 and np.all(strict[:, 1] + 64 <= 256)


def test_cap_is_even_subsample_and_fill_uses_lowest_std():
    image = _image()
    capped = select_patch_positions(image, PatchParameters(size=64, stride=32, max_patches=10))
    assert len(capped) == 10
    assert np.all(capped[:, 1] + 64 <= 256)  # only homogeneous ones when enough exist
    assert capped[:, 0].max() - capped[:, 0].min() >= 128  # spread over the image, not the first rows

    textured = _image()
    textured[:, :256] = textured[:, 256:]  # no homogeneous patch at all
    textured[:64, :64] = 120.0 + np.random.default_rng(3).normal(0, 12.0, (64, 64, 3))  # the flattest one
    filled = select_patch_positions(textured, PatchParameters(size=64, stride=32, max_patches=5))
    assert len(filled) == 5
    assert [0, 0] in filled.tolist()


def test_saturated_patches_are_rejected():
    image = _image()
    # A clipped bright region with std inside the homogeneous band: must not be chosen.
    rng = np.random.default_rng(1)
    image[:128, :128] = np.clip(252.0 + rng.normal(0, 2.55, (128, 128, 3)), 0, 255)
    positions, std, clipped = patch_statistics(image, PatchParameters(size=64, stride=32))
    assert clipped[0] > 0 and np.all((std[0] > 0.005) & (std[0] < 0.02))
    # 49 homogeneous patches on the left half, 4 of them (and 8 partly) in the clipped square.
    chosen = select_patch_positions(image, PatchParameters(size=64, stride=32, max_patches=30))
    assert len(chosen) == 30
    assert not np.any((chosen[:, 0] < 128) & (chosen[:, 1] < 128))


def test_papers_patches_are_mean_subtracted_float32_chw():
    image = _image()
    params = PatchParameters(size=64, stride=32, max_patches=8, highpass=False, normalise_contrast=False)
    patches = homogeneous_patches(image, params)
    assert patches.shape == (8, 3, 64, 64) and patches.dtype == np.float32
    np.testing.assert_allclose(patches.mean(axis=(2, 3)), 0.0, atol=1e-6)
    assert 0.005 < patches.std(axis=(2, 3)).mean() < 0.02  # units are [0,1] pixels
    positions = select_patch_positions(image, params)
    direct = extract_patches(image, positions[:1], 64)[0]
    raw = image[positions[0, 0] : positions[0, 0] + 64, positions[0, 1] : positions[0, 1] + 64].transpose(2, 0, 1) / 255
    np.testing.assert_allclose(direct, raw - raw.mean(axis=(1, 2), keepdims=True), atol=1e-6)


def test_default_patches_are_unit_highpass_residuals_blind_to_gradients():
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float32)
    ramp = np.repeat((40 + 0.5 * rows + 0.3 * cols)[:, :, None], 3, axis=2)  # scene: a smooth gradient
    noise = np.random.default_rng(1).normal(0, 2, (64, 64, 3)).astype(np.float32)
    on_ramp = extract_patches(ramp + noise, np.array([[0, 0]]), 64, highpass=True)[0]
    on_flat = extract_patches(100 + noise, np.array([[0, 0]]), 64, highpass=True)[0]
    # the gradient is gone (away from the mirrored edges) and the level does not matter
    np.testing.assert_allclose(on_ramp[:, 1:-1, 1:-1], on_flat[:, 1:-1, 1:-1], atol=1e-4)
    assert np.abs(extract_patches(ramp, np.array([[0, 0]]), 64, highpass=True)[0][:, 1:-1, 1:-1]).max() < 1e-4
    default = homogeneous_patches(ramp + noise, PatchParameters(size=64, stride=32, max_patches=1))[0]
    assert abs(float(default.std()) - 1.0) < 1e-3  # normalised contrast by default
    np.testing.assert_allclose(default.mean(), 0.0, atol=0.05)


def test_flat_share_counts_the_flat_grid_patches():
    image, params = _image(), PatchParameters(size=64, stride=32, max_patches=8)
    # 15 grid columns; the 7 whose 64 px lie in the homogeneous left half are flat
    assert flat_share(patch_statistics(image, params)[1], params) == pytest.approx(7 / 15)
    patches, share = patches_and_flat_share(image, params)
    np.testing.assert_array_equal(patches, homogeneous_patches(image, params))
    assert share == pytest.approx(7 / 15)
    assert patches_and_flat_share(image[:, :256], params)[1] == 1.0


def test_small_image_gives_no_patch_and_bad_shape_is_media_error():
    assert len(select_patch_positions(np.zeros((100, 100, 3), np.float32))) == 0
    with pytest.raises(MediaError):
        select_patch_positions(np.zeros((300, 300), np.float32))


def test_prepare_frame_rotates_portrait_and_centre_crops():
    frame = np.zeros((1000, 600, 3), np.float32)  # portrait
    frame[500, 300] = 255.0  # the centre pixel
    out = prepare_frame(frame, FrameParameters(480, 800))
    assert out.shape == (3, 480, 800) and out.dtype == np.float32
    # After rotation the frame is 600×1000; the crop keeps the centre.
    assert out.max() == 1.0
    row, col = np.unravel_index(out[0].argmax(), out[0].shape)
    assert abs(row - 240) <= 1 and abs(col - 400) <= 1
    small = prepare_frame(np.full((100, 200, 3), 255.0, np.float32), FrameParameters(120, 240))
    assert small.shape == (3, 120, 240) and small.sum() == pytest.approx(3 * 100 * 200)


def test_highpass_frame_is_the_unit_contrast_residual_of_the_crop():
    rows = np.mgrid[0:200, 0:300][0].astype(np.float32)
    noise = np.random.default_rng(2).normal(0, 3, (200, 300, 3)).astype(np.float32)
    frame = np.repeat((60 + 0.4 * rows)[:, :, None], 3, axis=2) + noise
    out = prepare_frame(frame, FrameParameters(100, 160, highpass=True))
    crop = frame[50:150, 70:230].transpose(2, 0, 1) / 255
    expected = highpass_residual(crop)
    np.testing.assert_allclose(out, expected / expected.std(), rtol=1e-4, atol=1e-4)
    assert abs(float(out.std()) - 1.0) < 1e-3


def test_frame_indices_are_seeded_distinct_sorted():
    a = choose_frame_indices(300, 5, seed=7)
    assert len(set(a.tolist())) == 5 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, choose_frame_indices(300, 5, seed=7))
    assert not np.array_equal(a, choose_frame_indices(300, 5, seed=8))
    assert len(choose_frame_indices(3, 5)) == 3
    with pytest.raises(MediaError):
        choose_frame_indices(0)
