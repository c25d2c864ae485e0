"""Selecting what the networks see: homogeneous patches of images, and prepared frames of videos.

Homogeneous patches follow Bennabhaktula, Alegre, Karastoyanova, Azzopardi, "Camera model
identification based on forensic traces extracted from homogeneous patches", ESWA 2022 (and
the authors' code, bgswaroop/scd-images): 128×128 patches on a 32-pixel grid whose standard
deviation in every colour channel (pixels scaled to [0, 1]) lies in (0.005, 0.02): little scene
content, but not flat clipping either; at most 200 per image, evenly subsampled; when too few
qualify, the lowest-deviation patches fill up the count; each patch has its per-channel mean
subtracted. Saturated patches (clipped pixels) carry no sensor noise and are rejected first.

Beyond the paper, the network sees by default a fixed high-pass residual of each patch (the
3×3 "KB" filter of the steganalysis rich models, Fridrich & Kodovský 2012, per channel) scaled
to unit standard deviation. The paper trains and tests on natural images; a case trains on
whatever reference media were taken (often flat fields) and tests on scenes, and without the
high-pass the network learns the flats' scene-free look: on dresden-nikon, trained on the flats,
camera-model accuracy on the naturals went from 11/16 to 15/16 (D200 vs D70 with the D70s merged
into it, as the authors' code does). See benchmarks/learn_dresden.py.

Frames follow Bennabhaktula, Timmerman, Alegre, Azzopardi, "Source Camera Device
Identification from Videos", SN Computer Science 2022 (authors' code bgswaroop/scd-videos):
portrait frames turned to landscape, a centre crop of 480×800, pixels scaled to [0, 1].

All functions take float32 H×W×3 RGB arrays with values in 0..255 (what the media layer gives).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sensorprint.errors import MediaError


@dataclass(frozen=True)
class PatchParameters:
    """How homogeneous patches are chosen; the defaults are the ESWA 2022 paper's values.

    size : patch side in pixels.
    stride : grid step in pixels between candidate patches.
    std_low, std_high : open interval for the per-channel standard deviation, pixels in [0, 1].
    max_patches : at most this many patches per image (evenly subsampled among the homogeneous).
    clip_low, clip_high : pixel values (0..255 scale) at or beyond which a pixel counts as clipped.
    max_clipped_fraction : a patch with a larger share of clipped pixels (any channel) is saturated.
    highpass : give the network the patch's high-pass residual (KB filter, see the module doc)
        instead of the mean-subtracted pixels (not in the paper; suppresses the scene, so that a
        network trained on flat fields transfers to natural images).
    normalise_contrast : also divide each patch (or residual) by its standard deviation (over
        all channels), so the network sees only the correlation structure of the noise and not
        its level, which depends on exposure and ISO rather than on the camera (not in the paper).
    """

    size: int = 128
    stride: int = 32
    std_low: float = 0.005
    std_high: float = 0.02
    max_patches: int = 200
    clip_low: float = 0.0
    clip_high: float = 255.0
    max_clipped_fraction: float = 0.0
    highpass: bool = True
    normalise_contrast: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def _check_rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise MediaError(f"expected an H×W×3 RGB array, got shape {pixels.shape}; convert the image to RGB first")
    return np.asarray(pixels, dtype=np.float32)


def _window_sums(values: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Sum of every size×size window on a stride grid (per channel), accumulated in float64.

    When the stride divides the size (the papers' 128/32), the image is first summed into
    stride×stride cells, which is several times faster than a full-resolution integral image.
    """
    n_rows = (values.shape[0] - size) // stride + 1
    n_cols = (values.shape[1] - size) // stride + 1
    if size % stride == 0:
        step, span = stride, size // stride
        cells_r, cells_c = n_rows - 1 + span, n_cols - 1 + span
        trimmed = values[: cells_r * step, : cells_c * step]
        cells = trimmed.reshape((cells_r, step, cells_c, step) + values.shape[2:]).sum(axis=(1, 3), dtype=np.float64)
    else:
        step, span, cells = 1, size, values.astype(np.float64)
    integral = np.zeros((cells.shape[0] + 1, cells.shape[1] + 1) + cells.shape[2:], dtype=np.float64)
    np.cumsum(np.cumsum(cells, axis=0), axis=1, out=integral[1:, 1:])
    grid_stride = stride // step
    r0 = (np.arange(n_rows) * grid_stride)[:, None]
    c0 = (np.arange(n_cols) * grid_stride)[None, :]
    return integral[r0 + span, c0 + span] - integral[r0, c0 + span] - integral[r0 + span, c0] + integral[r0, c0]


