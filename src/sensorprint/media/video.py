"""Video frames and metadata through PyAV (FFmpeg), with frame-selection strategies.

Frames are returned as stored: float32 H×W×3 in grey levels 0..255 (high bit depth video
scaled by 255/65535), or the luma alone (H×W, see `Frame`); the rotation recorded by the
container (display matrix, or the legacy ``rotate`` tag) is reported in the `Medium`,
never applied.

Every strategy first demuxes the video stream without decoding it (cheap) to index its
frames: presentation timestamps, keyframes, the exact frame count, the frame intervals
(variable frame rate) and truncation (fewer samples present than the container lists).
`read_video` gives the Medium and the frames from one open of the file (opening costs
about as much as decoding a 1080p frame: FFmpeg decodes the start of the stream to
learn its parameters).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from pathlib import Path

import numpy as np

from sensorprint.errors import MediaError

from .exif import json_safe
from .formats import extension_mismatch, read_head, sniff
from .hashing import sha256_file
from .medium import MIN_SIDE, FileState, Medium, check_regular_file, check_unchanged, live_photo_partner, one_line


class FrameStrategy(StrEnum):
    """Which frames of a video are read (see `read_frames`)."""

    EVEN_KEYFRAMES = "even_keyframes"  # N keyframes spread over the video (fastest)
    KEYFRAMES = "keyframes"  # every keyframe
    RANDOM = "random"  # N frames at seeded random positions
    EVEN = "even"  # N evenly spaced frames
    ALL = "all"  # every frame


STRATEGIES = tuple(FrameStrategy)
CHANNELS = ("rgb", "gray", "rgb+gray")

# Planar YUV formats whose first plane is the luma Y' (8 bits, or 9..16 bits in 16-bit words).
_PLANAR_YUV = re.compile(r"^(yuv|yuvj|yuva)(4[0-4][0-4]|41[01])p(?:(9|10|12|14|16)(le|be))?$")
# ITU-R BT.601 luma weights of prnu.to_gray (the Binghamton rgb2gray1), for frames stored as RGB.
_GRAY_WEIGHTS = np.array([0.29893602, 0.58704307, 0.11402090], dtype=np.float32)

# Clockwise display rotation (degrees) -> the EXIF orientation code with the same meaning.
ROTATION_TO_ORIENTATION = {0: 1, 90: 6, 180: 3, 270: 8}

# Container/stream tags that name the device, most specific first.
MAKE_TAGS = ("com.apple.quicktime.make", "com.android.manufacturer", "make", "manufacturer", "com.xiaomi.manufacturer")
MODEL_TAGS = ("com.apple.quicktime.model", "com.android.model", "model", "com.xiaomi.model")
DATE_TAGS = ("com.apple.quicktime.creationdate", "creation_time", "date", "com.android.capture.time")

# FFmpeg demuxers that guess from a file name or accept almost anything: content of an
# unknown kind opened by one of these is not taken for a video.
_LOOSE_DEMUXERS = {"tty", "image2", "image2pipe", "data", "bin", "txt", "subviewer", "srt", "webvtt", "ass", "mpjpeg"}


# Demuxers whose packet timestamps follow decoding order (AVI stores no presentation time;
# FFmpeg makes pts = dts + 1), so with B-frames they do not give the frame's position.
_DECODE_ORDER_TIMESTAMPS = {"avi"}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in presentation order, time from the first frame (s), keyframe flag, pixels.

    pixels: float32 H×W×3 RGB grey levels 0..255 (channels "rgb", "rgb+gray"), or the
    luma (channels "gray"). luma: float32 H×W grey levels 0..255 (channels "gray",
    "rgb+gray", else None): the decoder's Y' plane mapped to 0..255 from its range (limited:
    (Y' − 16)·255/219 at 8 bits; full: Y'·255/(2^bits − 1)) and clipped to 0..255, without
    the YUV->RGB conversion, its rounding to integers and its chroma; frames stored as RGB
    give the BT.601 grey of their pixels. It is not the BT.601 grey of `pixels`: the
    bit-exact conversion maps Y' 16..235 to about -1.7..253 and leaks a little chroma, so
    the PRNU workflow, whose fingerprints are made from that grey, keeps using it.
    """

    index: int
    time_s: float
    keyframe: bool
    pixels: np.ndarray
    luma: np.ndarray | None = None


@dataclass(frozen=True)
class _FrameIndex:
    """The video stream's samples in presentation order (from demuxing, no decoding)."""

    pts: list[int]  # sorted presentation timestamps (stream time base)
    keyframe: list[bool]  # per entry of `pts`
    dts: list[int]  # decoding timestamp per entry of `pts` (for seeking)
    time_base: Fraction
    exact_pts: bool = True  # False when the container gave no presentation timestamps (AVI...)

    def __len__(self) -> int:
        return len(self.pts)

    def position(self, pts: int | None) -> int | None:
        if pts is None:
            return None
        at = bisect.bisect_left(self.pts, pts)
        return at if at < len(self.pts) and self.pts[at] == pts else None

    def time_s(self, at: int) -> float:
        return float((self.pts[at] - self.pts[0]) * self.time_base)

    def keyframe_before(self, at: int) -> int:
        """Position of the last keyframe at or before position `at` (0 if none is flagged)."""
        for back in range(at, -1, -1):
            if self.keyframe[back]:
                return back
        return 0


