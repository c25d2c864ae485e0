"""Use case: do two media share a source camera, or does a medium come from an enrolled device?

PRNU decides (PCE against the threshold). With `case`, the case's trained networks (CNN of
Bennabhaktula et al. 2022) also classify the query (and B when it is a file); their answers
are shown beside the PRNU decision, never merged into it silently: a difference between the
two methods is stated in the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sensorprint import __version__
from sensorprint.errors import CaseError, MediaError
from sensorprint.prnu import FingerprintAccumulator
from sensorprint.store import Case
from sensorprint.workflow.classify import NetworkRef, classify_rows, current_networks
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
    cnn: list[dict] = field(default_factory=list)  # one entry per (file, network): see `cnn_answer`
    cnn_notes: list[str] = field(default_factory=list)  # stale or refused networks, failures

    def rows(self) -> list[tuple[str, str]]:
        rows = [
            ("decision", f"{self.decision} (PCE {'≥' if self.decision == 'match' else '<'} {self.threshold:g})"),
            ("PCE", f"{self.pce:.1f}"),
            ("false-alarm probability", f"{self.p_fa:.3g}"),
            ("transform", self.transform),
        ]
        for answer in self.cnn:
            rows.append((f"CNN {answer['network']} on {answer['file']}", answer["text"]))
        rows += [("CNN note", note) for note in self.cnn_notes]
        comparison = self.cnn_comparison()
        if comparison:
            rows.append(("PRNU and CNN", comparison))
        rows += [
            ("SHA-256 of A", self.sha256_a),
            ("SHA-256 of B", self.sha256_b or "(enrolled device)"),
            ("sensorprint", __version__),
        ]
        return rows

    def cnn_comparison(self) -> str | None:
        """Whether the camera-device network agrees with the PRNU decision (None without that network).

        Against an enrolled device B, the network agrees when it names B; for two files, when it
        names the same enrolled device for both (a closed-set answer: it cannot tell two cameras
        it was never trained on apart, which the text says by naming the classes).
        """
        device_answers = {a["file"]: a for a in self.cnn if a["target_kind"] == "device"}
        if "A" not in device_answers:
            return None
        label_a = device_answers["A"]["label"]
        if self.sha256_b is None:  # B is an enrolled device
            cnn_same = label_a == self.b
            said = f"the camera-device network names {label_a} for A"
        elif "B" in device_answers:
            label_b = device_answers["B"]["label"]
            cnn_same = label_a == label_b and label_a != "unknown"
            said = f"the camera-device network names {label_a} for A and {label_b} for B"
        else:
            return None
        prnu_same = self.decision == "match"
        text = f"PRNU says {self.decision}; {said}"
        return ("agree: " if cnn_same == prnu_same else "DISAGREE: ") + text


def cnn_answer(ref: NetworkRef, rows: list[dict], file: str) -> dict:
    """One network's answer for one file, from its result rows (as a scan stores them)."""
    details = rows[0]["details"]
    matched = [row["target"] for row in rows if row["decision"] == "match"]
    label = matched[0] if matched else "unknown"
    probabilities = details["probabilities"]
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{name} {p:.2f}" for name, p in ranked[:4])
    plural = {"patch": "patches", "frame": "frames"}.get(details["unit"], details["unit"] + "s")
    units = f"{details['units']} {details['unit'] if details['units'] == 1 else plural}"
    if matched:
        text = f"{label} (probability {probabilities[label]:.2f} from {units}; {shown})"
    else:
        text = f"unknown camera ({details.get('reason', '')}; {shown})"
    if details.get("network_stale"):
        text += f" [network stale: {details['network_stale']}]"
    if details.get("content_caveat"):
        text += f" [{details['content_caveat']}]"
    return {
        "file": file,
        "network": ref.title,
        "target_kind": ref.target_kind,
        "model_id": ref.model_id,
        "label": label,
        "probabilities": probabilities,
        "text": text,
        "details": details,
    }


def _signal_or_error(path: Path, options: ScanOptions, *, keep_pixels: bool = False):
    facts, signal = query_signal(path, options.signal, keep_pixels=keep_pixels)
    if signal is None:
        raise MediaError(f"{path}: {facts.error}")
    return facts, signal


def verify(a: Path, b: str, *, case: Path | None = None, options: ScanOptions = ScanOptions()) -> Verdict:
    """Compare file A with file B, or with the device named B in `case`.

    For two files, B plays the reference: its one-medium fingerprint estimate is the K that
    A's residual is tested against, with the same geometric search as a scan.
    """
    networks: list[NetworkRef] = []
    notes: list[str] = []
    if case is not None:
        with Case.open(case, read_only=True) as opened:
            networks, notes = current_networks(opened)
    keep = bool(networks)
    facts_a, signal_a = _signal_or_error(Path(a), options, keep_pixels=keep)
    sha_a = facts_a.medium.sha256  # kept before the roles may be swapped below
    answers: list[dict] = []

    def classify(facts, signal, file: str) -> None:
        rows, failures = classify_rows(networks, signal.pixels, is_video=signal.intensity is None, frames=facts.frames)
        notes.extend(f"{file}: {line}" for line in failures)
        for ref in networks:
            mine = [row for row in rows if row["details"]["model_id"] == ref.model_id]
            if mine:
                answers.append(cnn_answer(ref, mine, file))

    if networks:
        classify(facts_a, signal_a, "A")
    if case is not None and not Path(b).exists():
        with Case.open(case) as opened:
            devices = enrolled_fingerprints(opened)
            if b not in devices:
                raise CaseError(f"{b!r} is neither a file nor a device enrolled in {case}")
            row = match_device(signal_a, devices[b], None, options.threshold, orientations=options.signal.orientations)
        sha_b = None
    else:
        facts_b, signal_b = _signal_or_error(Path(b), options, keep_pixels=keep)
        sha_b = facts_b.medium.sha256
        if networks:
            classify(facts_b, signal_b, "B")
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
        row = compare(
            signal_a, k, None, options.threshold, k_is_video=b_is_video, orientations=options.signal.orientations
        )
    return Verdict(
        a=str(a),
        b=str(b),
        pce=row["score"],
        p_fa=row["p_fa"],
        decision=row["decision"],
        transform=row["details"].get("transform_text") or row["details"].get("reason", "-"),
        threshold=options.threshold,
        sha256_a=sha_a,
        sha256_b=sha_b,
        cnn=answers,
        cnn_notes=notes,
    )
