"""Simulated cameras: a camera model (the design all its units share) and its physical units.

Every unit has its own photo-response non-uniformity K (PRNU), independent of its twins;
the units of one model share a low-amplitude model pattern (row/column and periodic
gain patterns), the CFA, the demosaicing, the colour processing and the JPEG tables —
the artefacts that make units of one model hard to tell apart (Chen et al., IEEE TIFS 2008;
Goljan 2009). Everything is a deterministic function of the seeds.

Pipeline of one shot (``Camera.shoot``): scene radiance → photo-electrons (channel
sensitivities × full well) → sensor (PRNU, DSNU, Poisson shot noise, read noise, ADC) →
Bayer CFA → demosaicing → white balance → colour matrix → tone curve → uint8 RGB.
``Camera.save_jpeg`` adds the JPEG encoding (Pillow) and EXIF.
"""

from __future__ import annotations

import datetime as _dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import isp, sensor
from .scenes import scene as make_scene

# EXIF orientation tag for an image stored with pixels in sensor orientation that must
# be turned by np.rot90(·, k) to be viewed upright (k = orientation // 90).
_EXIF_ORIENTATION = {0: 1, 90: 8, 180: 3, 270: 6}
_EPOCH = _dt.datetime(2024, 3, 1, 9, 0, 0)


@dataclass(frozen=True)
class CameraModel:
    """The design of a camera model: sensor size and physics, processing, JPEG settings.

    Units: ``prnu_strength`` etc. are dimensionless std of the multiplicative gain
    (0.008 = 0.8 %); ``full_well_e``, ``read_noise_e``, ``dark_*_e`` in electrons;
    ``channel_sensitivity`` the raw response of R, G, B relative to each other (the white
    balance gains are their inverses); ``gamma`` the exponent of the sRGB-like tone curve.
    ``exposure`` is the fraction of full well that scene radiance 1.0 fills (green channel).
    ``row_column_strength`` / ``periodic_strength`` / ``shared_random_strength``: the model
    pattern all units share (see ``sensor.model_pattern``). ``luma_denoise`` (0..1): in-camera
    noise reduction of the finest luminance detail (it also weakens the PRNU, as in phones).
    ``color_matrix`` (rows sum to 1) also defines the colour filters' spectral overlap (its
    inverse). Defaults are calibrated with ``sensorprint.prnu`` so that at 1024×768, JPEG 92,
    8 flat references, natural shots of the unit give PCE ≈ 100–7000 and other units (the
    same-model twin included) stay below ≈ 15.
    """

    name: str
    width: int
    height: int
    cfa: str = "RGGB"
    jpeg_quality: int = 92
    prnu_strength: float = 0.008
    prnu_lowfreq_strength: float = 0.003
    row_column_strength: float = 0.0015
    periodic_strength: float = 0.0008
    shared_random_strength: float = 0.0
    full_well_e: float = 6000.0
    read_noise_e: float = 3.0
    dark_mean_e: float = 4.0
    dark_std_e: float = 2.0
    adc_bits: int = 12
    exposure: float = 1.0
    channel_sensitivity: tuple[float, float, float] = (0.55, 1.0, 0.75)
    color_matrix: tuple[tuple[float, float, float], ...] | None = (
        (1.5, -0.35, -0.15),
        (-0.2, 1.4, -0.2),
        (-0.05, -0.45, 1.5),
    )
    gamma: float = 2.4
    luma_denoise: float = 0.5
    demosaic: str = "bilinear"
    jpeg_subsampling: str = "4:2:0"
    make: str = "Sensorprint"
    seed: int = 0
    exif_model: str | None = None  # the EXIF model when it is not `name` (the modules of one phone share it)
    lens_model: str | None = None  # the EXIF lens model (a phone writes one per camera module)

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"sensor {self.width}×{self.height} is too small; use at least 16×16")
        if self.cfa not in isp.CFA_PATTERNS:
            raise ValueError(f"unknown CFA {self.cfa!r}; use one of {', '.join(isp.CFA_PATTERNS)}")
        if self.demosaic not in isp.DEMOSAIC_METHODS:
            raise ValueError(f"unknown demosaicing {self.demosaic!r}; use one of {', '.join(isp.DEMOSAIC_METHODS)}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality {self.jpeg_quality} is outside 1..100")

    def model_pattern(self) -> np.ndarray:
        """The multiplicative pattern all units of this model share (float32 H×W, cached)."""
        return _model_pattern(self)

    @property
    def filter_response(self) -> np.ndarray | None:
        """How the colour filters mix the scene's R, G, B (3×3): the inverse of the colour matrix.

        Real filters overlap spectrally, so raw colours are less saturated than the scene; the
        colour matrix undoes it (and amplifies the noise, as in real cameras).
        """
        if self.color_matrix is None:
            return None
        return np.linalg.inv(np.asarray(self.color_matrix, np.float64)).astype(np.float32)

    @property
    def white_balance_gains(self) -> tuple[float, float, float]:
        g = self.channel_sensitivity[1]
        return tuple(g / s for s in self.channel_sensitivity)  # type: ignore[return-value]


