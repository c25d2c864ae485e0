"""sensorprint.simulate: determinism, the physics it promises, JPEG/EXIF, video, the demo case."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sensorprint.simulate import (
    SCENE_KINDS,
    Camera,
    CameraModel,
    make_cameras,
    scene,
    video_geometry,
    write_demo_case,
)
from sensorprint.simulate.isp import cfa_channel_map

W, H = 512, 384


@pytest.fixture(scope="module")
def cameras() -> list[Camera]:
    return make_cameras(3, 2, width=W, height=H, seed=7)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


# --- determinism -------------------------------------------------------------------------


def test_cameras_and_shots_are_deterministic_from_seeds(cameras):
    again = make_cameras(3, 2, width=W, height=H, seed=7)
    assert [c.name for c in again] == [c.name for c in cameras]
    assert [c.seed for c in again] == [c.seed for c in cameras]
    assert np.array_equal(again[0].prnu(), cameras[0].prnu())
    a = cameras[0].shoot(seed=3)
    b = again[0].shoot(seed=3)
    assert a.dtype == np.uint8 and a.shape == (H, W, 3)
    assert np.array_equal(a, b)
    c = cameras[0].shoot(seed=4)
    assert np.abs(a.astype(int) - c).mean() > 1.0  # another seed is another picture
    other_seed = make_cameras(3, 2, width=W, height=H, seed=8)
    assert abs(_corr(other_seed[0].prnu(), cameras[0].prnu())) < 0.02


def test_jpeg_bytes_are_reproducible(cameras, tmp_path):
    p1 = cameras[2].save_jpeg(tmp_path / "a.jpg", seed=11)
    p2 = cameras[2].save_jpeg(tmp_path / "b.jpg", seed=11)
    p3 = cameras[2].save_jpeg(tmp_path / "c.jpg", seed=12)
    assert p1.read_bytes() == p2.read_bytes()
    assert p1.read_bytes() != p3.read_bytes()


@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_scenes_are_linear_float32_and_deterministic(kind):
    a = scene(kind, 160, 120, np.random.default_rng(5))
    b = scene(kind, 160, 120, 5)
    assert a.shape == (120, 160, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert a.min() >= 0.0 and 0.005 < a.mean() < 1.0
    if kind == "flat":  # a flat field: bright, almost no detail
        hp = a[..., 1] - ndimage.uniform_filter(a[..., 1], 9)
        assert 0.3 < a.mean() < 0.65 and hp.std() < 0.002
    with pytest.raises(ValueError):
        scene("moon", 160, 120, 0)


# --- the sensor: PRNU and the model pattern -----------------------------------------------


def test_prnu_is_independent_between_units(cameras):
    ks = [c.prnu(include_model_pattern=False) for c in cameras]
    for k, cam in zip(ks, cameras):
        assert k.dtype == np.float32 and k.shape == (H, W)
        assert 0.8 * cam.model.prnu_strength < float(k.std()) < 1.6 * cam.model.prnu_strength
    # The high-frequency part is what PRNU matching uses (the optional smooth part has only
    # a few dozen independent cells at this size, so its chance correlation is large).
    highs = [k - ndimage.uniform_filter(k, 9) for k in ks]
    for i in range(len(ks)):
        for j in range(i + 1, len(ks)):
            # 196 608 pixels: the correlation of independent patterns has std ≈ 0.0023.
            assert abs(_corr(highs[i], highs[j])) < 0.012, (cameras[i].name, cameras[j].name)


def test_twins_share_the_model_pattern_and_other_models_do_not(cameras):
    a0, a1, b0 = cameras[0], cameras[1], cameras[2]
    assert a0.model == a1.model and a0.seed != a1.seed and a0.model != b0.model
    model_part = a0.prnu() - a0.prnu(include_model_pattern=False)
    assert np.allclose(model_part, a0.model.model_pattern(), atol=1e-6)
    assert np.allclose(a1.prnu() - a1.prnu(include_model_pattern=False), model_part, atol=1e-6)

    def high(k: np.ndarray) -> np.ndarray:
        return k - ndimage.uniform_filter(k, 9)

    twin = _corr(high(a0.prnu()), high(a1.prnu()))
    other = _corr(high(a0.prnu()), high(b0.prnu()))
    # Expected ≈ var(model) / var(K) ≈ 0.04–0.10 with the default strengths.
    assert twin > 0.03, twin
    assert abs(other) < 0.012, other


def test_model_pattern_shows_in_flat_images_of_twins(cameras):
    """The row/column pattern of the model is visible in the row means of flat shots of both twins."""

    def row_profile(cam: Camera) -> np.ndarray:
        rows = np.mean([cam.shoot(flat=True, seed=s).astype(np.float32).mean(axis=(1, 2)) for s in range(4)], axis=0)
        return rows - ndimage.uniform_filter1d(rows, 15, mode="nearest")

    a0, a1, b0 = (row_profile(c) for c in cameras[:3])
    assert _corr(a0, a1) > 0.3
    assert abs(_corr(a0, b0)) < 0.25


def test_flat_shot_carries_the_prnu(cameras):
    """A flat shot divided by its smooth version correlates with the true K at the sensor's grid."""
    cam = cameras[4]
    img = np.mean([cam.shoot(flat=True, seed=s).astype(np.float32).mean(axis=2) for s in range(3)], axis=0)
    hp = img - ndimage.uniform_filter(img, 5)
    k = cam.prnu(include_model_pattern=False)
    k_hp = k - ndimage.uniform_filter(k, 5)
    assert _corr(hp, k_hp) > 0.04  # 17 standard deviations of chance at this size
    assert abs(_corr(hp, cameras[2].prnu(include_model_pattern=False))) < 0.012


