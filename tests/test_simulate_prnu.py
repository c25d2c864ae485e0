"""The simulator in the realistic regime, checked with the real PRNU pipeline (sensorprint.prnu).

Same unit: PCE far above the threshold 60; the twin of the same model and the other models:
far below. A guard against a simulator change that makes the demo trivial or impossible.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sensorprint.simulate import make_cameras, scene

prnu = pytest.importorskip("sensorprint.prnu")

W, H = 512, 384


def _jpeg_roundtrip(camera, *, seed: int, flat: bool = False, kind: str | None = None) -> np.ndarray:
    """Shoot, encode as the camera's JPEG, decode: float32 H×W×3 in 0..255."""
    s = scene(kind, W, H, seed) if kind else None
    image = camera.shoot(s, flat=flat, seed=seed)
    buf = io.BytesIO()
    Image.fromarray(image).save(
        buf, format="JPEG", quality=camera.model.jpeg_quality, subsampling=camera.model.jpeg_subsampling
    )
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32)


@pytest.fixture(scope="module")
def pce_table():
    cams = make_cameras(2, 2, width=W, height=H, seed=11)[:3]  # A0, A1 (twins), B0
    fingerprints = {
        c.name: prnu.estimate_fingerprint(_jpeg_roundtrip(c, seed=100 + i, flat=True) for i in range(8)).k for c in cams
    }
    table = []
    for c in cams:
        for i, kind in enumerate(("wall", "texture", "sky")):
            img = _jpeg_roundtrip(c, seed=500 + i, kind=kind)
            residual, inten = prnu.extract_residual(img), prnu.intensity(img)
            for name, k in fingerprints.items():
                pce = prnu.match(residual, inten, k, search="aligned", flips=False).pce
                table.append((c.name, name, kind, pce))
    return table


def test_same_unit_matches_far_above_threshold(pce_table):
    same = [p for q, f, _, p in pce_table if q == f]
    print("same-unit PCE", sorted(round(p) for p in same))
    assert min(same) > 100, sorted(same)


def test_twins_and_other_models_stay_below_threshold(pce_table):
    twins = [p for q, f, _, p in pce_table if q != f and q.split("_")[0] == f.split("_")[0]]
    others = [p for q, f, _, p in pce_table if q.split("_")[0] != f.split("_")[0]]
    assert twins and others
    print("twin PCE", sorted(round(p) for p in twins), "other-model PCE", sorted(round(p) for p in others))
    assert max(twins) < 30, sorted(twins)
    assert max(others) < 30, sorted(others)
