"""sensorprint.media on videos: metadata, frame strategies, and every kind of bad input."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import assert_one_line_media_error
from sensorprint.media import probe, read_frames, read_image

N_FRAMES, GOP, WIDTH, HEIGHT = 48, 12, 192, 128


def scene(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([(xx + 3 * i) % 256, (yy + 2 * i) % 256, (xx * yy // 50 + i) % 256], axis=-1).astype(np.uint8)


def write_video(
    path: Path,
    *,
    n: int = N_FRAMES,
    rotation_ccw: int | None = None,
    options: dict | None = None,
    tags: dict | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    with_audio: bool = False,
) -> Path:
    """A short H.264 clip with a keyframe every GOP frames and B-frames (the phone-like case)."""
    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    stream.options = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "bf": "2"}
    if time_base is not None:  # the encoder must count in it too, or it rounds timestamps to 1/30 s
        stream.time_base = stream.codec_context.time_base = time_base
    if rotation_ccw is not None:
        stream.set_display_rotation(rotation_ccw)
    for key, value in (tags or {}).items():
        container.metadata[key] = value
    audio = container.add_stream("aac", rate=16000) if with_audio else None
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(scene(i), format="rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[i], time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if audio is not None:
        write_silence(container, audio)
    container.close()
    return path


def write_audio_only(path: Path) -> Path:
    """A file with one silent AAC stream and no video."""
    container = av.open(str(path), "w")
    write_silence(container, container.add_stream("aac", rate=16000))
    container.close()
    return path


def write_silence(container, audio, blocks: int = 20) -> None:
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    frame.sample_rate = 16000
    for i in range(blocks):
        frame.pts = i * 1024
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mov"
    return write_video(
        path,
        rotation_ccw=-90,
        options={"movflags": "use_metadata_tags"},
        tags={
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 12",
            "com.apple.quicktime.creationdate": "2024-01-02T03:04:05+0100",
        },
    )


@pytest.fixture(scope="module")
def all_frames(clip) -> list:
    return list(read_frames(clip, strategy="all"))


# ---------------------------------------------------------------- metadata


def test_probe_video_metadata(clip):
    before = (os.stat(clip).st_mtime_ns, hashlib.sha256(clip.read_bytes()).hexdigest())
    medium = probe(clip)
    assert (medium.kind, medium.width, medium.height) == ("video", WIDTH, HEIGHT)
    assert medium.metadata["rotation_deg"] == 90 and medium.orientation == 6  # recorded, not applied
    assert medium.metadata["make"] == "Apple" and medium.metadata["model"] == "iPhone 12"
    assert medium.metadata["creation_time"] == "2024-01-02T03:04:05+0100"
    assert medium.metadata["codec"] == "h264"
    assert medium.metadata["n_frames"] == N_FRAMES and medium.metadata["n_keyframes"] == N_FRAMES // GOP
    assert medium.metadata["fps"] == pytest.approx(30.0)
    assert medium.metadata["duration_s"] == pytest.approx(N_FRAMES / 30.0, abs=0.05)
    assert medium.metadata["variable_frame_rate"] is False
    assert medium.sha256 == before[1] and medium.size_bytes == clip.stat().st_size
    assert (os.stat(clip).st_mtime_ns, hashlib.sha256(clip.read_bytes()).hexdigest()) == before
    import json

    assert json.loads(json.dumps(medium.to_dict()))["orientation"] == 6


@pytest.mark.parametrize("ccw,orientation", [(0, 1), (90, 8), (180, 3)])
def test_rotation_mapped_to_orientation(tmp_path, ccw, orientation):
    medium = probe(write_video(tmp_path / "r.mp4", n=4, rotation_ccw=ccw))
    assert medium.orientation == orientation and medium.metadata["rotation_deg"] == (-ccw) % 360


# ---------------------------------------------------------------- strategies


def test_all_frames_in_order_with_times(all_frames):
    assert [f.index for f in all_frames] == list(range(N_FRAMES))
    assert [round(f.time_s * 30) for f in all_frames] == list(range(N_FRAMES))
    assert [f.index for f in all_frames if f.keyframe] == list(range(0, N_FRAMES, GOP))
    frame = all_frames[5]
    assert frame.pixels.dtype == np.float32 and frame.pixels.shape == (HEIGHT, WIDTH, 3)  # not rotated
    assert np.abs(frame.pixels - scene(5)).mean() < 6.0  # the right picture, through a lossy codec


def test_keyframes_only(clip, all_frames):
    frames = list(read_frames(clip, strategy="keyframes"))
    assert [f.index for f in frames] == list(range(0, N_FRAMES, GOP))
    assert all(f.keyframe for f in frames)
    for frame in frames:
        np.testing.assert_array_equal(frame.pixels, all_frames[frame.index].pixels)


def test_random_is_reproducible_and_exact(clip, all_frames):
    first = list(read_frames(clip, strategy="random", n=5, seed=3))
    again = list(read_frames(clip, strategy="random", n=5, seed=3))
    other = list(read_frames(clip, strategy="random", n=5, seed=4))
    indices = [f.index for f in first]
    assert len(indices) == 5 and indices == sorted(set(indices)) == [f.index for f in again]
    assert indices != [f.index for f in other]
    expected = sorted(np.random.default_rng(3).choice(N_FRAMES, size=5, replace=False).tolist())
    assert indices == expected
    for frame in first:  # seeking to the keyframe before and decoding forward gives the very same frame
        np.testing.assert_array_equal(frame.pixels, all_frames[frame.index].pixels)
        assert frame.time_s == pytest.approx(frame.index / 30.0)


def test_even_and_caps(clip, all_frames):
    even = list(read_frames(clip, strategy="even", n=5))
    assert [f.index for f in even] == [0, 12, 24, 35, 47]
    for frame in even:
        np.testing.assert_array_equal(frame.pixels, all_frames[frame.index].pixels)
    assert len(list(read_frames(clip, strategy="all", max_frames=7))) == 7
    assert len(list(read_frames(clip, strategy="keyframes", max_frames=2))) == 2
    assert len(list(read_frames(clip, strategy="random", n=100))) == N_FRAMES  # n beyond the length: every frame once


def test_even_keyframes(clip, all_frames):
    frames = list(read_frames(clip, strategy="even_keyframes", n=2))
    assert [f.index for f in frames] == [0, 36] and all(f.keyframe for f in frames)
    assert [f.index for f in read_frames(clip, strategy="even_keyframes", n=9)] == [0, 12, 24, 36]
    for frame in frames:
        np.testing.assert_array_equal(frame.pixels, all_frames[frame.index].pixels)


@pytest.mark.parametrize("suffix", [".ts", ".avi", ".mkv"])
def test_other_containers_exact_frames(tmp_path, suffix):
    # MPEG-TS seeks only approximately: every chosen frame must still be exactly the one asked for
    path = write_video(tmp_path / f"clip{suffix}")
    everything = list(read_frames(path, strategy="all"))
    assert [f.index for f in everything] == list(range(N_FRAMES))
    for strategy in ("random", "even", "even_keyframes", "keyframes"):
        for frame in read_frames(path, strategy=strategy, n=5, seed=11):
            np.testing.assert_array_equal(frame.pixels, everything[frame.index].pixels)
    assert [f.index for f in read_frames(path, strategy="keyframes")] == list(range(0, N_FRAMES, GOP))


def test_bad_arguments_raise_value_error(clip):
    with pytest.raises(ValueError):
        read_frames(clip, strategy="best")
    with pytest.raises(ValueError):
        read_frames(clip, strategy="random", n=0)


def test_variable_frame_rate_works_and_is_reported(tmp_path):
    intervals = [33, 33, 50, 33, 66, 33, 40, 33] * 6
    pts = np.concatenate([[0], np.cumsum(intervals)])[:N_FRAMES].tolist()
    path = write_video(tmp_path / "vfr.mkv", pts=pts, time_base=Fraction(1, 1000))
    medium = probe(path)
    assert medium.metadata["variable_frame_rate"] is True
    assert medium.metadata["frame_interval_s"]["max"] == pytest.approx(0.066)
    frames = list(read_frames(path, strategy="all"))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [f.time_s for f in frames] == pytest.approx([p / 1000 for p in pts])
    picked = list(read_frames(path, strategy="random", n=4, seed=1))
    for frame in picked:
        np.testing.assert_array_equal(frame.pixels, frames[frame.index].pixels)


def test_constant_frame_rate_in_millisecond_time_base_is_not_variable(tmp_path):
    # 30 fps in Matroska's 1/1000 time base alternates 33 and 34 ms: timestamp rounding, not VFR
    medium = probe(write_video(tmp_path / "cfr.mkv", n=20))
    assert medium.metadata["variable_frame_rate"] is False


def test_video_with_audio_and_wrong_extension(tmp_path):
    mp4 = write_video(tmp_path / "holiday.mp4", n=12, with_audio=True)
    renamed = tmp_path / "holiday.jpg"
    renamed.write_bytes(mp4.read_bytes())
    medium = probe(renamed)
    assert medium.kind == "video" and medium.metadata["has_audio"] is True
    assert ".jpg" in medium.metadata["extension_mismatch"]
    assert len(list(read_frames(renamed, strategy="all"))) == 12
    assert_one_line_media_error(lambda: read_image(renamed), "video")


# ---------------------------------------------------------------- bad input


def test_audio_only(tmp_path):
    path = write_audio_only(tmp_path / "voice.m4a")
    assert_one_line_media_error(lambda: probe(path), "audio-only")
    assert_one_line_media_error(lambda: list(read_frames(path)), "audio-only")


def test_zero_frame_video(tmp_path):
    path = tmp_path / "empty.mkv"
    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=30)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    audio = container.add_stream("aac", rate=16000)
    container.start_encoding()
    write_silence(container, audio)
    container.close()
    assert_one_line_media_error(lambda: probe(path), "no frames")
    assert_one_line_media_error(lambda: list(read_frames(path)), "no frames")


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_video(tmp_path, faststart):
    path = write_video(tmp_path / "whole.mp4", options={"movflags": "faststart"} if faststart else None)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    assert_one_line_media_error(lambda: probe(cut), "truncated")
    assert_one_line_media_error(lambda: list(read_frames(cut, strategy="all")), "truncated")


def test_codec_ffmpeg_cannot_decode(tmp_path):
    data = write_video(tmp_path / "ok.mp4", n=12).read_bytes()
    entry = data.find(b"avc1", data.find(b"stsd"))
    patched = tmp_path / "unknown_codec.mp4"
    patched.write_bytes(data[:entry] + b"qqqq" + data[entry + 4 :])  # a sample-entry fourcc nobody knows
    assert_one_line_media_error(lambda: probe(patched), "codec")
    assert_one_line_media_error(lambda: list(read_frames(patched)), "codec")


def test_garbage_behind_a_video_header(tmp_path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + os.urandom(3000))
    assert_one_line_media_error(lambda: probe(path), "video")
    assert_one_line_media_error(lambda: list(read_frames(path)), "video")