def test_noise_and_saturation_behave_physically():
    model = CameraModel(
        name="Test",
        width=64,
        height=64,
        seed=1,
        prnu_strength=0.0,
        prnu_lowfreq_strength=0.0,
        row_column_strength=0.0,
        periodic_strength=0.0,
        dark_std_e=0.0,
    )
    cam = Camera(model=model, unit=0, seed=2)
    dark = np.full((64, 64, 3), 0.05, np.float32)
    bright = np.full((64, 64, 3), 0.5, np.float32)
    green = cfa_channel_map(model.cfa, 64, 64) == 1
    raw_dark, raw_bright = cam.raw(dark, seed=1)[green], cam.raw(bright, seed=1)[green]
    # Shot noise: the relative noise falls like 1/sqrt(signal) (√10 ≈ 3.2 here, read noise aside).
    rel_dark = raw_dark.std() / raw_dark.mean()
    rel_bright = raw_bright.std() / raw_bright.mean()
    assert 2.6 < rel_dark / rel_bright < 3.6
    # Poisson: variance in electrons ≈ mean in electrons (green: 0.5 × full well = 3000 e).
    electrons = raw_bright * model.full_well_e
    assert electrons.var() == pytest.approx(electrons.mean(), rel=0.15)
    saturated = cam.raw(np.full((64, 64, 3), 5.0, np.float32), seed=1)
    assert saturated.max() == 1.0 and saturated.min() == 1.0


# --- JPEG and EXIF ------------------------------------------------------------------------