@functools.lru_cache(maxsize=16)
def _model_pattern(model: CameraModel) -> np.ndarray:
    rng = np.random.default_rng([model.seed, 0x6D6F64])  # "mod"
    pattern = sensor.model_pattern(
        model.height,
        model.width,
        rng,
        row_column_strength=model.row_column_strength,
        periodic_strength=model.periodic_strength,
        shared_random_strength=model.shared_random_strength,
    )
    pattern.setflags(write=False)
    return pattern


@functools.lru_cache(maxsize=12)
def _unit_patterns(model: CameraModel, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit PRNU, dark signal) of one unit; read-only arrays, cached."""
    rng = np.random.default_rng([seed, 0x707275])  # "pru"
    k = sensor.unit_prnu(
        model.height,
        model.width,
        rng,
        strength=model.prnu_strength,
        lowfreq_strength=model.prnu_lowfreq_strength,
    )
    dark = sensor.dark_signal(model.height, model.width, rng, mean_e=model.dark_mean_e, std_e=model.dark_std_e)
    k.setflags(write=False)
    dark.setflags(write=False)
    return k, dark


@functools.lru_cache(maxsize=12)
def _gain_pattern(model: CameraModel, seed: int) -> np.ndarray:
    """1 + K (unit and model parts), the per-pixel gain of the sensor; cached."""
    gain = 1.0 + _unit_patterns(model, seed)[0] + _model_pattern(model)
    gain = gain.astype(np.float32)
    gain.setflags(write=False)
    return gain


def _rotate(image: np.ndarray, orientation: int) -> np.ndarray:
    if orientation not in _EXIF_ORIENTATION:
        raise ValueError(f"orientation {orientation} is not one of 0, 90, 180, 270")
    k = orientation // 90
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


@dataclass(frozen=True)
class Camera:
    """One physical unit of a ``CameraModel``; ``seed`` determines its PRNU and dark signal."""

    model: CameraModel
    unit: int
    seed: int
    serial: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        """A readable, unique name, e.g. ``SimCam-A_unit0``."""
        return f"{self.model.name}_unit{self.unit}"

    @property
    def width(self) -> int:
        return self.model.width

    @property
    def height(self) -> int:
        return self.model.height

    def prnu(self, *, include_model_pattern: bool = True) -> np.ndarray:
        """The true multiplicative pattern K (float32 H×W, sensor orientation, read-only, cached).

        With ``include_model_pattern`` (default) it is the whole K the sensor applies: the
        unit's own PRNU plus the model pattern its twins share; without, the unit's own part.
        """
        if include_model_pattern:
            return _gain_pattern(self.model, self.seed) - np.float32(1.0)
        return _unit_patterns(self.model, self.seed)[0]

    def dark_signal(self) -> np.ndarray:
        """The unit's dark signal in electrons per exposure (float32 H×W, read-only)."""
        return _unit_patterns(self.model, self.seed)[1]

    def _rng(self, rng: np.random.Generator | int | None, seed: int | None) -> np.random.Generator:
        if isinstance(rng, np.random.Generator):
            return rng
        if rng is not None:
            seed = int(rng)
        return np.random.default_rng([self.seed, 0x73686F74, int(seed or 0)])  # "shot"

    def raw(
        self,
        scene: np.ndarray | None = None,
        *,
        flat: bool = False,
        rng: np.random.Generator | int | None = None,
        seed: int | None = None,
    ) -> np.ndarray:
        """The raw Bayer frame of one exposure: float32 H×W in 0..1 of the ADC range."""
        model = self.model
        gen = self._rng(rng, seed)
        if scene is None:
            kind = "flat" if flat else str(gen.choice(["photo", "photo", "texture", "sky", "wall"]))
            scene = make_scene(kind, model.width, model.height, gen)
        if scene.shape[:2] != (model.height, model.width) or scene.ndim != 3:
            raise ValueError(
                f"scene is {scene.shape}, the sensor needs {model.height}×{model.width}×3; "
                "generate it with simulate.scene(kind, width, height, rng)"
            )
        # Electrons per unit radiance for each filter colour: spectral mix × sensitivity × full well.
        response = model.filter_response
        if response is None:
            response = np.eye(3, dtype=np.float32)
        response = response * (
            np.asarray(model.channel_sensitivity, np.float32)[:, None] * np.float32(model.full_well_e * model.exposure)
        )
        electrons = isp.mosaic(scene.astype(np.float32, copy=False), model.cfa, response)
        return sensor.expose(
            electrons,
            _gain_pattern(model, self.seed),
            self.dark_signal(),
            gen,
            read_noise_e=model.read_noise_e,
            full_well_e=model.full_well_e,
            adc_bits=model.adc_bits,
        )

    def develop(self, raw: np.ndarray) -> np.ndarray:
        """The in-camera processing of a raw frame → uint8 H×W×3 in sensor orientation."""
        model = self.model
        rgb = isp.demosaic(raw, model.cfa, model.demosaic)
        rgb *= np.float32(1.0 / model.exposure)
        rgb = isp.apply_white_balance_and_matrix(rgb, model.white_balance_gains, model.color_matrix)
        rgb = isp.luma_denoise(rgb, model.luma_denoise)
        return isp.tone_map(rgb, model.gamma)

    def shoot(
        self,
        scene: np.ndarray | None = None,
        *,
        flat: bool = False,
        rng: np.random.Generator | int | None = None,
        orientation: int = 0,
        seed: int | None = None,
    ) -> np.ndarray:
        """Take one picture: the developed image as uint8 H×W×3 (before JPEG).

        ``scene``: linear radiance (H×W×3, see ``simulate.scene``); when None a random scene
        is drawn (a flat field when ``flat``). ``rng`` (a Generator or a seed) or ``seed``
        makes the shot deterministic; the same seed gives the same picture, so pass a
        different one for every shot. ``orientation`` (0, 90, 180, 270) turns the stored
        pixels with ``np.rot90(image, orientation // 90)``: 90 and 270 give a portrait image.
        """
        image = self.develop(self.raw(scene, flat=flat, rng=rng, seed=seed))
        return _rotate(image, orientation)

    def exif(self, *, orientation_tag: int = 1, seed: int = 0) -> Image.Exif:
        """The EXIF this camera writes: make, model, orientation, date, body serial number."""
        exif = Image.Exif()
        exif[0x010F] = self.model.make
        exif[0x0110] = self.model.exif_model or self.model.name
        exif[0x0112] = int(orientation_tag)
        exif[0x0131] = "sensorprint.simulate"
        when = (_EPOCH + _dt.timedelta(minutes=int(seed) % 500_000)).strftime("%Y:%m:%d %H:%M:%S")
        exif[0x0132] = when
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = when
        sub[0xA431] = self.serial or f"SIM{self.seed:010d}"
        if self.model.lens_model:
            sub[0xA434] = self.model.lens_model
        return exif

    def save_jpeg(
        self,
        path: str | Path,
        *,
        flat: bool = False,
        seed: int = 0,
        quality: int | None = None,
        exif: bool = True,
        scene: np.ndarray | None = None,
        orientation: int = 0,
        rotate_pixels: bool = True,
        crop: tuple[int, int, int, int] | None = None,
        scale: float | None = None,
    ) -> Path:
        """Shoot and write a JPEG (Pillow, the model's quality and subsampling) with EXIF.

        ``orientation``: with ``rotate_pixels`` (default) the pixels are stored turned (a
        portrait image for 90/270) and EXIF orientation is 1; otherwise the pixels stay in
        sensor orientation and EXIF orientation says how to turn them for viewing.
        ``crop`` = (x, y, width, height) in sensor pixels and then ``scale`` (a factor,
        bicubic) are applied before the rotation, as an editor would.
        Returns the path written.
        """
        path = Path(path)
        image = self.shoot(scene, flat=flat, seed=seed)
        if crop is not None:
            x, y, w, h = (int(v) for v in crop)
            if x < 0 or y < 0 or w < 1 or h < 1 or x + w > image.shape[1] or y + h > image.shape[0]:
                raise ValueError(f"crop {crop} does not fit the {image.shape[1]}×{image.shape[0]} image")
            image = image[y : y + h, x : x + w]
        if scale is not None and scale != 1.0:
            h, w = image.shape[:2]
            size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
            image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.BICUBIC))
        tag = 1
        if rotate_pixels:
            image = _rotate(image, orientation)
        else:
            _rotate(image[:1, :1], orientation)  # validates the value
            tag = _EXIF_ORIENTATION[orientation]
        options: dict = {
            "quality": int(quality if quality is not None else self.model.jpeg_quality),
            "subsampling": self.model.jpeg_subsampling,
        }
        if exif:
            options["exif"] = self.exif(orientation_tag=tag, seed=seed).tobytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image)).save(path, format="JPEG", **options)
        return path

    def record_video(self, path: str | Path, **options) -> Path:
        """Record an H.264 video with this camera; ``options`` (seconds, fps, size, bitrate, motion,
        stabilise, seed, ...) and their defaults are those of ``simulate.video.record_video``."""
        from .video import record_video

        return record_video(self, path, **options)


