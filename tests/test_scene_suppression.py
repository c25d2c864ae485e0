"""Scene content attenuated in a residual (Li, TIFS 2010, enhancing model 3): the option and its effect."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sensorprint.prnu import extract_residual
from sensorprint.prnu.scene import enhance_residual
from sensorprint.simulate import make_cameras, scene
from sensorprint.workflow.options import SignalOptions
from sensorprint.workflow.signals import query_signal


def test_weak_components_are_kept_and_strong_ones_attenuated():
    noise = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    probes = np.array([-8.0, -0.05, 0.05, 1.0, 3.0, 4.0, 8.0], dtype=np.float32)
    w = np.concatenate([noise, probes])
    sd = float(w.std())
    e = enhance_residual(w, 3.0)[-probes.size :] / sd
    x = probes / sd
    assert np.all(np.sign(e) == np.sign(x))
    assert np.allclose(e[1:3], x[1:3], rtol=0.06)  # 1 − e^(−|x|) ≈ |x| near 0: sensor noise kept
    assert e[3] == pytest.approx(1 - np.exp(-x[3]), rel=1e-5)
    assert e[6] < 0.01 < e[5] < e[4] < 1.0  # beyond α = 3 standard deviations the magnitude falls again
    assert e[0] == -e[6]
    assert not enhance_residual(np.zeros((4, 4), np.float32), 3.0).any()
    with pytest.raises(ValueError):
        enhance_residual(w, 0.0)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_two_cameras_shooting_one_facade_correlate_less_once_enhanced(tmp_path):
    cameras = make_cameras(n_models=2, units_per_model=1, seed=31, width=384, height=288)
    radiance = scene("facade", 384, 288, rng=1000)
    residuals = []
    for camera in cameras:
        path = camera.save_jpeg(tmp_path / f"{camera.name}.jpg", scene=radiance, seed=0)
        residuals.append(extract_residual(np.asarray(Image.open(path), dtype=np.float32)))
    plain = _correlation(*residuals)
    enhanced = _correlation(*(enhance_residual(r, 3.0) for r in residuals))
    assert plain > 0.02  # the shared scene survives the denoiser
    assert enhanced < 0.85 * plain


def test_the_option_enhances_the_residual_a_query_gets(tmp_path):
    camera = make_cameras(n_models=1, units_per_model=1, seed=3, width=256, height=192)[0]
    path = camera.save_jpeg(tmp_path / "q.jpg", seed=1)
    plain = query_signal(path, SignalOptions())[1]
    enhanced = query_signal(path, SignalOptions(scene_alpha=3.0))[1]
    assert np.array_equal(enhanced.residual, enhance_residual(plain.residual, 3.0))