def test_jpeg_exif_orientation_crop_and_scale(cameras, tmp_path):
    cam = cameras[3]
    p = cam.save_jpeg(tmp_path / "d" / "land.jpg", seed=1)
    with Image.open(p) as img:
        exif = img.getexif()
        assert img.format == "JPEG" and img.size == (W, H)
        assert exif[0x010F] == cam.model.make and exif[0x0110] == cam.model.name and exif[0x0112] == 1
        assert exif.get_ifd(0x8769)[0xA431]  # body serial number
    with Image.open(cam.save_jpeg(tmp_path / "portrait.jpg", seed=1, orientation=90)) as img:
        assert img.size == (H, W) and img.getexif()[0x0112] == 1
    with Image.open(cam.save_jpeg(tmp_path / "tag.jpg", seed=1, orientation=270, rotate_pixels=False)) as img:
        assert img.size == (W, H) and img.getexif()[0x0112] == 6
    with Image.open(cam.save_jpeg(tmp_path / "crop.jpg", seed=1, crop=(10, 20, 200, 100))) as img:
        assert img.size == (200, 100)
    with Image.open(cam.save_jpeg(tmp_path / "small.jpg", seed=1, scale=0.5, quality=70)) as img:
        assert img.size == (W // 2, H // 2)
    with Image.open(cam.save_jpeg(tmp_path / "noexif.jpg", seed=1, exif=False)) as img:
        assert 0x010F not in img.getexif()
    # The stored portrait is the landscape shot turned: same pixels, same noise.
    land = cam.shoot(seed=5)
    assert np.array_equal(cam.shoot(seed=5, orientation=90), np.rot90(land, 1))
    with pytest.raises(ValueError):
        cam.shoot(seed=5, orientation=45)


# --- video --------------------------------------------------------------------------------


def _decode(path: Path) -> tuple[dict, list[np.ndarray], list[bool]]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": float(stream.average_rate),
            "make": container.metadata.get("make"),
            "model": container.metadata.get("model"),
        }
        frames, keys = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray").astype(np.float32))
            keys.append(bool(frame.key_frame))
    return info, frames, keys


@pytest.fixture(scope="module")
def video_camera() -> Camera:
    return make_cameras(1, 1, width=640, height=480, seed=3, prnu_strength=0.01)[0]


