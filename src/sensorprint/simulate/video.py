"""H.264 videos from the simulated cameras (libx264 through PyAV).

A video frame is a scaled and cropped view of the sensor, as in phones (a 1080p frame
from a 4:3 sensor: the full width scaled, the top and bottom cropped to 16:9), so
image ↔ video matching needs the scale and crop search (Goljan & Fridrich 2008; Mandelli
et al. 2019). ``video_geometry`` gives that transform exactly, as ground truth.

Camera motion moves the *scene* (pans and a slow zoom) while the sensor stays fixed, so
the PRNU stays aligned from frame to frame. ``stabilise=True`` imitates electronic image
stabilisation: the output is a smaller window of the sensor (a margin is kept for the
correction) that shifts by a different number of pixels in every frame, so the PRNU is
misaligned frame to frame while the scene looks steady.

For speed the video path works in the luma domain: the sensor window's gain 1 + K is
resampled to the frame grid once per clip (``readout="skip"``, the default: one photosite
per frame pixel, as with line skipping, so K keeps its amplitude; ``"bin"``: photosites
averaged, K and the shot noise averaged down — at 8 Mbit/s 1080p its PRNU is then mostly
lost), each frame's linear luminance is multiplied by it, shot and read noise are added
(video exposes briefly and amplifies: ``analog_gain``), the tone curve gives Y'; the chroma planes come from
the scene without sensor noise (the encoder's 4:2:0 subsampling and quantisation remove
most chroma noise anyway). Shot noise is drawn as a triangular (sum of two uniforms)
variable with the Poisson variance: as cheap as random bytes and, after the tone curve,
quantisation and H.264, indistinguishable from Gaussian.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import isp
from .scenes import scene as make_scene

if TYPE_CHECKING:  # pragma: no cover
    from .camera import Camera

_EPOCH = _dt.datetime(2024, 3, 1, 9, 0, 0, tzinfo=_dt.UTC)


@dataclass(frozen=True)
class VideoGeometry:
    """Where a video frame lies on the sensor (ground truth for image ↔ video matching).

    ``window`` = (x, y, width, height) in sensor pixels of the nominal (unshifted) frame,
    ``scale`` = frame pixels per sensor pixel (frame = sensor window resized by ``scale``),
    ``margin`` = sensor pixels kept on each side for stabilisation shifts (0 without).
    A frame pixel (u, v) sees sensor position (x + (u + 0.5)/scale − 0.5, y + (v + 0.5)/scale − 0.5).
    """

    size: tuple[int, int]
    window: tuple[int, int, int, int]
    scale: float
    margin: int = 0


def video_geometry(
    camera: Camera, size: tuple[int, int] = (1920, 1080), *, stabilise: bool = False, stabilise_margin: float = 0.1
) -> VideoGeometry:
    """The sensor window and scale of ``camera``'s video frames of ``size`` = (width, height).

    The window is the largest centred part of the sensor with the frame's aspect ratio;
    with ``stabilise`` a border of ``stabilise_margin`` of each side is kept for the
    per-frame shifts, so the window is smaller and the scale larger.
    """
    w, h = (int(v) for v in size)
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise ValueError(f"video size {w}×{h}: use even sizes of at least 16 pixels, e.g. (1920, 1080)")
    sw, sh = camera.model.width, camera.model.height
    if sw * h >= sh * w:  # the sensor is wider than the frame: crop the sides
        ch, cw = sh, int(round(sh * w / h))
    else:  # the sensor is taller (4:3 sensor, 16:9 frame): crop top and bottom
        cw, ch = sw, int(round(sw * h / w))
    margin = 0
    if stabilise:
        margin = int(round(min(cw, ch) * stabilise_margin / 2))
        cw, ch = cw - 2 * margin, int(round((cw - 2 * margin) * h / w))
    x0, y0 = (sw - cw) // 2, (sh - ch) // 2
    return VideoGeometry(size=(w, h), window=(x0, y0, cw, ch), scale=w / cw, margin=margin)


def _resample(plane: np.ndarray, size: tuple[int, int], method: str = "bin") -> np.ndarray:
    """Resize a float32 plane to size = (width, height).

    ``"bin"``: bilinear, antialiased when shrinking (the sensor or ISP averages photosites);
    ``"skip"``: nearest photosite (line skipping: the PRNU keeps its full amplitude).
    """
    if plane.shape[1] == size[0] and plane.shape[0] == size[1]:
        return plane.astype(np.float32, copy=True)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    resample = Image.Resampling.NEAREST if method == "skip" else Image.Resampling.BILINEAR
    return np.array(img.resize(size, resample), dtype=np.float32)


def _frame_gain(camera: Camera, geo: VideoGeometry, readout: str = "bin") -> tuple[np.ndarray, int]:
    """1 + K of the sensor window (plus its stabilisation margin) on the frame grid, and the margin in frame px."""
    x0, y0, cw, ch = geo.window
    m = geo.margin
    k = camera.prnu()
    region = k[y0 - m : y0 + ch + m, x0 - m : x0 + cw + m]
    pad = int(round(m * geo.scale))
    w, h = geo.size
    gain = _resample(region, (w + 2 * pad, h + 2 * pad), readout)
    gain += np.float32(1.0)
    return gain, pad


def _trajectory(n: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth 1-D path in −amplitude..amplitude over n frames (sum of two slow sines)."""
    t = np.arange(n, dtype=np.float64)
    path = np.zeros(n)
    for _ in range(2):
        period = rng.uniform(60, 240)
        path += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amplitude * path / 2


