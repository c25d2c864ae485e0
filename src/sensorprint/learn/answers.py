"""A network's `Prediction` for one file as result-contract matches: one `Match` per class.

score = the class probability (mean softmax of the file's patches or frames); decision
match for the predicted class and no match for the others, or unknown on every class when
the evidence (mean top-class logit) is below the open-set threshold calibrated on held-out
reference files (Bennabhaktula et al. 2022), or when the file gave no patch or frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensorprint.results import CnnEvidence, Decision, Match, Method, TargetKind

NO_UNIT_REASON = "no patch or frame could be taken from the file (smaller than the network's input?)"


@dataclass(frozen=True)
class NetworkIdentity:
    """Which of the case's networks answered: its id, title, target kind and classes, and why it is stale."""

    model_id: int
    title: str
    target_kind: TargetKind
    classes: tuple[str, ...]
    stale_reason: str | None = None


def _decisions(prediction, classes: tuple[str, ...]) -> tuple[dict[str, Decision], str | None]:
    if prediction.n_units == 0:
        return dict.fromkeys(classes, Decision.UNKNOWN), NO_UNIT_REASON
    if prediction.label == "unknown":
        reason = (
            f"unknown camera: evidence {prediction.evidence:.3g} (mean logit of the top class "
            f"{prediction.top_label}) is below the threshold {prediction.threshold:.3g} calibrated on "
            "held-out reference files"
        )
        return dict.fromkeys(classes, Decision.UNKNOWN), reason
    return {c: (Decision.MATCH if c == prediction.label else Decision.NO_MATCH) for c in classes}, None


def prediction_matches(
    network: NetworkIdentity, prediction, *, is_video: bool, frames: list[dict] | None = None
) -> list[Match]:
    """One match per class of the network for one file's `learn.Prediction`."""
    decisions, reason = _decisions(prediction, network.classes)
    evidence = CnnEvidence(
        model_id=network.model_id,
        network=network.title,
        probabilities={c: round(float(p), 6) for c, p in prediction.probabilities.items()},
        top=prediction.top_label,
        evidence=round(float(prediction.evidence), 6),
        unknown_threshold=float(prediction.threshold),
        units=prediction.n_units,
        unit=prediction.unit,
        votes=dict(prediction.votes),
        vote_label=prediction.vote_label,
        combined=f"mean softmax over the {'video' if is_video else 'image'}'s "
        f"{'frames' if is_video else 'units'}; majority vote beside it",
        frames=[f.get("index") for f in frames] if is_video and frames else None,
        flat_share=None if prediction.flat_share is None else round(float(prediction.flat_share), 4),
        content_caveat=prediction.caveat or None,
        reason=reason,
        network_stale=network.stale_reason,
    )
    return [
        Match(
            Method.CNN,
            c,
            float(prediction.probabilities.get(c, 0.0)),
            decisions[c],
            network.target_kind,
            evidence=evidence,
        )
        for c in network.classes
    ]
