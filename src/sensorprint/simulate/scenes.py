"""Scene radiance for the simulated cameras: shipped photographs and procedural textures.

A scene is what reaches the lens: float32 H×W×3 *linear* radiance in 0..1 (not gamma
encoded), so the sensor model can apply shot noise and PRNU in the physical domain.

Photographs come only from the images that ship inside scikit-image (``skimage.data``:
astronaut, coffee, chelsea, rocket, motorcycle, ...), read from the installed package
with Pillow — nothing is ever downloaded. They are small (≤ 512 px), so a scene is a
random crop, zoom and flip of one of them, brightness-scaled; their own noise and JPEG
traces are smoothed away by the upscaling and do not correlate with any simulated sensor.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

SCENE_KINDS = ("photo", "texture", "flat", "sky", "wall", "facade", "fence")
# Strongly structured scenes: sharp edges and periodic patterns that survive denoising and
# line up between unrelated photos (what makes a one-image "fingerprint" match other cameras).
STRUCTURED_KINDS = ("facade", "fence")

# Colour photographs shipped in skimage/data (file names in that folder).
_SHIPPED_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
)
# Grey textures shipped in skimage/data, used as surface detail of procedural scenes.
_SHIPPED_TEXTURES = ("brick.png", "grass.png", "gravel.png")


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).resolve().parent


@functools.lru_cache(maxsize=16)
def _shipped_image(name: str) -> np.ndarray | None:
    """One shipped image as uint8 (RGB or grey), or None when this scikit-image lacks it."""
    path = _skimage_data_dir() / name
    if not path.is_file():
        return None
    with Image.open(path) as img:
        img.load()
        mode = "L" if img.mode in ("L", "I", "I;16", "1") else "RGB"
        return np.asarray(img.convert(mode))


def available_photos() -> tuple[str, ...]:
    """Names of the shipped colour photographs present in this installation."""
    return tuple(n for n in _SHIPPED_PHOTOS if _shipped_image(n) is not None)


# sRGB-like decoding of 8-bit values to linear radiance (gamma 2.2 is close enough for scenes).
_SRGB_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)


def smooth_field(height: int, width: int, rng: np.random.Generator, cell: int) -> np.ndarray:
    """A smooth zero-mean, unit-std random field (float32 H×W) with features ~``cell`` pixels wide.

    Made by bicubic upsampling of a coarse Gaussian grid: far cheaper than a large Gaussian filter.
    """
    gh = max(2, height // max(cell, 1) + 2)
    gw = max(2, width // max(cell, 1) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    field = np.asarray(
        Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC),
        dtype=np.float32,
    )
    std = float(field.std())
    return (field - field.mean()) / (std if std > 0 else 1.0)


def _crop_zoom_flip(src: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop (40–100 % of the source side, target aspect), flipped at random, resized."""
    sh, sw = src.shape[:2]
    aspect = width / height
    frac = rng.uniform(0.4, 1.0)
    cw = min(sw, int(round(sh * aspect)))
    cw = max(8, int(cw * frac))
    ch = max(8, min(sh, int(round(cw / aspect))))
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    crop = src[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    img = Image.fromarray(np.ascontiguousarray(crop))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))


