"""The adaptive read of a query video: which frames next, with what weight, and when to stop.

A short or strongly compressed clip seldom decides on a few keyframes, yet holds many more
frames; a long clip of good quality decides on the first few. The aggregate residual
(Chen et al., TIFS 2008) is therefore grown batch by batch and decided after each batch
against the devices compared, and the read stops once every device is decided or the clip
ends (a sequential test: `prnu.decision.compare` counts each look in the false-alarm
probability, a union bound).

Frame order. The quantisation proxy is the frame's coded size in bits per pixel, read from
the container's packet sizes while indexing (no decoding), with the frame type (a keyframe
or not). Why: in a rate-controlled H.264/HEVC stream the quantiser step is not exposed by
FFmpeg, but at a given resolution a frame coded with fewer bits is coded with a coarser step
or copies more of its reference (skipped and predicted blocks carry no new noise); the PRNU
survives in the prediction residual the encoder spends bits on. A keyframe is coded without
prediction, so its noise is its own: keyframes come first (in the order the strategy chose,
then the others spread over the clip), then the other frames by decreasing bits per pixel
(ties by position, so the same file gives the same order). Their weight is scaled by their
size relative to the median keyframe's (`coded_share`), at most 1: a P-frame of a tenth of
a keyframe's bits counts a tenth, its noise being largely its reference's.

Batches double (5, 5, 10, 20, ... frames) so that a clip of F frames is decided about
log₂(F/5) times: the extra decisions cost little next to the frames' residuals.

Pure functions on lists of numbers: no files, no state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..results import Decision, Match
from .decision import searched_weak


def coded_share(frame_bytes: float, keyframe_bytes: float) -> float:
    """A frame's weight factor for quantisation: its coded size over the median keyframe's, in 0..1.

    frame_bytes, keyframe_bytes: packet sizes in bytes (same resolution, so proportional
    to bits per pixel). 1 for a keyframe itself, or when the keyframe size is unknown (0).
    """
    if keyframe_bytes <= 0:
        return 1.0
    return float(min(1.0, max(0.0, frame_bytes / keyframe_bytes)))


def frame_order(keyframes: Sequence[bool], sizes: Sequence[int], first: Iterable[int] = ()) -> list[int]:
    """Presentation positions of a video's frames in the order the adaptive read adds them.

    keyframes: per frame in presentation order, whether it is a keyframe. sizes: its
    packet size in bytes. first: positions already chosen (the strategy's first batch),
    kept first in their order. Then the other keyframes, spread over the clip (each next
    one the farthest from those taken; ties to the earlier), then the other frames by
    decreasing size, ties by position. Deterministic: the same index gives the same order.
    """
    if len(keyframes) != len(sizes):
        raise ValueError(f"{len(keyframes)} keyframe flags for {len(sizes)} packet sizes")
    order = [p for p in dict.fromkeys(first) if 0 <= p < len(sizes)]
    taken = set(order)
    keys = [p for p, key in enumerate(keyframes) if key and p not in taken]
    chosen = list(order)
    while keys:
        if chosen:
            best = max(keys, key=lambda p: (min(abs(p - c) for c in chosen), -p))
        else:
            best = keys[0]
        keys.remove(best)
        chosen.append(best)
        order.append(best)
        taken.add(best)
    rest = sorted((p for p in range(len(sizes)) if p not in taken), key=lambda p: (-sizes[p], p))
    return order + rest


def batches(order: Sequence[int], first: int, cap: int | None = None) -> list[list[int]]:
    """The frame order cut into batches: `first` frames, then as many again, then doubling.

    cap: at most this many frames in all (None: every frame; 0: none). Each batch is sorted by
    position (frames are decoded forward in a run).
    """
    frames = list(order if cap is None else order[: max(int(cap), 0)])
    out, start, size = [], 0, max(1, int(first))
    while start < len(frames):
        out.append(sorted(frames[start : start + size]))
        start += size
        size = max(size, start)
    return out


def settled(found: Match) -> bool:
    """Whether more frames could not change this device's answer: a match, a "no match", or no comparison made.

    Inconclusive because the query was too weak (`Calibration.expected` under the
    threshold) or the PCE fell short of a searched threshold: more frames may decide it.
    Inconclusive because no comparison could be made (`PrnuEvidence.reason`, e.g. a query
    larger than an image fingerprint), or because a weak fingerprint was searched (it decides
    no searched match however strong the query grows, `prnu.decision.decide`): they cannot.
    """
    if found.decision in (Decision.MATCH, Decision.NO_MATCH):
        return True
    evidence = found.evidence
    return searched_weak(evidence.weak_fingerprint, evidence.n_positions) or evidence.reason is not None


def all_settled(found: Iterable[Match]) -> bool:
    """The stopping rule of the adaptive read: every device compared is settled (`settled`)."""
    return all(settled(m) for m in found)
