"""The parameters of a run: recorded with every run in the case, so any result can be reproduced."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sensorprint.prnu import DEFAULT_PCE_THRESHOLD


@dataclass(frozen=True)
class SignalOptions:
    """How a medium becomes a noise signal.

    sigma: the denoiser's noise level sigma0, in grey levels (Mihcak et al. 1999; 3 is the
        Binghamton default for images).
    frame_strategy, n_frames, seed: which video frames are used ("even_keyframes",
        "keyframes", "random", "even", "all"; see sensorprint.media.read_frames); n_frames
        caps every strategy.
    orientations: "sensor" compares a query as stored, or turned by 90°/270° when its
        pixels are stored in portrait (how cameras write them); "all" also tries 180° and
        mirrored copies (software-rotated or selfie-mirrored media), at the price of higher
        wrong-pair PCEs between units of one model (see sensorprint.prnu.match).
    """

    sigma: float = 3.0
    frame_strategy: str = "even_keyframes"
    n_frames: int = 5
    seed: int = 0
    orientations: str = "sensor"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ScanOptions:
    """How evidence is matched.

    threshold: the PCE at or above which a device is declared the source (Goljan et al. 2009: 60).
    signal: how each file becomes a noise signal.
    """

    threshold: float = DEFAULT_PCE_THRESHOLD
    signal: SignalOptions = SignalOptions()

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, **self.signal.to_dict()}