def _av():
    import av

    return av


def _open(path: Path, *, quick: bool = False):
    """The file opened read-only by FFmpeg. quick: tell FFmpeg's stream probing to skip
    decoding (see `_open_for_keyframes`)."""
    av = _av()
    check_regular_file(path)
    try:
        return av.open(str(path), mode="r", options={"skip_frame": "nonkey"} if quick else None)
    except FileNotFoundError as error:
        raise MediaError(f"{path}: file not found") from error
    except PermissionError as error:
        raise MediaError(f"{path}: cannot read the file (permission denied)") from error
    except Exception as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise MediaError(f"{path}: truncated or corrupt video, or not a video (FFmpeg: {reason})") from error


# Containers and codecs whose parameters do not need FFmpeg's probe decoding: MP4/MOV keep
# the frame size, profile and colour tags of H.264/HEVC in the sample description.
_QUICK_FORMATS = ("mov,mp4,m4a,3gp,3g2,mj2",)
_QUICK_CODECS = ("h264", "hevc")


def _open_for_keyframes(path: Path, stack: contextlib.ExitStack):
    """Open a video whose keyframes will each be decoded alone ("even_keyframes").

    Opening runs FFmpeg's stream probing, which decodes the first frames (about as long
    as decoding one 1080p frame) only to guess the decoder's reordering delay and pixel
    format. Keyframes decoded alone and drained do not depend on that delay, and the
    pixel format comes from the decoded frame, so MP4/MOV files of H.264/HEVC are opened
    with the probing told to skip decoding; anything else is opened as usual.
    """
    container = stack.enter_context(_open(path, quick=True))
    try:
        stream = next(s for s in container.streams.video if not _is_attached_picture(s))
        codec = stream.codec_context
        fits = (
            container.format.name in _QUICK_FORMATS
            and codec is not None
            and codec.name in _QUICK_CODECS
            and (codec.width or 0) > 0
            and (codec.height or 0) > 0
        )
    except Exception:  # no video stream, unknown codec...: the usual open says what is wrong
        fits = False
    if fits:
        return container
    container.close()
    return stack.enter_context(_open(path))


def _video_stream(container, path: Path):
    """The first real video stream (cover art attached to audio files does not count)."""
    streams = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not streams:
        if container.streams.audio:
            raise MediaError(f"{path}: audio-only file (no video stream); nothing to identify a camera from")
        raise MediaError(f"{path}: no video stream in this {container.format.name} file")
    stream = streams[0]
    try:
        codec = stream.codec_context
    except Exception as error:
        codec = None
        cause = error
    else:
        cause = None
    if codec is None or not getattr(codec, "name", None) or codec.name == "none":
        raise MediaError(
            f"{path}: the video codec cannot be decoded by this FFmpeg build (unknown codec); convert losslessly or use another tool"
        ) from cause
    return stream


def _is_attached_picture(stream) -> bool:
    try:
        return bool(int(stream.disposition) & int(_av().stream.Disposition.attached_pic))
    except Exception:
        return False


def _index_frames(
    container, stream, path: Path, *, decode_first: bool = False
) -> tuple[_FrameIndex, object, Exception | None]:
    """Demux (not decode) every packet of `stream`; raises MediaError for truncation or zero frames.

    decode_first: also send packets to the decoder until its first frame comes out (the
    frame a fresh decode from the start gives first). Returns the index, that frame (or
    None) and the error that stopped its decoding (or None).
    """
    entries = []
    exact_pts = True
    first, decode_error = None, None
    try:
        for packet in container.demux(stream):
            if decode_first and first is None and decode_error is None:
                try:
                    decoded = packet.decode()  # the flush packet at the end drains the decoder
                except Exception as error:  # reported after the index: truncation is named first
                    decode_error = error
                else:
                    first = decoded[0] if decoded else None
            if packet.size == 0:  # the flush packet PyAV yields at the end
                continue
            exact_pts = exact_pts and packet.pts is not None
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                continue
            dts = packet.dts if packet.dts is not None else pts
            entries.append((pts, bool(packet.is_keyframe), dts))
    except Exception as error:
        raise MediaError(
            f"{path}: truncated or corrupt video (demuxing failed after {len(entries)} frames: {error})"
        ) from error
    if not entries:
        raise MediaError(f"{path}: the video stream holds no frames (zero-frame video)")
    declared = int(stream.frames or 0)
    if declared > len(entries):
        raise MediaError(
            f"{path}: truncated video: the container lists {declared} frames but only {len(entries)} are present"
        )
    entries.sort()
    if not any(key for _, key, _ in entries):
        entries[0] = (entries[0][0], True, entries[0][2])  # nothing flagged: decoding must start at the first sample
    index = _FrameIndex(
        pts=[e[0] for e in entries],
        keyframe=[e[1] for e in entries],
        dts=[e[2] for e in entries],
        time_base=Fraction(stream.time_base) if stream.time_base else Fraction(1, 1),
        exact_pts=exact_pts and container.format.name not in _DECODE_ORDER_TIMESTAMPS,
    )
    return index, first, decode_error


