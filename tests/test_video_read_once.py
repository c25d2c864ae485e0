"""Reading a video once for the scan: `read_video` (medium + frames from one open), luma frames,
and the per-frame residual kept bit-identical while made cheaper."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from scipy import ndimage

import sensorprint.media.video as video
from conftest import assert_one_line_media_error
from sensorprint.media import probe, read_frames
from sensorprint.media.video import _to_luma, read_video
from sensorprint.prnu import to_gray
from sensorprint.prnu.video import box_mean, spatial_wiener_noise
from sensorprint.workflow import SignalOptions
from sensorprint.workflow.files import FileFacts
from sensorprint.workflow.signals import query_signal, video_query_residual
from test_media_video import GOP, N_FRAMES, write_audio_only, write_video

STRATEGIES = ["even_keyframes", "even", "random", "keyframes", "all"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("once")
    return {suffix: write_video(folder / f"clip{suffix}") for suffix in (".mp4", ".mkv", ".ts", ".avi")}


@pytest.fixture
def count_opens(monkeypatch) -> list[str]:
    opened: list[str] = []
    real_open = video._open

    def counting(path, **options):
        opened.append(str(path))
        return real_open(path, **options)

    monkeypatch.setattr(video, "_open", counting)
    return opened


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts", ".avi"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_read_video_gives_what_probe_and_read_frames_give(clips, suffix, strategy):
    path = clips[suffix]
    medium, frames = read_video(path, strategy=strategy, n=4, seed=7, max_frames=6)
    frames = list(frames)
    expected = list(read_frames(path, strategy=strategy, n=4, seed=7, max_frames=6))
    assert medium.to_dict() == probe(path).to_dict()
    assert [(f.index, f.time_s, f.keyframe) for f in frames] == [(f.index, f.time_s, f.keyframe) for f in expected]
    assert len(frames) == {"even_keyframes": N_FRAMES // GOP, "keyframes": N_FRAMES // GOP, "all": 6}.get(strategy, 4)
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got.pixels, want.pixels)


def test_one_open_for_the_scan_strategy(clips, count_opens):
    medium, frames = read_video(clips[".mp4"], strategy="even_keyframes", n=5, max_frames=5, threads=1)
    assert len(list(frames)) == 4 and medium.kind == "video"
    assert len(count_opens) == 1  # probe facts, index and decoding from one open (was 4)
    count_opens.clear()
    probe(clips[".mp4"])
    assert len(count_opens) == 1  # index and first frame in one pass (was 2)
    count_opens.clear()
    list(read_frames(clips[".mp4"], strategy="even", n=3))
    assert len(count_opens) == 1  # (was 2)


def test_first_frame_is_decoded_once_when_chosen(clips, monkeypatch):
    """The frame that describes the video is the first one chosen: it is not decoded a second time."""
    decoded = []
    real = video._keyframe_targets

    def spy(path, container, stream, index, targets, threads, reopened):
        decoded.extend(targets)
        return real(path, container, stream, index, targets, threads, reopened)

    monkeypatch.setattr(video, "_keyframe_targets", spy)
    _medium, frames = read_video(clips[".mp4"], strategy="even_keyframes", n=4)
    assert [f.index for f in frames] == [0, 12, 24, 36]
    assert decoded == [12, 24, 36]


def test_read_video_bad_input_is_one_line(tmp_path):
    audio = write_audio_only(tmp_path / "voice.m4a")
    assert_one_line_media_error(lambda: read_video(audio), "audio-only")
    whole = write_video(tmp_path / "whole.mp4", options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])
    assert_one_line_media_error(lambda: read_video(cut), "truncated")
    with pytest.raises(ValueError):
        read_video(whole, channels="cmyk")


def _yuv_frame(fmt: str, y: int, chroma: int, width: int = 64, height: int = 64) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, fmt)
    dtype = np.uint16 if fmt.endswith("le") else np.uint8
    for i, value in enumerate((y, chroma, chroma)):
        plane = frame.planes[i]
        plane.update(np.full(plane.buffer_size // np.dtype(dtype).itemsize, value, dtype).tobytes())
    return frame


@pytest.mark.parametrize(
    "fmt, y, chroma, expected",
    [
        ("yuv420p", 16, 128, 0.0),
        ("yuv420p", 235, 128, 255.0),
        ("yuv420p", 128, 128, 112 * 255 / 219),
        ("yuv420p", 5, 128, 0.0),
        ("yuv420p", 250, 128, 255.0),  # beyond the limited range: clipped
        ("yuvj420p", 0, 128, 0.0),
        ("yuvj420p", 255, 128, 255.0),
        ("yuvj420p", 100, 128, 100.0),
        ("yuv420p10le", 64, 512, 0.0),
        ("yuv420p10le", 940, 512, 255.0),
        ("yuv420p10le", 502, 512, 438 * 255 / 876),
    ],
)
def test_luma_maps_the_y_plane_to_grey_levels(fmt, y, chroma, expected):
    luma = _to_luma(_yuv_frame(fmt, y, chroma))
    assert luma.shape == (64, 64) and luma.dtype == np.float32
    np.testing.assert_allclose(luma, expected, atol=1e-3)


def test_gray_channels_follow_the_rgb_grey(clips):
    frames = list(read_frames(clips[".mp4"], strategy="even", n=3, channels="rgb+gray"))
    grays = list(read_frames(clips[".mp4"], strategy="even", n=3, channels="gray"))
    for both, gray in zip(frames, grays):
        assert both.pixels.shape[2] == 3 and gray.pixels.ndim == 2
        np.testing.assert_array_equal(both.luma, gray.pixels)
        difference = np.abs(both.luma - to_gray(both.pixels))
        # bit-exact swscale maps Y' 16..235 to about -1.7..253: a small offset, no other change
        assert float(difference.mean()) < 2.5 and float(np.median(difference)) < 2.5
        assert np.corrcoef(both.luma.ravel(), to_gray(both.pixels).ravel())[0, 1] > 0.999


def _spatial_reference(gray: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """The filter as first written: scipy's uniform filter (mode "reflect") and temporaries."""
    detail = gray - ndimage.uniform_filter(gray, 3, mode="reflect")
    power = ndimage.uniform_filter(detail * detail, 3, mode="reflect")
    return detail * np.float32(sigma**2) / np.maximum(power, np.float32(sigma**2))


@pytest.mark.parametrize("shape", [(2, 2), (5, 3), (64, 97)])
def test_spatial_wiener_in_place_matches_the_plain_filter(shape):
    rng = np.random.default_rng(shape[0])
    gray = (rng.random(shape, dtype=np.float32) * 255).astype(np.float32)
    np.testing.assert_allclose(spatial_wiener_noise(gray), _spatial_reference(gray), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(box_mean(gray), ndimage.uniform_filter(gray, 3, mode="reflect"), rtol=1e-5, atol=1e-4)
    assert spatial_wiener_noise(gray).dtype == np.float32


def test_query_signal_reads_once_and_gives_the_two_read_residual(clips, count_opens):
    options = SignalOptions(frame_strategy="even_keyframes", n_frames=5)
    facts, signal = query_signal(clips[".mp4"], options)
    assert facts.error is None and len(count_opens) == 1
    assert facts.medium.sha256 == probe(clips[".mp4"]).sha256
    assert set(facts.timings) >= {"probe", "decode", "residual"}
    two_reads = video_query_residual(clips[".mp4"], options, FileFacts(str(clips[".mp4"]), 0, 0))
    np.testing.assert_array_equal(signal.residual, two_reads)
    assert [f["index"] for f in facts.frames] == [0, 12, 24, 36]
