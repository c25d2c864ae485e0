"""Formats phones write: 10-bit HEVC, HDR (HLG / PQ) tags, container rotation, Live Photo pairs, slow motion.

Simulated clips (320×180, a few frames: each test takes a second or two); what the reader
must do with each: read the pixels as stored at their bit depth on the 0..255 scale of
8-bit video, record the transfer and primaries, the display rotation (never applied), the
Live Photo still beside its clip (and the clip beside its still), and the capture rate of
a slow-motion clip.
"""

from __future__ import annotations

import numpy as np
import pytest

from sensorprint.media import probe, read_frames
from sensorprint.prnu import frame_noise, to_gray
from sensorprint.simulate import make_cameras

KW = dict(seconds=0.4, fps=10, size=(320, 180), motion=False, scene_kind="wall", seed=1)


@pytest.fixture(scope="module")
def camera():
    return make_cameras(1, 1, seed=3, width=400, height=300)[0]


def test_10_bit_hevc_reads_on_the_8_bit_scale_and_its_residual_matches(tmp_path, camera):
    eight = camera.record_video(tmp_path / "clip8.mov", codec="hevc", container_format="mov", **KW)
    ten = camera.record_video(tmp_path / "clip10.mov", codec="hevc", container_format="mov", bit_depth=10, **KW)
    m8, m10 = probe(eight), probe(ten)
    assert (m8.metadata["bit_depth"], m10.metadata["bit_depth"]) == (8, 10)
    assert m10.metadata["pix_fmt"] == "yuv420p10le" and m10.metadata["hdr"] is None
    a = next(iter(read_frames(eight, strategy="all"))).pixels
    b = next(iter(read_frames(ten, strategy="all"))).pixels
    assert b.dtype == np.float32 and b.max() <= 255.0 and a.shape == b.shape
    assert abs(float(a.mean()) - float(b.mean())) < 2.0  # the same scene on the same scale
    assert np.count_nonzero(b != np.round(b)) > b.size // 4  # finer than 8-bit levels: the 10 bits are kept
    ra, rb = (frame_noise(to_gray(x), method="wavelet", sigma=3.0, levels=4) for x in (a, b))
    assert 0.6 < float(rb.std() / ra.std()) < 1.4  # the noise residual on a consistent scale


@pytest.mark.parametrize("hdr,transfer", [("hlg", "arib-std-b67"), ("pq", "smpte2084")])
def test_hdr_transfer_and_primaries_are_recorded(tmp_path, camera, hdr, transfer):
    path = camera.record_video(tmp_path / f"{hdr}.mp4", codec="hevc", bit_depth=10, hdr=hdr, **KW)
    metadata = probe(path).metadata
    assert metadata["hdr"] == hdr.upper() and metadata["color_transfer"] == transfer
    assert metadata["color_primaries"] == "bt2020" and metadata["bit_depth"] == 10
    assert probe(camera.record_video(tmp_path / "sdr.mp4", **KW)).metadata["hdr"] is None
    with pytest.raises(ValueError):
        camera.record_video(tmp_path / "x.mp4", bit_depth=10, **KW)  # 10-bit is written as HEVC only


def test_container_rotation_is_recorded_and_the_pixels_stay_as_stored(tmp_path, camera):
    path = camera.record_video(tmp_path / "portrait.mov", codec="hevc", container_format="mov", rotation=-90, **KW)
    medium = probe(path)
    assert medium.metadata["rotation_deg"] == 90 and medium.orientation == 6
    assert (medium.width, medium.height) == (320, 180)
    assert next(iter(read_frames(path, strategy="all"))).pixels.shape == (180, 320, 3)


def test_live_photo_clip_and_still_name_each_other(tmp_path, camera):
    clip = camera.record_video(
        tmp_path / "IMG_0042.MOV",
        codec="hevc",
        container_format="mov",
        tags={"com.apple.quicktime.content.identifier": "6A1B2C3D-0000-4000-8000-000000000042"},
        **KW,
    )
    still = camera.save_jpeg(tmp_path / "IMG_0042.JPG", flat=True, seed=0)
    video, image = probe(clip).metadata, probe(still).metadata
    assert video["live_photo_still"] == "IMG_0042.JPG" and image["live_photo_video"] == "IMG_0042.MOV"
    assert video["content_identifier"] == "6A1B2C3D-0000-4000-8000-000000000042"
    alone = camera.record_video(tmp_path / "IMG_0043.MOV", codec="hevc", container_format="mov", **KW)
    assert "live_photo_still" not in probe(alone).metadata  # no still of that name: not a Live Photo
    assert "live_photo_still" not in probe(camera.record_video(tmp_path / "IMG_0042.mp4", **KW)).metadata


def test_slow_motion_and_high_frame_rate_are_stated(tmp_path, camera):
    android = camera.record_video(tmp_path / "slomo.mp4", tags={"com.android.capture.fps": "240.0"}, **KW)
    metadata = probe(android).metadata
    assert metadata["capture_fps"] == 240.0 and metadata["slow_motion"] and metadata["high_frame_rate"]
    apple = camera.record_video(
        tmp_path / "slomo.mov",
        container_format="mov",
        **(KW | {"fps": 120, "seconds": 0.05}),
        tags={"com.apple.quicktime.full-frame-rate-playback-intent": "0"},
    )
    metadata = probe(apple).metadata
    assert metadata["fps"] == pytest.approx(120.0) and metadata["slow_motion"] and metadata["high_frame_rate"]
    plain = probe(camera.record_video(tmp_path / "plain.mp4", **KW)).metadata
    assert not plain["slow_motion"] and not plain["high_frame_rate"] and plain["capture_fps"] is None


def test_the_report_says_how_the_clip_was_recorded_and_draws_per_frame_transforms():
    from sensorprint.report.figures import frame_transforms_png
    from sensorprint.report.records import describe_format

    clip = {
        "codec": "hevc",
        "bit_depth": 10,
        "hdr": "HLG",
        "color_transfer": "arib-std-b67",
        "color_primaries": "bt2020",
        "rotation_deg": 90,
        "slow_motion": True,
        "capture_fps": 240.0,
        "variable_frame_rate": True,
        "live_photo_still": "IMG_0042.HEIC",
        "content_identifier": "ID-42",
    }
    text = describe_format(clip, "video")
    for words in ("HEVC 10-bit", "HDR HLG", "bt2020", "rotation 90°", "slow motion (captured at 240 fps)"):
        assert words in text
    assert (
        "variable frame rate" in text and "Live Photo clip of the still IMG_0042.HEIC, content identifier ID-42" in text
    )
    assert (
        describe_format({"live_photo_video": "IMG_0042.MOV"}, "image") == "Live Photo still; its clip is IMG_0042.MOV"
    )
    assert describe_format({"make": "Apple"}, "image") == ""
    transforms = [
        {
            "frame": i,
            "keyframe": i % 3 == 0,
            "pce": 80.0,
            "scale": 1.05 + 0.001 * i,
            "rotation": 0.1 * i,
            "shift": [i, -i],
        }
        for i in range(6)
    ]
    png = frame_transforms_png(transforms, {i: i / 30 for i in range(6)})
    assert png and png.startswith(b"\x89PNG")
    assert frame_transforms_png([]) is None