def _frame_rate_facts(index: _FrameIndex) -> dict:
    """Frame intervals from the timestamps; variable frame rate when they differ beyond timestamp rounding."""
    if len(index) < 2:
        return {"variable_frame_rate": False}
    ticks = np.diff(np.asarray(index.pts, dtype=np.int64))
    ticks = ticks[ticks > 0]
    if ticks.size == 0:
        return {"variable_frame_rate": None}
    median = float(np.median(ticks))
    tolerance = max(1.0, 0.02 * median)  # 29.97 fps in a 1/1000 time base alternates 33/34 ticks: still constant
    tick_s = float(index.time_base)
    variable = bool(np.any(np.abs(ticks - median) > tolerance))
    return {
        "variable_frame_rate": variable,
        "frame_interval_s": {
            "min": float(ticks.min()) * tick_s,
            "median": median * tick_s,
            "max": float(ticks.max()) * tick_s,
        },
        "fps_measured": (1.0 / (median * tick_s)) if median > 0 else None,
    }


# ITU-T H.273 codes (FFmpeg's AVColorTransferCharacteristic / AVColorPrimaries) by name.
TRANSFER_NAMES = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    13: "srgb",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
PRIMARIES_NAMES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 11: "smpte431", 12: "smpte432"}
# HDR transfer functions: PQ (SMPTE ST 2084, HDR10 / Dolby Vision) and HLG (ARIB STD-B67, iPhone HDR video).
HDR_TRANSFERS = {16: "PQ", 18: "HLG"}
# The Apple identifier that ties a Live Photo's clip to its still.
CONTENT_ID_TAGS = ("com.apple.quicktime.content.identifier",)
# The frame rate a slow-motion clip was captured at (Android), and Apple's "play at full frame rate" intent.
CAPTURE_FPS_TAGS = ("com.android.capture.fps",)
PLAYBACK_INTENT_TAGS = ("com.apple.quicktime.full-frame-rate-playback-intent",)
HIGH_FRAME_RATE = 100.0  # fps from which a clip is high frame rate (phones: 120, 240)


def _code(value) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _colour_facts(codec, first_frame) -> dict:
    """The transfer function and colour primaries the stream is tagged with, and HDR (HLG / PQ) when tagged.

    The pixels are read as stored whatever these say: code values at the stream's bit depth,
    scaled to 0..255 (`_to_pixels`), so an HDR frame's noise residual is on the same scale as
    an 8-bit one's; the transfer is recorded so that a report can say the clip was HDR.
    """
    trc = _code(getattr(first_frame, "color_trc", None))
    if trc in (None, 2):  # 2: unspecified in the frame; the stream's codec parameters may say
        trc = _code(getattr(codec, "color_trc", None))
    primaries = _code(getattr(first_frame, "color_primaries", None))
    if primaries in (None, 2):
        primaries = _code(getattr(codec, "color_primaries", None))
    return {
        "color_transfer": TRANSFER_NAMES.get(trc) if trc not in (None, 2) else None,
        "color_primaries": PRIMARIES_NAMES.get(primaries, str(primaries)) if primaries not in (None, 2) else None,
        "hdr": HDR_TRANSFERS.get(trc),
    }


def _slow_motion_facts(tags: dict, fps: float | None) -> dict:
    """High frame rate and slow motion: a clip captured at ≥ HIGH_FRAME_RATE fps, or tagged as slowed for playback.

    Android writes the capture rate (com.android.capture.fps) beside a lower playback rate;
    iPhones store the captured rate (120/240 fps) and mark slow motion by
    full-frame-rate-playback-intent = 0. Frames are read as stored either way: each is one
    exposure of the sensor, whatever the playback speed.
    """
    capture = _pick(tags, CAPTURE_FPS_TAGS)
    try:
        capture_fps = float(capture) if capture else None
    except ValueError:
        capture_fps = None
    intent = _pick(tags, PLAYBACK_INTENT_TAGS)
    rate = capture_fps or fps
    slowed = bool(capture_fps and fps and capture_fps > 1.5 * fps) or (
        intent == "0" and bool(rate and rate >= HIGH_FRAME_RATE)
    )
    return {
        "capture_fps": capture_fps,
        "high_frame_rate": bool(rate and rate >= HIGH_FRAME_RATE),
        "slow_motion": slowed,
    }


def _pick(tags: dict, names: tuple[str, ...]) -> str | None:
    lowered = {str(k).lower(): v for k, v in tags.items()}
    for name in names:
        value = lowered.get(name)
        if value:
            return str(value).strip()
    return None