VIDEO_CODECS = {"h264": "libx264", "hevc": "libx265"}


# HDR transfer functions as H.273 codes and x265's names: HLG (ARIB STD-B67, iPhone HDR video), PQ (SMPTE ST 2084).
HDR_CODES = {"hlg": (18, "arib-std-b67"), "pq": (16, "smpte2084")}


def _video_stream(
    container,
    codec: str,
    fps: int,
    size: tuple[int, int],
    bitrate: int,
    g: int,
    preset: str,
    threads: int,
    bit_depth: int = 8,
    hdr: str | None = None,
):
    """The video stream of `record_video`: one I-frame every g frames, no B-frames, rate-controlled, fixed threads.

    The encoders' output depends on their thread count: it is fixed, so the bytes are the
    same on every machine for a given seed.
    """
    stream = container.add_stream(VIDEO_CODECS[codec], rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p10le" if bit_depth == 10 else "yuv420p"
    stream.bit_rate = bitrate
    stream.codec_context.gop_size = g
    common = {"preset": preset, "maxrate": str(int(bitrate * 1.5)), "bufsize": str(int(bitrate * 2))}
    if codec == "h264":
        stream.options = {
            **common,
            "x264-params": f"keyint={g}:min-keyint={g}:scenecut=0:bframes=0",
            "threads": str(threads),
        }
    else:
        params = (
            f"keyint={g}:min-keyint={g}:scenecut=0:bframes=0:pools={threads}:frame-threads={threads}:log-level=error"
        )
        if hdr is not None:  # tagged in the bitstream (VUI) and in the container (colr), as phones write HDR
            code, name = HDR_CODES[hdr]
            params += f":colorprim=bt2020:transfer={name}:colormatrix=bt2020nc"
            stream.codec_context.color_trc, stream.codec_context.color_primaries = code, 9
            stream.codec_context.colorspace = 9
        stream.options = {**common, "x265-params": params}
        stream.codec_context.codec_tag = "hvc1"
    stream.codec_context.thread_count = threads
    return stream


def _warp_paths(
    n: int, rng: np.random.Generator, size: tuple[int, int], pad: int, max_shift: int, zoom: float, rotation: float
) -> tuple[np.ndarray, int]:
    """Per frame (zoom factor ≤ 1, rotation in degrees) along slow paths, and the shift left for the margin.

    Drawn after every other random choice of the default video, so that videos without these
    warps keep their bytes. Raises ValueError when the warps alone leave the margin.
    """
    zooms = 1.0 - float(zoom) * (0.5 + 0.5 * _trajectory(n, rng, 1.0))
    angles = _trajectory(n, rng, float(rotation))
    w, h = size
    reach = (w + h) / 2 * np.radians(abs(float(rotation))) + np.hypot(w, h) / 2 * float(zoom)
    left = min(max_shift, pad - int(np.ceil(reach)) - 1)
    if left < 0:
        raise ValueError(f"stabilise_zoom {zoom} and stabilise_rotation {rotation} leave the stabilisation margin")
    return np.stack([zooms, angles], axis=1), left


def _warped_window(
    gain: np.ndarray, size: tuple[int, int], pad: int, shift: tuple[int, int], warp: np.ndarray
) -> np.ndarray:
    """The frame's gain window: frame pixel u sees the padded gain grid at its centre + shift + z·R(θ)·(u − centre)."""
    w, h = size
    z, theta = float(warp[0]), np.radians(float(warp[1]))
    c, s = np.cos(theta) * z, np.sin(theta) * z
    cx, cy = (w - 1) / 2, (h - 1) / 2
    gx, gy = pad + shift[1] + cx, pad + shift[0] + cy
    # PIL's affine maps output (x, y) to input (a·x + b·y + c0, d·x + e·y + f0), pixel centres at +0.5
    a, b, d, e = c, -s, s, c
    c0 = gx + 0.5 - a * (cx + 0.5) - b * (cy + 0.5)
    f0 = gy + 0.5 - d * (cx + 0.5) - e * (cy + 0.5)
    img = Image.fromarray(gain, mode="F")
    out = img.transform((w, h), Image.Transform.AFFINE, (a, b, c0, d, e, f0), resample=Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32)


_ZOOM_SEGMENT = 8  # frames that share one zoom level (one resampling of the canvas region)


def _scene_views(
    lum_canvas: np.ndarray,
    chroma_planes: tuple[np.ndarray, np.ndarray],
    size: tuple[int, int],
    xs: np.ndarray,
    ys: np.ndarray,
    zs: np.ndarray,
):
    """Per frame: the (linear luma, (Cb, Cr)) view of the scene canvas, panned by (xs, ys) and zoomed by zs.

    The zoom is held for ``_ZOOM_SEGMENT`` frames: the canvas region those frames pan over is
    resampled once, and each frame is an integer-offset view of it — a slow zoom in small steps,
    at a fraction of the cost of resampling every frame.
    """
    w, h = size
    ch_, cw_ = lum_canvas.shape
    cx0, cy0 = (cw_ - w) / 2, (ch_ - h) / 2
    n = len(xs)
    for i0 in range(0, n, _ZOOM_SEGMENT):
        seg = range(i0, min(i0 + _ZOOM_SEGMENT, n))
        z = float(zs[i0])
        zw, zh = w / z, h / z
        x = np.clip(cx0 + xs[seg.start : seg.stop] + (w - zw) / 2, 0, cw_ - zw)
        y = np.clip(cy0 + ys[seg.start : seg.stop] + (h - zh) / 2, 0, ch_ - zh)
        if z == 1.0:
            region, planes, x_lo, y_lo = lum_canvas, chroma_planes, 0.0, 0.0
        else:
            x_lo, y_lo = float(np.floor(x.min())), float(np.floor(y.min()))
            x_hi = min(float(cw_), float(np.ceil(x.max() + zw)) + 1)
            y_hi = min(float(ch_), float(np.ceil(y.max() + zh)) + 1)
            out = (int(np.ceil((x_hi - x_lo) * z)) + 1, int(np.ceil((y_hi - y_lo) * z)) + 1)
            out = (max(out[0] + out[0] % 2, w), max(out[1] + out[1] % 2, h))
            box = (x_lo, y_lo, x_lo + out[0] / z, y_lo + out[1] / z)
            region = np.asarray(
                Image.fromarray(lum_canvas, mode="F").resize(out, Image.Resampling.BILINEAR, box=box), dtype=np.float32
            )
            half_box = tuple(b / 2 for b in box)
            planes = tuple(
                np.asarray(
                    Image.fromarray(p).resize((out[0] // 2, out[1] // 2), Image.Resampling.BILINEAR, box=half_box)
                )
                for p in chroma_planes
            )
        rh, rw = region.shape
        for k in range(len(seg)):
            xi = min(max(int(round((x[k] - x_lo) * z)), 0), rw - w) & ~1  # even, so chroma stays aligned
            yi = min(max(int(round((y[k] - y_lo) * z)), 0), rh - h) & ~1
            lum = region[yi : yi + h, xi : xi + w]
            chroma = tuple(p[yi // 2 : yi // 2 + h // 2, xi // 2 : xi // 2 + w // 2] for p in planes)
            yield lum, chroma


def _frame_10bit(signal: np.ndarray, lut_fine: np.ndarray, chroma: tuple, size: tuple[int, int]):
    """A yuv420p10le frame: the tone curve interpolated between its 8-bit entries (10-bit codes), chroma × 4."""
    import av

    w, h = size
    low = signal.astype(np.int64)
    high = np.minimum(low + 1, len(lut_fine) - 1)
    frac = signal - low
    luma = lut_fine[low] + (lut_fine[high] - lut_fine[low]) * frac
    planes = [np.clip(np.rint(luma), 0, 1023).astype(np.uint16)] + [c.astype(np.uint16) * 4 for c in chroma]
    frame = av.VideoFrame(w, h, "yuv420p10le")
    for plane, values in zip(frame.planes, planes):
        rows, cols = values.shape
        stride = plane.line_size // 2
        buffer = np.zeros((rows, stride), np.uint16)
        buffer[:, :cols] = values
        plane.update(buffer.tobytes())
    return frame


def record_video(
    camera: Camera,
    path: str | Path,
    *,
    seconds: float = 3,
    fps: int = 30,
    size: tuple[int, int] = (1920, 1080),
    bitrate: int = 8_000_000,
    motion: bool = True,
    stabilise: bool = False,
    seed: int = 0,
    scene_kind: str | None = None,
    zoom: bool = True,
    gop: int | None = None,
    preset: str = "superfast",
    stabilise_margin: float = 0.1,
    stabilise_shift: int | None = None,
    stabilise_zoom: float = 0.0,
    stabilise_rotation: float = 0.0,
    exposure: float | None = None,
    analog_gain: float = 2.0,
    readout: str = "skip",
    threads: int = 1,
    metadata: bool = True,
    codec: str = "h264",
    container_format: str = "mp4",
    bit_depth: int = 8,
    hdr: str | None = None,
    rotation: int = 0,
    tags: dict[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Record a simulated H.264 video (MP4, yuv420p) and return its path.

    Parameters
    ----------
    camera : the simulated unit.
    seconds, fps : duration in seconds and frame rate in frames per second.
    size : (width, height) of the frames in pixels, e.g. (1920, 1080) or (1280, 720).
    bitrate : target bit rate in bits per second (phones: 8–20 Mbit/s at 1080p).
    motion : pan (and, with ``zoom``, slowly zoom) the scene; the sensor stays fixed.
    stabilise : electronic stabilisation: a per-frame integer shift of up to
        ``stabilise_shift`` frame pixels (default: the whole margin) of the sensor window,
        whose size leaves ``stabilise_margin`` of the sensor for the shifts.
    stabilise_zoom, stabilise_rotation : with ``stabilise``, each frame is also zoomed in by up
        to this share (0.02: 2 %) and turned by up to this many degrees, along slow paths, as
        electronic stabilisation warps frames (Mandelli et al., TIFS 2020); the shifts shrink
        so that the warped window stays inside the margin. 0 (default): shifts only.
    seed : every random choice (scene, path, noise) derives from it and the camera's seed.
    scene_kind : "photo", "texture", "sky", "wall" or "flat"; random when None.
    gop : key-frame interval in frames (default ``fps``: one I-frame a second).
    preset : libx264 speed preset.
    exposure : fraction of full well that radiance 1.0 fills at unit gain (default: the model's).
    analog_gain : sensor gain (ISO ÷ base ISO): a video frame collects 1/analog_gain of the
        electrons of a photo of the same scene (short exposure), so its shot noise is higher.
    readout : how the sensor makes the smaller frame: ``"bin"`` averages the photosites of
        each frame pixel (lower noise, PRNU averaged down), ``"skip"`` reads one photosite per
        frame pixel (line skipping: full-amplitude PRNU and noise).
    threads : x264 encoder threads. One by default: with frame threads x264's rate control
        saw a different encoder state on a loaded CI machine and the bytes differed between two
        identical calls; one thread costs nothing measurable here (scene synthesis dominates).
    metadata : write container tags make/model/creation_time (and the QuickTime keys).
    codec : "h264" (libx264) or "hevc" (libx265, tagged hvc1 as iPhones write it).
    container_format : "mp4" or "mov" (QuickTime, as iPhones write).
    bit_depth : 8, or 10 (HEVC only: yuv420p10le, the tone curve kept to a quarter of an
        8-bit level, as phones write 10-bit HDR video).
    hdr : None, "hlg" or "pq": the transfer function tagged in the HEVC stream and the
        container (BT.2020 primaries); the pixels keep the simulator's tone curve (a tag, not
        a regrading: what matters here is that the reader records it and reads the pixels as stored).
    rotation : display rotation (degrees counter-clockwise) stored in the container's
        display matrix; the pixels stay as the sensor gives them.
    tags : further container tags (e.g. com.apple.quicktime.content.identifier of a Live
        Photo's clip, com.android.capture.fps of a slow-motion clip).
    progress : called with (frames done, frames total).
    """
    import av

    path = Path(path)
    model = camera.model
    n_frames = max(1, int(round(seconds * fps)))
    geo = video_geometry(camera, size, stabilise=stabilise, stabilise_margin=stabilise_margin)
    w, h = geo.size
    rng = np.random.default_rng([camera.seed, 0x766964, int(seed)])  # "vid"

    # Scene canvas, larger than the frame so the camera can pan over it.
    pan = 0.08 if motion else 0.0
    zoom_amp = 0.06 if (motion and zoom) else 0.0
    cw_, ch_ = int(w * (1 + 2 * pan + zoom_amp)) + 4, int(h * (1 + 2 * pan + zoom_amp)) + 4
    cw_, ch_ = cw_ + cw_ % 2, ch_ + ch_ % 2
    kind = scene_kind or str(rng.choice(["photo", "photo", "texture", "sky", "wall"]))
    radiance = make_scene(kind, cw_, ch_, rng)
    lum_canvas = radiance[..., 0] * np.float32(0.2126)
    lum_canvas += radiance[..., 1] * np.float32(0.7152)
    lum_canvas += radiance[..., 2] * np.float32(0.0722)
    # Chroma planes of the noise-free developed scene, at half resolution (4:2:0).
    wb = np.asarray(model.white_balance_gains, np.float32) * np.asarray(model.channel_sensitivity, np.float32)
    rgb8 = isp.tone_map(radiance * wb, model.gamma)
    ycc = Image.fromarray(rgb8).convert("YCbCr").resize((cw_ // 2, ch_ // 2), Image.Resampling.BILINEAR)
    chroma_canvas = np.asarray(ycc)
    chroma_planes = (np.ascontiguousarray(chroma_canvas[..., 1]), np.ascontiguousarray(chroma_canvas[..., 2]))
    del radiance, rgb8

    # The sensor: gain 1 + K on the frame grid; electrons per frame pixel.
    if readout not in ("bin", "skip"):
        raise ValueError(f"unknown readout {readout!r}; use 'bin' or 'skip'")
    gain, pad = _frame_gain(camera, geo, readout)
    binning = max(1.0, 1.0 / geo.scale**2) if readout == "bin" else 1.0
    expo = model.exposure if exposure is None else float(exposure)
    full_well = np.float32(model.full_well_e * binning)
    # Video exposes for 1/fps or less and makes up with analog gain: fewer electrons, more noise.
    electrons_at_white = model.full_well_e * expo * binning / float(analog_gain)
    gain *= np.float32(electrons_at_white)
    read_var = np.float32(model.read_noise_e**2 * binning)
    lut = isp._tone_lut(float(model.gamma))
    to_index = np.float32((len(lut) - 1) / electrons_at_white)
    tri_scale = np.float32(np.sqrt(6.0) / 255.0)  # (u1 + u2 − 255) of two random bytes has std 255/√6

    xs = _trajectory(n_frames, rng, pan * w) if motion else np.zeros(n_frames)
    ys = _trajectory(n_frames, rng, pan * h) if motion else np.zeros(n_frames)
    zs = 1.0 + (_trajectory(n_frames, rng, zoom_amp / 2) + zoom_amp / 2) if zoom_amp else np.ones(n_frames)
    max_shift = pad if stabilise_shift is None else min(pad, int(stabilise_shift))
    warps = None
    if stabilise and (stabilise_zoom or stabilise_rotation):
        warps, max_shift = _warp_paths(n_frames, rng, (w, h), pad, max_shift, stabilise_zoom, stabilise_rotation)
    if stabilise:
        shifts = rng.integers(-max_shift, max_shift + 1, size=(n_frames, 2))
    else:
        shifts = np.zeros((n_frames, 2), dtype=np.int64)

    options = {"movflags": "use_metadata_tags"} if metadata else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec not in VIDEO_CODECS or container_format not in ("mp4", "mov"):
        raise ValueError(f"codec {codec!r} / container {container_format!r}: use h264 or hevc in mp4 or mov")
    if bit_depth not in (8, 10) or (bit_depth == 10 and codec != "hevc") or (hdr is not None and codec != "hevc"):
        raise ValueError(f"bit depth {bit_depth} / hdr {hdr!r} with {codec}: 10-bit and HDR are written as HEVC")
    if hdr is not None and hdr not in HDR_CODES:
        raise ValueError(f"unknown hdr {hdr!r}; use 'hlg' or 'pq'")
    container = av.open(str(path), mode="w", format=container_format, options=options)
    try:
        if metadata:
            when = (_EPOCH + _dt.timedelta(minutes=int(seed) % 500_000)).strftime("%Y-%m-%dT%H:%M:%SZ")
            container.metadata["make"] = model.make
            container.metadata["model"] = model.name
            container.metadata["com.apple.quicktime.make"] = model.make
            container.metadata["com.apple.quicktime.model"] = model.name
            container.metadata["creation_time"] = when
        for key, value in (tags or {}).items():
            container.metadata[key] = str(value)
        stream = _video_stream(
            container, codec, int(fps), (w, h), int(bitrate), int(gop or fps), preset, int(threads), bit_depth, hdr
        )
        if rotation:
            stream.set_display_rotation(int(rotation))
        frame_buf = np.empty((h * 3 // 2, w), np.uint8)
        lut_fine = lut.astype(np.float32) * np.float32(4.0)  # 10-bit code values of the tone curve
        views = _scene_views(lum_canvas, chroma_planes, (w, h), xs, ys, zs)
        for i, (lum, chroma) in enumerate(views):
            # Sensor: PRNU gain window (shifted under stabilisation), shot + read noise, tone curve.
            dy, dx = int(shifts[i, 0]), int(shifts[i, 1])
            if warps is None:
                gwin = gain[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
            else:
                gwin = _warped_window(gain, (w, h), pad, (dy, dx), warps[i])
            signal = lum * gwin
            np.minimum(signal, full_well, out=signal)
            sigma = np.sqrt(signal + read_var)
            u = np.frombuffer(rng.bytes(w * h), np.uint8).reshape(h, w).astype(np.int16)
            u += np.frombuffer(rng.bytes(w * h), np.uint8).reshape(h, w)
            u -= 255
            noise = u.astype(np.float32)
            noise *= tri_scale
            noise *= sigma
            signal += noise
            signal *= to_index
            np.clip(signal, 0, len(lut) - 1, out=signal)
            if bit_depth == 10:
                frame = _frame_10bit(signal, lut_fine, chroma, (w, h))
            else:
                frame_buf[:h] = lut[signal.astype(np.uint16)]
                uv = frame_buf[h:].reshape(2, h // 2, w // 2)
                uv[0], uv[1] = chroma
                frame = av.VideoFrame.from_ndarray(frame_buf, format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
            if progress is not None:
                progress(i + 1, n_frames)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path


def reencode_video(
    source: str | Path,
    path: str | Path,
    *,
    bitrate: int = 2_000_000,
    gop: int | None = None,
    preset: str = "superfast",
    threads: int = 1,
) -> Path:
    """Re-encode a video as a sharing service does: decoded, then H.264 again at a lower bit rate; returns `path`.

    bitrate: the new target in bits per second (social media: about 2 Mbit/s at 720p). gop:
    keyframe interval in frames (default: the source's frame rate, one a second, as
    `record_video`). The frames keep their size and the container its make/model tags; one
    encoder thread, so the bytes are the same on every machine.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src:
        stream_in = src.streams.video[0]
        fps = int(round(float(stream_in.average_rate or 30)))
        w, h = stream_in.codec_context.width, stream_in.codec_context.height
        tags = dict(src.metadata)
        with av.open(str(path), mode="w", format="mp4", options={"movflags": "use_metadata_tags"}) as out:
            for key in ("make", "model", "creation_time", "com.apple.quicktime.make", "com.apple.quicktime.model"):
                if key in tags:
                    out.metadata[key] = tags[key]
            stream = _video_stream(out, "h264", fps, (w, h), int(bitrate), int(gop or fps), preset, int(threads))
            for i, frame in enumerate(src.decode(stream_in)):
                planes = frame.to_ndarray(format="yuv420p")
                new = av.VideoFrame.from_ndarray(planes, format="yuv420p")
                new.pts = i
                for packet in stream.encode(new):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path
