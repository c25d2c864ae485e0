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
    video_denoiser, video_levels: the per-frame denoiser of QUERY videos
        (sensorprint.prnu.video_fast.frame_noise: "spatial" 3×3 Wiener, or "wavelet" with
        this many levels), chosen with the figures of benchmarks/video_throughput.py;
        reference videos always use the full 4-level wavelet (enrollment is done once).
    video_clean: remove the row/column means and the spectrum peaks from a video's aggregate
        residual (a scan, where the video is only ever the query, may skip it).
    frame_search: a query video whose aggregate matches no device is searched frame by frame
        for a similarity transform each (stabilised video: sensorprint.prnu.stabilised).
    adaptive_frames: a query video compared with devices starts from the frames above
        (n_frames) and, while some device is neither matched nor excluded, adds more frames
        (every other keyframe, then the other frames by coded size: sensorprint.prnu.adaptive)
        in doubling batches, deciding after each, until every device is decided or the clip ends.
    max_frames: with adaptive_frames, at most this many frames of a video (0: the whole clip).
    align_references: the frames of a REFERENCE video are aligned to the running estimate
        before they are summed when the video is stabilised (sensorprint.prnu.stabilised
        align_reference); a video that is not is summed as read.
    scene_alpha: attenuate the strong components of every image residual, reference and
        query alike, before matching (Li, TIFS 2010: sensorprint.prnu.scene.enhance_residual),
        α in units of the residual's standard deviation; None (default): not applied. Enroll
        and scan with the same value: a fingerprint and a query must be made alike.
    """

    sigma: float = 3.0
    frame_strategy: str = "even_keyframes"
    n_frames: int = 5
    seed: int = 0
    orientations: str = "sensor"
    video_denoiser: str = "spatial"
    video_levels: int = 4
    video_clean: bool = True
    frame_search: bool = True
    adaptive_frames: bool = True
    max_frames: int = 0
    align_references: bool = True
    scene_alpha: float | None = None

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