_MODEL_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def default_models(n_models: int, *, width: int = 1024, height: int = 768, seed: int = 0) -> list[CameraModel]:
    """``n_models`` distinct camera models (different CFA, demosaicing, JPEG quality, colour)."""
    cfas = isp.CFA_PATTERNS
    qualities = (92, 90, 95, 88, 93, 85, 96, 91)
    # Each model has its own noise reduction (an ISP trait that camera-model classifiers see).
    denoise = (0.5, 0.2, 0.35, 0.6, 0.3, 0.45, 0.25, 0.55)
    models = []
    for m in range(n_models):
        rng = np.random.default_rng([seed, m, 0x6D646C])
        sens = (float(rng.uniform(0.45, 0.65)), 1.0, float(rng.uniform(0.6, 0.85)))
        models.append(
            CameraModel(
                name=f"SimCam-{_MODEL_LETTERS[m % 26]}{'' if m < 26 else m // 26}",
                width=width,
                height=height,
                cfa=cfas[m % len(cfas)],
                jpeg_quality=qualities[m % len(qualities)],
                demosaic=("bilinear", "malvar")[m % 2],
                luma_denoise=denoise[m % len(denoise)],
                jpeg_subsampling="4:2:0" if m % 3 else "4:2:2",
                channel_sensitivity=sens,
                gamma=float(rng.uniform(2.2, 2.6)),
                make="Sensorprint",
                seed=int(np.random.SeedSequence([seed, m, 1]).generate_state(1)[0]),
            )
        )
    return models