def _photo(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    names = available_photos()
    if not names:  # a stripped scikit-image: fall back to a procedural scene
        return _texture(width, height, rng)
    src = _shipped_image(names[int(rng.integers(len(names)))])
    rgb = _crop_zoom_flip(src, width, height, rng)
    lin = _SRGB_TO_LINEAR[rgb]
    # Exposure differs from shot to shot (auto-exposure protects the highlights, so mostly
    # darker than the source photo); what still exceeds 1 clips in the sensor.
    return lin * np.float32(rng.uniform(0.45, 1.05))


def _colour(rng: np.random.Generator, saturation: float) -> np.ndarray:
    base = rng.uniform(1.0 - saturation, 1.0, size=3).astype(np.float32)
    return base / base.max()


def _texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Gradients, a multi-scale noise field, a few flat-shaded rectangles and a shipped texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height).astype(np.float32)
    lum = 0.25 + 0.15 * ramp
    for cell, amp in ((max(width, height) // 4, 0.10), (48, 0.05), (12, 0.03)):
        lum += np.float32(amp) * smooth_field(height, width, rng, cell)
    for _ in range(int(rng.integers(2, 6))):  # objects with sharp edges
        w = int(rng.integers(width // 10, width // 3))
        h = int(rng.integers(height // 10, height // 3))
        x0 = int(rng.integers(0, width - w))
        y0 = int(rng.integers(0, height - h))
        lum[y0 : y0 + h, x0 : x0 + w] *= np.float32(rng.uniform(0.4, 1.8))
    names = [n for n in _SHIPPED_TEXTURES if _shipped_image(n) is not None]
    if names:
        tex = _shipped_image(names[int(rng.integers(len(names)))])
        tex = _crop_zoom_flip(tex, width, height, rng).astype(np.float32) / 255.0
        lum *= 0.7 + 0.6 * tex
    rgb = lum[..., None] * _colour(rng, 0.5)[None, None, :]
    rgb += 0.03 * np.stack([smooth_field(height, width, rng, 64) for _ in range(3)], axis=-1)
    return np.clip(rgb, 0.0, None).astype(np.float32)


def _flat(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A flat field (a white wall or an overcast sky filling the frame): bright, nearly uniform.

    Mean 0.35–0.6 of full scale, a gentle lighting gradient and vignetting-free low-frequency
    variation below 2 %: the kind of reference shot the PRNU literature recommends.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    level = np.float32(rng.uniform(0.35, 0.6))
    angle = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(angle) * (xx / width - 0.5) + np.sin(angle) * (yy / height - 0.5)).astype(np.float32)
    lum = level * (1.0 + np.float32(rng.uniform(0.0, 0.15)) * grad)
    lum *= 1.0 + 0.01 * smooth_field(height, width, rng, max(width, height) // 3)
    return (lum[..., None] * _colour(rng, 0.15)[None, None, :]).astype(np.float32)


def _sky(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A blue sky, lighter towards the horizon, with soft clouds."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    top = np.array([0.08, 0.18, 0.45], np.float32) * np.float32(rng.uniform(0.7, 1.1))
    bottom = np.array([0.35, 0.45, 0.58], np.float32) * np.float32(rng.uniform(0.7, 1.1))
    rgb = top[None, None, :] * (1 - t[..., None]) + bottom[None, None, :] * t[..., None]
    rgb = np.broadcast_to(rgb, (height, width, 3)).copy()
    clouds = smooth_field(height, width, rng, max(width, height) // 5)
    clouds += 0.5 * smooth_field(height, width, rng, 40)
    cover = np.clip(clouds - rng.uniform(0.0, 1.0), 0.0, None) * np.float32(rng.uniform(0.08, 0.25))
    rgb += cover[..., None]
    return rgb.astype(np.float32)


def _wall(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A painted wall: one colour, a lighting gradient, fine low-contrast plaster texture."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    level = np.float32(rng.uniform(0.2, 0.55))
    angle = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(angle) * (xx / width - 0.5) + np.sin(angle) * (yy / height - 0.5)).astype(np.float32)
    lum = level * (1.0 + np.float32(rng.uniform(0.1, 0.5)) * grad)
    lum *= 1.0 + 0.02 * smooth_field(height, width, rng, 6) + 0.03 * smooth_field(height, width, rng, 60)
    return (lum[..., None] * _colour(rng, 0.4)[None, None, :]).astype(np.float32)


def _facade(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A building front: a periodic grid of dark windows with sharp frames on a bright wall."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period_x, period_y = int(rng.integers(24, 64)), int(rng.integers(32, 80))
    phase_x, phase_y = int(rng.integers(period_x)), int(rng.integers(period_y))
    in_x = ((xx + phase_x) % period_x) < period_x * rng.uniform(0.4, 0.6)
    in_y = ((yy + phase_y) % period_y) < period_y * rng.uniform(0.45, 0.65)
    lum = np.full((height, width), np.float32(rng.uniform(0.45, 0.8)))
    lum[in_x & in_y] *= np.float32(rng.uniform(0.15, 0.35))  # glass
    frame = ((xx + phase_x) % period_x < 2) | ((yy + phase_y) % period_y < 2)
    lum[frame] = np.float32(0.9)  # white window frames: one-pixel edges
    lum *= 1.0 + 0.05 * smooth_field(height, width, rng, max(width, height) // 3)
    return (lum[..., None] * _colour(rng, 0.3)[None, None, :]).astype(np.float32)


def _fence(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A picket fence or railing against the sky: thin periodic bars, vertical or slanted."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = float(rng.uniform(6, 20))
    slant = float(rng.choice([0.0, rng.uniform(-0.3, 0.3)]))
    bars = ((xx + slant * yy) % period) < period * rng.uniform(0.25, 0.5)
    sky = _sky(width, height, rng)
    fence = np.float32(rng.uniform(0.05, 0.3)) * _colour(rng, 0.3)
    sky[bars] = fence
    return sky


_GENERATORS = {
    "photo": _photo,
    "texture": _texture,
    "flat": _flat,
    "sky": _sky,
    "wall": _wall,
    "facade": _facade,
    "fence": _fence,
}


def scene(kind: str, width: int, height: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Linear scene radiance, float32 ``height × width × 3`` in 0..1 (values above 1 clip in the sensor).

    Parameters
    ----------
    kind : one of ``"photo"`` (a random crop/zoom/flip of a photograph shipped in
        scikit-image), ``"texture"`` (gradients, noise fields, edges), ``"flat"`` (flat
        field: wall or overcast sky filling the frame), ``"sky"``, ``"wall"``, and the
        strongly structured ``"facade"`` (a periodic grid of windows) and ``"fence"`` (thin
        periodic bars against the sky).
    width, height : size in pixels.
    rng : a numpy Generator or a seed; the scene is a deterministic function of it.
    """
    if kind not in _GENERATORS:
        raise ValueError(f"unknown scene kind {kind!r}; use one of {', '.join(SCENE_KINDS)}")
    if width < 8 or height < 8:
        raise ValueError(f"scene size {width}×{height} is too small; use at least 8×8 pixels")
    rng = np.random.default_rng(rng)
    return _GENERATORS[kind](int(width), int(height), rng)