def test_video_decodes_to_requested_size_fps_and_frames(video_camera, tmp_path):
    calls: list[tuple[int, int]] = []
    path = video_camera.record_video(
        tmp_path / "clip.mp4",
        seconds=1.2,
        fps=10,
        size=(320, 180),
        bitrate=1_000_000,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls[-1] == (12, 12)
    info, frames, keys = _decode(path)
    assert info["codec"] == "h264"
    assert (info["width"], info["height"]) == (320, 180)
    assert info["fps"] == pytest.approx(10.0)
    assert len(frames) == 12 and frames[0].shape == (180, 320)
    assert keys[0] and keys[10] and sum(keys) == 2  # GOP = fps
    assert info["make"] == video_camera.model.make and info["model"] == video_camera.model.name
    again = video_camera.record_video(tmp_path / "again.mp4", seconds=1.2, fps=10, size=(320, 180), bitrate=1_000_000)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def test_video_geometry_is_a_scaled_crop_of_the_sensor(video_camera):
    geo = video_geometry(video_camera, (320, 180))
    assert geo.window == (0, 60, 640, 360) and geo.scale == pytest.approx(0.5) and geo.margin == 0
    stab = video_geometry(video_camera, (320, 180), stabilise=True)
    assert stab.margin > 0 and stab.window[2] < 640 and stab.scale > geo.scale
    with pytest.raises(ValueError):
        video_geometry(video_camera, (321, 180))


def _mean_consecutive_residual_corr(frames: list[np.ndarray]) -> float:
    res = [f - ndimage.uniform_filter(f, 3) for f in frames]
    return float(np.mean([_corr(res[i], res[i + 1]) for i in range(len(res) - 1)]))


def test_stabilise_misaligns_the_prnu_from_frame_to_frame(video_camera, tmp_path):
    kw = dict(seconds=1.0, fps=10, size=(320, 180), bitrate=6_000_000, motion=False, scene_kind="flat", seed=2)
    steady = video_camera.record_video(tmp_path / "steady.mp4", **kw)
    stab = video_camera.record_video(tmp_path / "stab.mp4", stabilise=True, **kw)
    c_steady = _mean_consecutive_residual_corr(_decode(steady)[1])
    c_stab = _mean_consecutive_residual_corr(_decode(stab)[1])
    # Fixed sensor, static flat scene: the frames' residuals share the aligned PRNU.
    print(f"consecutive-frame residual correlation: steady {c_steady:.3f}, stabilised {c_stab:.3f}")
    assert c_steady > 0.04, c_steady
    assert c_stab < 0.5 * c_steady, (c_stab, c_steady)


def test_motion_moves_the_scene_but_not_the_sensor(video_camera, tmp_path):
    path = video_camera.record_video(
        tmp_path / "pan.mp4",
        seconds=2.0,
        fps=15,
        size=(320, 180),
        bitrate=3_000_000,
        motion=True,
        scene_kind="photo",
        seed=4,
    )
    frames = _decode(path)[1]
    assert np.abs(frames[0] - frames[-1]).mean() > 2.0  # the scene moved


# --- the demo case -------------------------------------------------------------------------


def _digest_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_write_demo_case_writes_the_promised_files_and_truth(tmp_path):
    root = tmp_path / "demo"
    calls: list[tuple[int, int]] = []
    truth = write_demo_case(root, seed=1, width=256, height=192, progress=lambda d, t: calls.append((d, t)))
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files - {"ground_truth.json"} == set(truth)
    assert calls and calls[-1][0] == calls[-1][1]
    meta = json.loads((root / "ground_truth.json").read_text())
    assert meta["files"] == truth

    enrolled = sorted(p.name for p in (root / "reference").iterdir())
    assert enrolled == sorted(meta["enrolled"]) and len(enrolled) >= 4
    models = [name.rsplit("_unit", 1)[0] for name in enrolled]
    assert max(models.count(m) for m in models) >= 2  # two units of one model
    for name in enrolled:
        refs = list((root / "reference" / name).glob("*.jpg"))
        assert sum("flat" in p.name for p in refs) >= 8 and sum("natural" in p.name for p in refs) >= 4
        assert all(truth[p.relative_to(root).as_posix()] == name for p in refs)

    evidence = {k: v for k, v in truth.items() if k.startswith("evidence/")}
    assert any(k.count("/") >= 3 for k in evidence)  # nested folders
    sizes = {}
    for rel, cam in evidence.items():
        if cam is not None:
            with Image.open(root / rel) as img:
                sizes[rel] = img.size
    assert any(s == (192, 256) for s in sizes.values())  # portraits
    crops = {k: d["crop"] for k, d in meta["details"].items() if k.startswith("evidence/") and d.get("crop")}
    assert len(crops) >= 2 and all(sizes[k] == tuple(c[2:]) and c[:2] != [0, 0] for k, c in crops.items())
    assert sum(1 for s in sizes.values() if s == (154, 115)) == 1  # the downscaled one (0.6)
    unenrolled = {v for v in evidence.values() if v is not None} - set(enrolled)
    assert unenrolled and set(meta["unenrolled"]) == unenrolled
    assert any(u.rsplit("_unit", 1)[0] in models for u in unenrolled)  # a twin of an enrolled camera
    for cam in enrolled:
        assert any(v == cam for v in evidence.values())

    bad = [k for k, v in evidence.items() if v is None]
    assert len(bad) >= 4
    assert any((root / k).stat().st_size == 0 for k in bad)
    assert any((root / k).read_bytes()[:4] not in (b"", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1") for k in bad)
    tiny = [k for k in bad if (root / k).stat().st_size > 0 and (root / k).read_bytes()[:2] == b"\xff\xd8"]
    truncated = []
    for k in tiny:
        try:
            with Image.open(root / k) as img:
                img.load()
                assert img.size == (32, 32)
        except OSError:
            truncated.append(k)
    assert len(truncated) == 1 and len(tiny) == 2

    # Deterministic from the seed.
    root2 = tmp_path / "demo2"
    assert write_demo_case(root2, seed=1, width=256, height=192) == truth
    assert _digest_tree(root2) == _digest_tree(root)