def make_cameras(
    n_models: int = 3,
    units_per_model: int = 2,
    *,
    width: int = 1024,
    height: int = 768,
    seed: int = 0,
    **model_options,
) -> list[Camera]:
    """``n_models × units_per_model`` cameras, model by model (units of one model adjacent).

    ``model_options`` (e.g. ``prnu_strength=0.006``) override fields of every ``CameraModel``.
    """
    cameras = []
    for model in default_models(n_models, width=width, height=height, seed=seed):
        if model_options:
            from dataclasses import replace

            model = replace(model, **model_options)
        for u in range(units_per_model):
            unit_seed = int(np.random.SeedSequence([seed, model.seed % (2**31), u, 2]).generate_state(1)[0])
            cameras.append(
                Camera(model=model, unit=u, seed=unit_seed, serial=f"{model.name[-1]}{u:03d}{unit_seed % 10**6:06d}")
            )
    return cameras


# (module, size relative to the main sensor, focal length in mm) of a phone's cameras
PHONE_MODULES = (("back wide", 1.0, 5.1), ("back ultra wide", 1.0, 1.5), ("front", 0.75, 2.7))


def make_phone(
    name: str = "SimPhone", n_modules: int = 3, *, width: int = 1024, height: int = 768, seed: int = 0
) -> list[Camera]:
    """One phone of ``n_modules`` camera modules (2 or 3): separate sensors that share the EXIF make and model.

    Each module writes its own EXIF lens model ("SimPhone back wide camera 5.1mm"), as phones do.
    The wide and ultra-wide sensors have the same size (``width``×``height``), as on many phones,
    so that the size alone cannot tell them apart; the front one is smaller.
    """
    if not 1 <= n_modules <= len(PHONE_MODULES):
        raise ValueError(f"a simulated phone has 1 to {len(PHONE_MODULES)} modules, not {n_modules}")
    from dataclasses import replace

    base = default_models(n_modules, width=width, height=height, seed=seed)
    cameras = []
    for m, (module, relative, focal) in enumerate(PHONE_MODULES[:n_modules]):
        w, h = int(width * relative) // 8 * 8, int(height * relative) // 8 * 8
        model = replace(
            base[0],
            name=f"{name}-{module.replace(' ', '-')}",
            width=w,
            height=h,
            seed=base[m].seed,
            exif_model=name,
            lens_model=f"{name} {module} camera {focal}mm",
        )
        unit_seed = int(np.random.SeedSequence([seed, model.seed % (2**31), 0, 3]).generate_state(1)[0])
        cameras.append(Camera(model=model, unit=0, seed=unit_seed, serial=f"P{unit_seed % 10**8:08d}"))
    return cameras