def patch_statistics(
    pixels: np.ndarray, params: PatchParameters = PatchParameters()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel standard deviation (pixels in [0,1]) and clipped share of every grid patch.

    Returns (top-left positions N×2 as (row, col), std N×3, clipped fraction N).
    """
    rgb = _check_rgb(pixels)
    height, width = rgb.shape[:2]
    if height < params.size or width < params.size:
        return np.zeros((0, 2), np.int64), np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
    scaled = rgb / np.float32(255.0)
    n = float(params.size * params.size)
    mean = _window_sums(scaled, params.size, params.stride) / n
    mean_sq = _window_sums(scaled * scaled, params.size, params.stride) / n
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    clipped = ((rgb <= params.clip_low) | (rgb >= params.clip_high)).any(axis=2).astype(np.float32)
    clipped_fraction = _window_sums(clipped, params.size, params.stride) / n
    rows = np.arange(0, height - params.size + 1, params.stride)
    cols = np.arange(0, width - params.size + 1, params.stride)
    grid_r, grid_c = np.meshgrid(rows, cols, indexing="ij")
    positions = np.stack([grid_r.ravel(), grid_c.ravel()], axis=1)
    return positions, std.reshape(-1, 3).astype(np.float32), clipped_fraction.ravel().astype(np.float32)


def _evenly(indices: np.ndarray, count: int) -> np.ndarray:
    """``count`` entries of ``indices`` spread evenly over it (keeps the image coverage)."""
    if len(indices) <= count:
        return indices
    picks = np.linspace(0, len(indices) - 1, count).round().astype(np.int64)
    return indices[picks]


def flat_share(std: np.ndarray, params: PatchParameters = PatchParameters()) -> float:
    """Share (0..1) of an image's grid patches below ``std_high`` in every channel.

    ``std`` is the N×3 deviation of :func:`patch_statistics`. It measures the image's content,
    not its camera: a flat field gives about 1 (dresden-nikon flats: at least 0.998), scenes
    less (dresden naturals 0.17-0.73, VISION naturals 0.03-0.22). A network records it for its
    reference files, so that an answer for a file unlike all of them can say so.
    """
    return float(np.all(std < params.std_high, axis=1).mean()) if len(std) else 0.0


def choose_patch_positions(
    positions: np.ndarray, std: np.ndarray, clipped: np.ndarray, params: PatchParameters = PatchParameters()
) -> np.ndarray:
    """The ESWA 2022 choice among the grid patches described by :func:`patch_statistics`.

    Homogeneous, unsaturated patches come first (evenly subsampled to ``max_patches``); when
    fewer qualify, the unsaturated patches of lowest (largest-channel) deviation fill up, then
    the saturated ones. Returns an int64 array N×2 of top-left (row, col), N ≤ max_patches.
    """
    if len(positions) == 0:
        return positions
    saturated = clipped > params.max_clipped_fraction
    homogeneous = np.all((std > params.std_low) & (std < params.std_high), axis=1) & ~saturated
    chosen = _evenly(np.flatnonzero(homogeneous), params.max_patches)
    missing = params.max_patches - len(chosen)
    if missing > 0:
        # Fill with the flattest remaining patches; saturated ones only as a last resort.
        rest = np.flatnonzero(~homogeneous)
        order = np.lexsort((std[rest].max(axis=1), saturated[rest]))
        chosen = np.concatenate([chosen, rest[order[:missing]]])
    return positions[np.sort(chosen)]


def select_patch_positions(pixels: np.ndarray, params: PatchParameters = PatchParameters()) -> np.ndarray:
    """Top-left (row, col) of an image's homogeneous patches (:func:`choose_patch_positions`);
    empty only for an image smaller than one patch."""
    return choose_patch_positions(*patch_statistics(pixels, params), params)


# The "KB" high-pass of the spatial rich models (Fridrich & Kodovský 2012): it sums to zero, so
# it removes the patch mean and any linear gradient, and keeps the pixel-to-pixel noise texture.
_KB = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float32) / 4


def highpass_residual(patch: np.ndarray) -> np.ndarray:
    """KB-filtered residual of a C×H×W patch, same shape (edges mirrored)."""
    padded = np.pad(patch, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    height, width = patch.shape[1:]
    out = np.zeros_like(patch)
    for dr in range(3):
        for dc in range(3):
            out += _KB[dr, dc] * padded[:, dr : dr + height, dc : dc + width]
    return out


def unit_contrast(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their standard deviation (unchanged scale when they are all equal)."""
    return values / max(float(values.std()), 1e-6)


def extract_patches(
    pixels: np.ndarray, positions: np.ndarray, size: int, *, highpass: bool = False, normalise_contrast: bool = False
) -> np.ndarray:
    """Patches at ``positions`` as float32 N×3×size×size, pixels in [0,1], per-channel mean removed,
    or their high-pass residual with ``highpass``; with ``normalise_contrast`` divided by their
    standard deviation (see :class:`PatchParameters`)."""
    rgb = _check_rgb(pixels)
    out = np.empty((len(positions), 3, size, size), dtype=np.float32)
    for index, (row, col) in enumerate(positions):
        patch = rgb[row : row + size, col : col + size].transpose(2, 0, 1) / np.float32(255.0)
        patch = highpass_residual(patch) if highpass else patch - patch.mean(axis=(1, 2), keepdims=True)
        if normalise_contrast:
            patch = unit_contrast(patch)
        out[index] = patch
    return out


def homogeneous_patches(pixels: np.ndarray, params: PatchParameters = PatchParameters()) -> np.ndarray:
    """The network input for one image: its homogeneous patches, float32 N×3×S×S (ESWA 2022)."""
    return patches_and_flat_share(pixels, params)[0]


def patches_and_flat_share(pixels: np.ndarray, params: PatchParameters = PatchParameters()) -> tuple[np.ndarray, float]:
    """:func:`homogeneous_patches` and :func:`flat_share` of one image, from one pass of statistics."""
    positions, std, clipped = patch_statistics(pixels, params)
    patches = extract_patches(
        pixels,
        choose_patch_positions(positions, std, clipped, params),
        params.size,
        highpass=params.highpass,
        normalise_contrast=params.normalise_contrast,
    )
    return patches, flat_share(std, params)


@dataclass(frozen=True)
class FrameParameters:
    """How a video frame (or an image) becomes the frame network's input.

    crop_height, crop_width : centre crop in pixels after landscape rotation; the paper uses
        480×800. Smaller crops train much faster on a CPU (see the training notes).
    highpass : give the network the frame's unit-contrast high-pass residual, as for patches
        (not in the paper, whose authors found scene suppression did not help).
    """

    crop_height: int = 480
    crop_width: int = 800
    highpass: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def prepare_frame(pixels: np.ndarray, params: FrameParameters = FrameParameters()) -> np.ndarray:
    """A frame as network input: landscape, centre-cropped, float32 3×h×w in [0,1] (SN CS 2022).

    A frame smaller than the crop is zero-padded around its centre (a rescale would destroy
    the sensor noise the network looks for).
    """
    rgb = _check_rgb(pixels)
    if rgb.shape[0] > rgb.shape[1]:
        rgb = np.rot90(rgb)  # portrait → landscape, as the authors' code does
    height, width = rgb.shape[:2]
    out = np.zeros((3, params.crop_height, params.crop_width), dtype=np.float32)
    crop_h, crop_w = min(height, params.crop_height), min(width, params.crop_width)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    dst_top, dst_left = (params.crop_height - crop_h) // 2, (params.crop_width - crop_w) // 2
    crop = rgb[top : top + crop_h, left : left + crop_w].transpose(2, 0, 1) / np.float32(255.0)
    if params.highpass:
        crop = unit_contrast(highpass_residual(crop))
    out[:, dst_top : dst_top + crop_h, dst_left : dst_left + crop_w] = crop
    return out


def choose_frame_indices(n_frames: int, count: int = 5, *, seed: int = 0) -> np.ndarray:
    """``count`` distinct frame indices out of ``n_frames``, at random with a fixed seed, sorted.

    The SN CS 2022 paper classifies a video from five random frames; the same seed always
    gives the same frames, so a result can be reproduced.
    """
    if n_frames <= 0:
        raise MediaError("the video has no decodable frames; check that the file is a complete video")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_frames, size=min(count, n_frames), replace=False))
