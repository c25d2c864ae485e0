"""Use case: do two media share a source camera, or does a medium come from an enrolled device?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sensorprint import __version__
from sensorprint.errors import CaseError, MediaError
from sensorprint.prnu import FingerprintAccumulator
from sensorprint.store import Case
from sensorprint.workflow.options import ScanOptions
from sensorprint.workflow.scan import enrolled_fingerprints
from sensorprint.workflow.signals import compare, match_device, query_signal


@dataclass
class Verdict:
    a: str
    b: str
    pce: float
    p_fa: float
    decision: str
    transform: str
    threshold: float
    sha256_a: str
    sha256_b: str | None

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("decision", f"{self.decision} (PCE {'≥' if self.decision == 'match' else '<'} {self.threshold:g})"),
            ("PCE", f"{self.pce:.1f}"),
            ("false-alarm probability", f"{self.p_fa:.3g}"),
            ("transform", self.transform),
            ("SHA-256 of A", self.sha256_a),
            ("SHA-256 of B", self.sha256_b or "(enrolled device)"),
            ("sensorprint", __version__),
        ]


def _signal_or_error(path: Path, options: ScanOptions):
    facts, signal = query_signal(path, options.signal)
    if signal is None:
        raise MediaError(f"{path}: {facts.error}")
    return facts, signal


def verify(a: Path, b: str, *, case: Path | None = None, options: ScanOptions = ScanOptions()) -> Verdict:
    """Compare file A with file B, or with the device named B in `case`.

    For two files, B plays the reference: its one-medium fingerprint estimate is the K that
    A's residual is tested against, with the same geometric search as a scan.
    """
    facts_a, signal_a = _signal_or_error(Path(a), options)
    if case is not None and not Path(b).exists():
        with Case.open(case) as opened:
            devices = enrolled_fingerprints(opened)
            if b not in devices:
                raise CaseError(f"{b!r} is neither a file nor a device enrolled in {case}")
            row = match_device(signal_a, devices[b], None, options.threshold)
        sha_b = None
    else:
        facts_b, signal_b = _signal_or_error(Path(b), options)
        if signal_a.residual.size > signal_b.residual.size:
            # the larger medium plays the reference: the smaller may be a crop or a scaled copy of it
            facts_a, signal_a, facts_b, signal_b = facts_b, signal_b, facts_a, signal_a
        b_is_video = signal_b.intensity is None
        if b_is_video:  # its aggregate already estimates K
            k = signal_b.residual
        else:
            accumulator = FingerprintAccumulator(signal_b.residual.shape)
            accumulator.add(signal_b.intensity, residual=signal_b.residual)
            k = accumulator.result().k
        row = compare(signal_a, k, None, options.threshold, k_is_video=b_is_video)
        sha_b = facts_b.medium.sha256
    return Verdict(
        a=str(a),
        b=str(b),
        pce=row["score"],
        p_fa=row["p_fa"],
        decision=row["decision"],
        transform=row["details"].get("transform_text") or row["details"].get("reason", "-"),
        threshold=options.threshold,
        sha256_a=facts_a.medium.sha256,
        sha256_b=sha_b,
    )