def _rotation_degrees(stream, first_frame) -> int:
    """Clockwise rotation that displays the frame upright (0, 90, 180, 270), from the display matrix or the 'rotate' tag."""
    rotation = None
    if first_frame is not None:
        try:
            ccw = first_frame.rotation  # counter-clockwise, in [-180, 180]
            rotation = int(round(-float(ccw))) % 360
        except Exception:
            rotation = None
    if not rotation:
        tag = stream.metadata.get("rotate")
        if tag not in (None, ""):
            try:
                rotation = int(round(float(tag))) % 360
            except ValueError:
                pass
    return int(rotation or 0)


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    for bits in (16, 14, 12, 10, 9):
        if f"p{bits}" in pix_fmt or f"{bits}le" in pix_fmt or f"{bits}be" in pix_fmt:
            return bits
    return 8


def _describe(path: Path, container, stream, index: _FrameIndex, first_frame) -> tuple[dict, int, int, int]:
    codec = stream.codec_context
    width, height = int(first_frame.width), int(first_frame.height)
    rotation = _rotation_degrees(stream, first_frame)
    container_tags = json_safe(dict(container.metadata))
    stream_tags = json_safe(dict(stream.metadata))
    tags = {**stream_tags, **container_tags}
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    duration_s = None
    if stream.duration and stream.time_base:
        duration_s = float(stream.duration * stream.time_base)
    elif container.duration:
        duration_s = container.duration / 1_000_000
    metadata = {
        "format": container.format.name,
        "format_long": container.format.long_name,
        "codec": codec.name,
        "codec_long": getattr(codec.codec, "long_name", None),
        "profile": getattr(codec, "profile", None),
        "pix_fmt": getattr(codec, "pix_fmt", None) or first_frame.format.name,
        "bit_depth": _bit_depth(getattr(codec, "pix_fmt", None) or first_frame.format.name),
        "mode": "RGB",
        "coded_size": [int(codec.width or width), int(codec.height or height)],
        "fps": float(rate) if rate else None,
        "duration_s": duration_s,
        "n_frames": len(index),
        "n_keyframes": int(sum(index.keyframe)),
        "rotation_deg": rotation,
        "creation_time": _pick(tags, DATE_TAGS),
        "datetime": _pick(tags, DATE_TAGS),
        "make": _pick(tags, MAKE_TAGS),
        "model": _pick(tags, MODEL_TAGS),
        "bit_rate": int(container.bit_rate) if container.bit_rate else None,
        "has_audio": bool(container.streams.audio),
        "n_video_streams": len(container.streams.video),
        "sample_aspect_ratio": str(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else None,
        "color_space": str(first_frame.colorspace) if getattr(first_frame, "colorspace", None) is not None else None,
        "color_range": str(first_frame.color_range) if getattr(first_frame, "color_range", None) is not None else None,
        "container_tags": container_tags,
        "stream_tags": stream_tags,
    }
    metadata.update(_frame_rate_facts(index))
    metadata.update(_colour_facts(codec, first_frame))
    metadata.update(_slow_motion_facts(tags, metadata.get("fps")))
    identifier = _pick(tags, CONTENT_ID_TAGS)
    if identifier:
        metadata["content_identifier"] = identifier
    still = live_photo_partner(path, "video")
    if still is not None:  # the clip of a Live Photo: its still is analysed as an image of its own
        metadata["live_photo_still"] = still
    if extension_mismatch(sniff(read_head(path), path).container, path):
        metadata["extension_mismatch"] = f"content is {container.format.name}, extension is {path.suffix or '(none)'}"
    return metadata, width, height, ROTATION_TO_ORIENTATION.get(rotation, 1)


def _check_frame_size(path: Path, width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise MediaError(
            f"{path}: video frames too small ({width}x{height} px; at least {MIN_SIDE} px on each side are needed)"
        )


def probe_video(path: Path, *, loose: bool = False) -> Medium:
    """Describe a video (hash, size, rotation, codec, fps, duration, exact frame count, tags).

    One open of the file: its video stream is demuxed in full (no decoding) and its
    first frame decoded in the same pass. `loose=True` is for content of unknown kind:
    FFmpeg demuxers that accept almost anything are refused then. Raises MediaError.
    """
    # one decoder thread: a single frame is decoded, frame threads would only add start-up cost
    reading = _read(Path(path), "even", 1, 0, 0, 1, "rgb", describe=True, loose=loose)
    try:
        return next(reading)
    finally:
        reading.close()


def read_video(
    path: Path,
    *,
    strategy: str = "even_keyframes",
    n: int = 5,
    seed: int = 0,
    max_frames: int | None = None,
    threads: int = 0,
    channels: str = "rgb",
    loose: bool = False,
) -> tuple[Medium, Iterator[Frame]]:
    """A video's `Medium` and its frames, from one open of the file.

    The same Medium as `probe_video` and the same frames as `read_frames` (same arguments),
    for a little more than the cost of `read_frames` alone: the file is opened once, its
    stream demuxed once (the index that gives exact frame positions, the frame count and
    truncation), and the first frame, decoded in that pass to describe the video, is not
    decoded again when it is also the first frame chosen. The Medium is returned at once
    (errors in opening, indexing or describing are raised here); the frames come as they
    are decoded, and the file stays open until the iterator is exhausted or closed.
    Raises MediaError (one line) as `probe_video` and `read_frames` do.
    """
    _check_arguments(strategy, n, max_frames, channels)
    reading = _read(Path(path), strategy, n, seed, max_frames, threads, channels, describe=True, loose=loose)
    try:
        medium = next(reading)
    except BaseException:
        reading.close()
        raise
    return medium, reading


def _to_pixels(frame) -> np.ndarray:
    """float32 H×W×3 grey levels 0..255 (high bit depth kept: rgb48 scaled by 255/65535).

    YUV->RGB uses the frame's own colour matrix and, when the stream says so, its full
    range; swscale runs bit-exact so that the same file gives the same pixels on every machine.
    """
    av = _av()
    interpolation = av.video.reformatter.Interpolation
    exact = interpolation.BILINEAR | interpolation.ACCURATE_RND | interpolation.BITEXACT
    full_range = getattr(frame, "color_range", None) == av.video.reformatter.ColorRange.JPEG
    high = _bit_depth(frame.format.name) > 8
    converted = frame.reformat(
        format="rgb48le" if high else "rgb24",
        interpolation=exact,
        src_color_range="JPEG" if full_range else None,
        dst_color_range="JPEG",
    )
    if high:
        return converted.to_ndarray().astype(np.float32) * np.float32(255.0 / 65535.0)
    return converted.to_ndarray().astype(np.float32)


def _to_luma(frame) -> np.ndarray:
    """float32 H×W luma in grey levels 0..255 from the decoder's Y' plane (see `Frame`); RGB frames: BT.601 grey."""
    name = frame.format.name
    layout = _PLANAR_YUV.match(name)
    if layout is None:
        return np.ascontiguousarray(_to_pixels(frame) @ _GRAY_WEIGHTS)
    bits = int(layout.group(3) or 8)
    plane = frame.planes[0]
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype("<u2" if layout.group(4) == "le" else ">u2")
    stored = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    stored = stored[: frame.height, : frame.width]
    av = _av()
    full_range = (
        layout.group(1) == "yuvj" or getattr(frame, "color_range", None) == av.video.reformatter.ColorRange.JPEG
    )
    unit = float(1 << (bits - 8))
    if full_range:
        offset, scale = 0.0, 255.0 / ((1 << bits) - 1)
    else:
        offset, scale = 16.0 * unit, 255.0 / (219.0 * unit)
    if bits == 8:  # a table of the 256 levels: one gather instead of three passes
        table = np.clip((np.arange(256, dtype=np.float32) - np.float32(offset)) * np.float32(scale), 0, 255)
        return table[stored]
    luma = stored.astype(np.float32)
    luma -= np.float32(offset)
    luma *= np.float32(scale)
    return np.clip(luma, 0.0, 255.0, out=luma)


def _targets(strategy: str, index: _FrameIndex, n: int, seed: int) -> list[int]:
    """Frame positions (presentation order) chosen by 'random', 'even' or 'even_keyframes'."""
    if strategy == "even_keyframes":
        keyframes = [position for position, key in enumerate(index.keyframe) if key]
        picks = np.linspace(0, len(keyframes) - 1, min(n, len(keyframes)))
        return sorted({keyframes[int(round(i))] for i in picks})
    total = len(index)
    count = min(n, total)
    if strategy == "random":
        return sorted(int(i) for i in np.random.default_rng(seed).choice(total, size=count, replace=False))
    return sorted({int(round(i)) for i in np.linspace(0, total - 1, count)})


def _frame_from(frame, index: _FrameIndex, fallback_position: int, channels: str = "rgb") -> Frame:
    position = index.position(frame.pts) if index.exact_pts else None
    if position is None:
        position = fallback_position
    luma = _to_luma(frame) if channels in ("gray", "rgb+gray") else None
    pixels = luma if channels == "gray" else _to_pixels(frame)
    return Frame(
        index=position,
        time_s=index.time_s(position),
        keyframe=bool(index.keyframe[position] or frame.key_frame),
        pixels=pixels,
        luma=luma,
    )


def _decode_keyframes(container, stream, index: _FrameIndex) -> Iterator[tuple]:
    """Only keyframe packets are sent to the decoder (and it is told to skip any other)."""
    stream.codec_context.skip_frame = "NONKEY"
    keyframe_positions = [p for p, key in enumerate(index.keyframe) if key]
    emitted = 0
    for packet in container.demux(stream):
        if packet.size and not packet.is_keyframe:
            continue
        for frame in packet.decode():
            fallback = keyframe_positions[min(emitted, len(keyframe_positions) - 1)]
            emitted += 1
            yield frame, fallback


def _decode_all(
    container, stream, index: _FrameIndex, wanted: set[int] | None = None, keyframes: bool = False
) -> Iterator[tuple]:
    """Every frame in presentation order, or only the positions in `wanted` / only keyframes.

    Without presentation timestamps (AVI with B-frames) the decoder's output order is the
    only exact position, so the other strategies use this sequential pass on such files.
    """
    for count, frame in enumerate(container.decode(stream)):
        position = min(count, len(index) - 1)
        if wanted is not None and position not in wanted:
            continue
        if keyframes and not frame.key_frame:
            continue
        yield frame, position


class _TargetDecoder:
    """Decodes chosen frames: seeks to a keyframe before each and decodes forward, verifying every landing.

    Seeking is exact in MP4/MOV and Matroska but only approximate in MPEG-TS and some
    other containers, where it can land after the keyframe asked for. A frame is therefore
    returned only when (a) a keyframe was decoded since the last seek, so no frame is ever
    predicted from missing references, and (b) it is exactly the frame wanted. A miss is
    retried from earlier keyframes, and at last by decoding from the start of a freshly
    opened file, which is always exact.
    """

    def __init__(self, path: Path, container, stream, index: _FrameIndex, threads: int, keyframes_only: bool):
        self.path, self.container, self.stream, self.index = path, container, stream, index
        self.threads, self.keyframes_only = threads, keyframes_only
        self.decoder = None
        self.last_position = -1
        self.clean = False
        self.reopened = []  # containers opened for a restart from the beginning (closed by close())

    def _seek(self, position: int) -> None:
        self.container.seek(self.index.pts[position], stream=self.stream, backward=True)
        self.decoder, self.last_position, self.clean = self.container.decode(self.stream), -1, False

    def _restart(self) -> None:
        container = _open(self.path)
        self.reopened.append(container)
        self.container, self.stream = container, _video_stream(container, self.path)
        _configure_decoder(self.stream, self.threads, self.keyframes_only)
        self.decoder, self.last_position, self.clean = self.container.decode(self.stream), -1, False

    def _decode_until(self, target: int):
        """Decode forward to `target`; the frame when it is found clean, else None."""
        for frame in self.decoder:
            position = self.index.position(frame.pts)
            if position is None:
                continue
            self.clean = self.clean or self.index.keyframe[position] or bool(frame.key_frame)
            self.last_position = position
            if position == target:
                return frame if self.clean else None
            if position > target:
                return None
        self.decoder = None  # the stream ended
        return None

    def frame(self, target: int):
        """The decoded frame at presentation position `target`, or None if the decoder never outputs it."""
        start = self.index.keyframe_before(target)
        if self.decoder is not None and self.clean and start <= self.last_position < target:
            found = self._decode_until(target)  # the target lies ahead in the run being decoded: no seek
            if found is not None:
                return found
        for _attempt in range(3):
            self._seek(start)
            found = self._decode_until(target)
            if found is not None:
                return found
            if start == 0:
                break
            start = self.index.keyframe_before(start - 1)
        self._restart()
        return self._decode_until(target)

    def close(self) -> None:
        for container in self.reopened:
            container.close()


def _configure_decoder(stream, threads: int, keyframes_only: bool) -> None:
    stream.codec_context.thread_count = int(threads)
    stream.thread_type = "AUTO"
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"


def _decode_keyframe_targets(
    path: Path, container, stream, index: _FrameIndex, targets: list[int], threads: int
) -> Iterator[tuple]:
    """Each target keyframe decoded alone: seek, demux (not decode) up to its packet, decode it, drain.

    Draining right away gets the picture out without feeding the decoder the frames that
    follow (a decoder with B-frame reordering would otherwise hold it back). If the seek
    landed after the keyframe (approximate seeking), the seek is repeated from earlier keyframes.
    """
    reopened = []
    try:
        yield from _keyframe_targets(path, container, stream, index, targets, threads, reopened)
    finally:
        for extra in reopened:
            extra.close()


def _keyframe_targets(path, container, stream, index, targets, threads, reopened) -> Iterator[tuple]:
    for target in targets:
        start = target
        for attempt in range(5):
            if attempt < 4:
                container.seek(index.pts[start], stream=stream, backward=True)
            else:  # last resort, always exact: demux from the start of a freshly opened file
                container = _open(path)
                reopened.append(container)
                stream = _video_stream(container, path)
                _configure_decoder(stream, threads, keyframes_only=True)
            packet_found = None
            for packet in container.demux(stream):
                if not packet.size:
                    break
                position = index.position(packet.pts if packet.pts is not None else packet.dts)
                if position == target:
                    packet_found = packet
                    break
                if position is not None and position > target and packet.is_keyframe:
                    break  # landed after the target: seek from an earlier keyframe
            if packet_found is not None:
                break
            start = index.keyframe_before(start - 1) if start > 0 else 0
        if packet_found is None:
            continue
        codec = stream.codec_context
        decoded = list(packet_found.decode()) + list(codec.decode(None))
        codec.flush_buffers()
        for frame in decoded:
            if index.position(frame.pts) == target or len(decoded) == 1:
                yield frame, target
                break


def _decode_targets(decoder: _TargetDecoder, targets: list[int]) -> Iterator[tuple]:
    try:
        for target in targets:
            frame = decoder.frame(target)
            if frame is not None:
                yield frame, target
    finally:
        decoder.close()


def read_frames(
    path: Path,
    *,
    strategy: str = "keyframes",
    n: int = 5,
    seed: int = 0,
    max_frames: int | None = None,
    threads: int = 0,
    channels: str = "rgb",
) -> Iterator[Frame]:
    """Decoded frames of a video, chosen by `strategy`, in presentation order.

    - "keyframes": only keyframes are decoded (the frames between are never sent to the decoder);
    - "random": `n` frames drawn without replacement with `seed` (reproducible); each is
      reached by seeking to the keyframe before it and decoding forward;
    - "even": `n` frames evenly spaced from the first to the last;
    - "all": every frame;
    - "even_keyframes": `n` keyframes evenly spread over the video, each decoded alone
      (the cheapest way to sample a whole video: no frame between keyframes is decoded).
    `max_frames` caps the number of frames of any strategy. `threads` is the decoder's
    thread count (0: FFmpeg chooses; 1 in worker processes avoids oversubscription).
    `channels`: "rgb" (pixels H×W×3), "gray" (pixels H×W luma, see `Frame`) or "rgb+gray"
    (pixels H×W×3 and `Frame.luma`). Pixels are as stored (rotation recorded by `probe`,
    not applied). Raises MediaError (one line) for truncated or corrupt video, audio-only
    files, zero-frame video and codecs FFmpeg cannot decode.
    """
    _check_arguments(strategy, n, max_frames, channels)
    return _read(Path(path), strategy, n, seed, max_frames, threads, channels, describe=False, loose=False)


def _check_arguments(strategy: str, n: int, max_frames: int | None, channels: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown frame strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if n < 1 and strategy in ("random", "even", "even_keyframes"):
        raise ValueError(f"n must be at least 1, got {n}")
    if max_frames is not None and max_frames < 0:
        raise ValueError(f"max_frames must be non-negative, got {max_frames}")
    if channels not in CHANNELS:
        raise ValueError(f"unknown channels {channels!r}; choose one of {', '.join(CHANNELS)}")


def _read(
    path: Path,
    strategy: str,
    n: int,
    seed: int,
    max_frames: int | None,
    threads: int,
    channels: str,
    *,
    describe: bool,
    loose: bool,
) -> Iterator:
    """The reader behind probe_video, read_video and read_frames: yields the Medium first when
    `describe`, then the chosen frames. One open of the file (a second one only for the
    strategies that decode from the start: "keyframes", "all", and files without
    presentation timestamps)."""
    if max_frames == 0 and not describe:
        return
    try:
        before = check_regular_file(path)  # the state the hash and the frames must both describe
        with contextlib.ExitStack() as stack:
            # only for the scan's strategy: the other ones decode runs of frames, where the
            # reordering delay that the probing guesses matters
            quick = describe and strategy == "even_keyframes" and max_frames != 0
            container = _open_for_keyframes(path, stack) if quick else stack.enter_context(_open(path))
            if loose and (container.format.name in _LOOSE_DEMUXERS or container.format.name.endswith("_pipe")):
                raise MediaError(f"{path}: not an image or a video (unrecognised content); check the file type")
            stream = _video_stream(container, path)
            _configure_decoder(
                stream, threads, keyframes_only=False
            )  # the thread count is fixed when the decoder opens
            # the first frame is decoded in the indexing pass when it describes the video or is likely chosen
            decode_first = describe or (strategy in ("even", "even_keyframes") and max_frames != 0)
            index, first, decode_error = _index_frames(container, stream, path, decode_first=decode_first)
            if describe:
                yield _medium(path, before, container, stream, index, first, decode_error)
                if max_frames == 0:
                    return
            keyframes_only = strategy in ("keyframes", "even_keyframes") and index.exact_pts
            if not index.exact_pts or strategy in ("keyframes", "all"):
                # decoding from the start of a freshly opened file: no seek back to the start,
                # which some containers (MPEG-TS, raw streams) cannot do exactly
                container = stack.enter_context(_open(path))
                stream = _video_stream(container, path)
                _configure_decoder(stream, threads, keyframes_only)
                raw_frames = _sequential(container, stream, index, strategy, n, seed)
            else:
                raw_frames = _seeking(path, container, stream, index, first, (strategy, n, seed), threads)
            count = 0
            for raw, position in raw_frames:
                frame = _frame_from(raw, index, position, channels)
                if count == 0:
                    _check_frame_size(path, raw.width, raw.height)
                yield frame
                count += 1
                if max_frames is not None and count >= max_frames:
                    break
            check_unchanged(path, before)  # decoded by path after hashing: a rewrite between is caught here
            if count == 0:
                raise MediaError(
                    f"{path}: the video cannot be decoded: no frame came out of the {stream.codec_context.name} decoder"
                )
    except MediaError as error:
        raise one_line(error) from error.__cause__
    except GeneratorExit:
        raise
    except Exception as error:  # the boundary: never a traceback for bad input
        what = "cannot read as a video" if describe else "truncated or corrupt video"
        raise MediaError(f"{path}: {what} ({type(error).__name__}: {error})") from error


def _seeking(path: Path, container, stream, index: _FrameIndex, first, choice: tuple, threads: int) -> Iterator[tuple]:
    """(frame, position) of the frames `choice` = (strategy, n, seed) picks, each reached by seeking
    ("random", "even", "even_keyframes" on a file with presentation timestamps); `first`, the
    frame the indexing pass decoded from the start, is reused when it is the first one picked."""
    strategy, n, seed = choice
    keyframes_only = strategy == "even_keyframes"
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"
    targets = _targets(strategy, index, n, seed)
    reused = None
    if first is not None and index.position(first.pts) == targets[0]:
        reused, targets = (first, targets[0]), targets[1:]  # already decoded, from the start: exact
    if keyframes_only:
        rest = _decode_keyframe_targets(path, container, stream, index, targets, threads)
    else:
        rest = _decode_targets(_TargetDecoder(path, container, stream, index, threads, keyframes_only), targets)
    return itertools.chain([reused] if reused else [], rest)


def _medium(path: Path, before: FileState, container, stream, index: _FrameIndex, first, decode_error) -> Medium:
    """The Medium of a video whose stream was indexed and first frame decoded; hashed, and checked
    unchanged since `before` (FFmpeg reads by path, the hash reads again: both must see one state)."""
    if first is None:
        name = stream.codec_context.name
        if decode_error is not None:
            raise MediaError(f"{path}: the video cannot be decoded ({name}: {decode_error})") from decode_error
        raise MediaError(f"{path}: the video cannot be decoded: no frame came out of the {name} decoder")
    metadata, width, height, orientation = _describe(path, container, stream, index, first)
    _check_frame_size(path, width, height)
    sha256 = sha256_file(path)
    check_unchanged(path, before)
    return Medium(
        path=path,
        sha256=sha256,
        size_bytes=before.size,
        kind="video",
        width=width,
        height=height,
        orientation=orientation,
        metadata=metadata,
    )


def _sequential(container, stream, index: _FrameIndex, strategy: str, n: int, seed: int) -> Iterator[tuple]:
    """(frame, position) decoding from the start: keyframes only, every frame, or (without timestamps) the targets."""
    if not index.exact_pts:
        if strategy in ("keyframes", "all"):
            return _decode_all(container, stream, index, keyframes=strategy == "keyframes")
        return _decode_all(container, stream, index, wanted=set(_targets(strategy, index, n, seed)))
    if strategy == "keyframes":
        return _decode_keyframes(container, stream, index)
    return _decode_all(container, stream, index)


def frame_packets(path: Path) -> tuple[list[bool], list[int]]:
    """Per frame of a video in presentation order: whether it is a keyframe, and its packet size in bytes.

    From demuxing only (no decoding): the frame type and coded size the adaptive read of a
    query orders frames by (`prnu.adaptive.frame_order`). Positions are those of
    `read_frames` and `Frame.index`. Raises MediaError (one line) as `read_frames` does.
    """
    path = Path(path)
    try:
        with _open(path) as container:
            stream = _video_stream(container, path)
            entries = []
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                if pts is not None:
                    entries.append((pts, bool(packet.is_keyframe), int(packet.size)))
    except MediaError as error:
        raise one_line(error) from error.__cause__
    except Exception as error:  # the boundary: never a traceback for bad input
        raise MediaError(f"{path}: truncated or corrupt video ({type(error).__name__}: {error})") from error
    entries.sort()
    if entries and not any(key for _, key, _ in entries):
        entries[0] = (entries[0][0], True, entries[0][2])  # as `_index_frames`: decoding starts there
    return [key for _, key, _ in entries], [size for _, _, size in entries]


def read_frames_at(path: Path, positions: list[int], *, threads: int = 0) -> Iterator[Frame]:
    """The frames at the given presentation positions (RGB, as `read_frames`), in presentation order.

    Each is reached by seeking to the keyframe before it and decoding forward (a run of
    nearby positions is decoded in one pass), every landing verified as for the "random"
    strategy; files without presentation timestamps are decoded from the start. Positions
    outside the video are ignored. Raises MediaError (one line) for truncated or corrupt
    video, or a file changed while it was read.
    """
    path = Path(path)
    try:
        before = check_regular_file(path)
        with contextlib.ExitStack() as stack:
            container = stack.enter_context(_open(path))
            stream = _video_stream(container, path)
            _configure_decoder(stream, threads, keyframes_only=False)
            index, _, _ = _index_frames(container, stream, path)
            targets = sorted({int(p) for p in positions if 0 <= int(p) < len(index)})
            if not targets:
                return
            if index.exact_pts:
                raw_frames = _decode_targets(_TargetDecoder(path, container, stream, index, threads, False), targets)
            else:
                container = stack.enter_context(_open(path))
                stream = _video_stream(container, path)
                _configure_decoder(stream, threads, keyframes_only=False)
                raw_frames = _decode_all(container, stream, index, wanted=set(targets))
            for raw, position in raw_frames:
                yield _frame_from(raw, index, position, "rgb")
            check_unchanged(path, before)
    except MediaError as error:
        raise one_line(error) from error.__cause__
    except GeneratorExit:
        raise
    except Exception as error:  # the boundary: never a traceback for bad input
        raise MediaError(f"{path}: truncated or corrupt video ({type(error).__name__}: {error})") from error
