"""Camera fingerprint K: the maximum-likelihood estimate of Chen, Fridrich, Goljan & Lukáš (TIFS 2008).

I = I₀ + I₀·K + Θ, so from residuals Wᵢ of images Iᵢ: K = Σ WᵢIᵢ / Σ Iᵢ²
(per pixel; saturated pixels contribute nothing). The estimate is then cleaned
like a residual (zero-mean on the CFA sub-lattices, Wiener filtering in the DFT
domain) to remove what all units of a model share.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import MatchError
from .geometry import orient
from .residual import extract_residual, intensity, wiener_dft, zero_mean_cfa


@dataclass(frozen=True)
class Fingerprint:
    """A camera fingerprint.

    k: float32 H×W, in the sensor's orientation (that of the first image added).
    n_media: the number of images (or frames) behind it.
    quality: split-half reliability: the correlation between the estimates from
    the odd-numbered and the even-numbered media (0..1; 0 with fewer than two
    media). Near 1: a strong, well-averaged fingerprint; under about 0.05: weak
    (few, dark or textured media).
    """

    k: np.ndarray
    n_media: int
    quality: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.k.shape[0]), int(self.k.shape[1]))


class FingerprintAccumulator:
    """Streaming maximum-likelihood fingerprint estimate K = Σ wᵢWᵢIᵢ / Σ wᵢIᵢ² (Chen et al. 2008).

    Media alternate between two half-sums (for the split-half quality). Two
    accumulators of the same sensor merge with `merge` (sums of partial sums), so
    enrollment can run in parallel. Picklable.
    """

    def __init__(self, shape: tuple[int, int] | None = None, *, halves: int = 2):
        self.shape: tuple[int, int] | None = tuple(shape) if shape is not None else None  # type: ignore[assignment]
        self.n_media = 0
        if halves not in (1, 2):
            raise ValueError(f"halves must be 1 or 2, not {halves}")
        self.halves = halves  # 1: one sum (a query aggregate, no quality); 2: split halves for the quality
        self._num: list[np.ndarray] | None = None  # Σ wWI for each half
        self._den: list[np.ndarray] | None = None  # Σ wI² for each half
        if self.shape is not None:
            self._allocate()

    def _allocate(self) -> None:
        assert self.shape is not None
        self._num = [np.zeros(self.shape, np.float32) for _ in range(self.halves)]
        self._den = [np.zeros(self.shape, np.float32) for _ in range(self.halves)]

    def _estimate(self) -> np.ndarray:
        assert self._num is not None and self._den is not None
        if self.halves == 1:
            return self._num[0] / (self._den[0] + np.float32(1.0))
        return (self._num[0] + self._num[1]) / (self._den[0] + self._den[1] + np.float32(1.0))

    def estimate(self, *, clean: bool = True) -> np.ndarray:
        """K (or a query video's aggregated residual) without the quality: Σ wWI / (Σ wI² + 1), cleaned when asked.

        clean: zero-mean on the CFA sub-lattices and Wiener filtering in the DFT domain
        (`clean_fingerprint`); a query aggregate compared with a clean fingerprint scores the
        same without them.
        """
        if self.n_media == 0 or self._num is None:
            raise MatchError("no media were added to this fingerprint: enroll at least one image")
        estimate = self._estimate()
        return clean_fingerprint(estimate) if clean else estimate.astype(np.float32, copy=False)

    def add(self, image: np.ndarray, *, residual: np.ndarray | None = None, weight: float = 1.0) -> int:
        """Add one image (H×W×3 or H×W float32, 0..255, pixels as stored).

        residual: its residual when already computed (same H×W). weight: its
        weight (video frames: `frame_weight`). An image in the other orientation
        (transposed shape) is turned by 90° or 270°, whichever correlates better
        with the estimate so far (90° when there is none yet). Returns the
        rotation applied, in degrees counter-clockwise (0, 90 or 270).
        Raises MatchError for a size that fits neither orientation.
        """
        img = np.asarray(image, dtype=np.float32)
        w = extract_residual(img) if residual is None else np.asarray(residual, dtype=np.float32)
        inten = intensity(img)
        if w.shape != inten.shape:
            raise ValueError(f"residual shape {w.shape} differs from image shape {inten.shape}")
        if self.shape is None:
            self.shape = (int(inten.shape[0]), int(inten.shape[1]))
            self._allocate()
        rotation = 0
        if inten.shape != self.shape:
            if inten.shape[::-1] != self.shape:
                raise MatchError(
                    f"image of {inten.shape[1]}×{inten.shape[0]} pixels does not fit a fingerprint of "
                    f"{self.shape[1]}×{self.shape[0]}: enroll only full-size media of one camera"
                )
            rotation = self._choose_rotation(w * inten)
            k = rotation // 90
            w = np.rot90(w, k)
            inten = np.rot90(inten, k)
        assert self._num is not None and self._den is not None
        half = self.n_media % self.halves
        wt = np.float32(weight)
        product = w * inten  # in place from here: a 1080p frame is 8 MB, a sensor 40 MB
        inten *= inten
        if weight != 1.0:  # two passes over the image saved for the common case
            product *= wt
            inten *= wt
        self._num[half] += product
        self._den[half] += inten
        self.n_media += 1
        return rotation

    def add_placed(
        self,
        image: np.ndarray,
        *,
        residual: np.ndarray | None = None,
        rotation: int = 0,
        flip: bool = False,
        offset: tuple[int, int] = (0, 0),
    ) -> None:
        """Add a crop of the sensor's frame at the place it was cut from (Goljan & Fridrich, SPIE 2008).

        The image's W·I and I² are mirrored (`flip`), turned (`rotation`, degrees
        counter-clockwise, as ``np.rot90``) and added at `offset` (row, col of their
        top-left corner) of this accumulator's grid, as a `Transform` found by the crop
        search of its residual against the fingerprint says. Pixels outside the crop get
        nothing: the per-pixel ΣI² of the estimate K = ΣWI/ΣI² (Chen et al. 2008) already
        weighs each pixel by what covers it. The accumulator's shape must be set.
        Raises MatchError when the placed crop does not lie inside the grid.
        """
        if self.shape is None:
            raise MatchError("the accumulator's sensor size must be known before a crop is placed in it")
        img = np.asarray(image, dtype=np.float32)
        w = extract_residual(img) if residual is None else np.asarray(residual, dtype=np.float32)
        inten = intensity(img)
        if w.shape != inten.shape:
            raise ValueError(f"residual shape {w.shape} differs from image shape {inten.shape}")
        product, energy = orient(w * inten, rotation, flip), orient(inten * inten, rotation, flip)
        top, left = int(offset[0]), int(offset[1])
        h, wd = product.shape
        if top < 0 or left < 0 or top + h > self.shape[0] or left + wd > self.shape[1]:
            raise MatchError(
                f"a crop of {wd}×{h} pixels at ({top}, {left}) does not lie inside the {self.shape[1]}×"
                f"{self.shape[0]} sensor"
            )
        assert self._num is not None and self._den is not None
        half = self.n_media % self.halves
        self._num[half][top : top + h, left : left + wd] += product
        self._den[half][top : top + h, left : left + wd] += energy
        self.n_media += 1

    def add_products(self, wi: np.ndarray, energy: np.ndarray, *, weight: float = 1.0) -> int:
        """Add one medium given as its products W·I and I² (H×W, the accumulator's size), as `add` would sum them.

        For frames brought into the fingerprint's geometry first (`prnu.stabilised.align_reference`):
        pixels the frame does not cover carry 0 in both, so they add nothing there. Products in
        the other orientation are turned as `add` turns an image; returns the rotation applied.
        """
        wi, energy = np.asarray(wi, dtype=np.float32), np.asarray(energy, dtype=np.float32)
        if self.shape is None:
            self.shape = (int(wi.shape[0]), int(wi.shape[1]))
            self._allocate()
        if wi.shape != energy.shape or (wi.shape != self.shape and wi.shape[::-1] != self.shape):
            raise ValueError(f"products of {wi.shape} / {energy.shape} do not fit an estimate of {self.shape}")
        rotation = 0
        if wi.shape != self.shape:  # the other orientation: turned as `add` turns it
            rotation = self._choose_rotation(wi)
            wi, energy = np.rot90(wi, rotation // 90), np.rot90(energy, rotation // 90)
        assert self._num is not None and self._den is not None
        half = self.n_media % self.halves
        if weight != 1.0:
            wi, energy = wi * np.float32(weight), energy * np.float32(weight)
        self._num[half] += wi
        self._den[half] += energy
        self.n_media += 1
        return rotation

    def _choose_rotation(self, signal: np.ndarray) -> int:
        if self.n_media == 0:
            return 90
        est = self._estimate()
        # Correlation of W·I with the estimate so far, for both ways of turning (K itself is not symmetric).
        scores = {
            rotation: float(np.sum(np.rot90(signal, rotation // 90) * est, dtype=np.float64)) for rotation in (90, 270)
        }
        return max(scores, key=scores.__getitem__)

    def merge(self, other: FingerprintAccumulator) -> FingerprintAccumulator:
        """Add the partial sums of `other` (same sensor, same orientation) to this one; returns self."""
        if other.n_media == 0:
            return self
        if self.shape is None or self.n_media == 0:
            self.shape = other.shape
            self._allocate()
        if other.halves != self.halves:
            raise ValueError("cannot merge estimates kept in a different number of halves")
        if other.shape != self.shape:
            raise MatchError(
                f"cannot merge fingerprint estimates of {other.shape} and {self.shape} pixels: they are not one sensor"
            )
        assert self._num is not None and self._den is not None and other._num is not None and other._den is not None
        # Keep the split halves balanced: an odd count here swaps the other's halves.
        swap = self.n_media % 2 if self.halves == 2 else 0
        for half in range(self.halves):
            self._num[half ^ swap] += other._num[half]
            self._den[half ^ swap] += other._den[half]
        self.n_media += other.n_media
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The partial sums as plain arrays (to keep them on disk, e.g. with numpy.savez)."""
        if self._num is None or self._den is None:
            return {"n_media": np.array(self.n_media)}
        return {
            "n_media": np.array(self.n_media),
            "num": np.stack(self._num),
            "den": np.stack(self._den),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> FingerprintAccumulator:
        """The accumulator whose `state()` this was."""
        if "num" not in state:
            return cls()
        accumulator = cls(tuple(state["num"].shape[1:]), halves=int(state["num"].shape[0]))
        accumulator._num = [np.array(a, dtype=np.float32) for a in state["num"]]
        accumulator._den = [np.array(a, dtype=np.float32) for a in state["den"]]
        accumulator.n_media = int(state["n_media"])
        return accumulator

    def __iadd__(self, other: FingerprintAccumulator) -> FingerprintAccumulator:
        return self.merge(other)

    def result(self) -> Fingerprint:
        """The fingerprint: K, then zero-mean on the CFA sub-lattices and Wiener filtering in the DFT domain."""
        if self.n_media == 0 or self._num is None or self._den is None:
            raise MatchError("no media were added to this fingerprint: enroll at least one image")
        k = clean_fingerprint(self._estimate())
        quality = 0.0
        if self.n_media >= 2 and self.halves == 2:
            halves = [n / (d + np.float32(1.0)) for n, d in zip(self._num, self._den)]
            quality = _correlation(zero_mean_cfa(halves[0]), zero_mean_cfa(halves[1]))
        return Fingerprint(k=k, n_media=self.n_media, quality=max(quality, 0.0))


def clean_fingerprint(k: np.ndarray) -> np.ndarray:
    """Zero-mean on the CFA sub-lattices, then Wiener filtering in the DFT domain (float32)."""
    return wiener_dft(np.asarray(k, dtype=np.float32), zero_mean=True)  # the zero-mean is done exactly in the DFT


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    x = a.ravel().astype(np.float64)
    y = b.ravel().astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    d = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y) / d) if d > 0 else 0.0


def estimate_fingerprint(images: Iterable[np.ndarray]) -> Fingerprint:
    """Fingerprint from an iterable of images (H×W×3 or H×W float32, 0..255) of one camera (Chen et al. 2008)."""
    acc = FingerprintAccumulator()
    for image in images:
        acc.add(image)
    return acc.result()
