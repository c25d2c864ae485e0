"""What the report adds to each decision: its likelihood ratio, the measured error rates, the JPEG structure.

Both come from the case's latest `sensorprint validate` run (`workflow.validate`). A device
whose fingerprints changed since that run (a later enrollment or correction) has no figures:
they described another fingerprint, and the report says so instead of reusing them.

The JPEG structure of each file is compared with each device's reference files
(`media.structure.compare_structure`): model-level corroboration shown beside PRNU and
the CNN, never a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sensorprint.media.structure import compare_structure
from sensorprint.store import Case
from sensorprint.workflow.validate import (
    Validation,
    current_fingerprint_ids,
    decision_likelihood_ratio,
    latest_validation,
    likelihood_system,
)


def case_validation(case: Case) -> tuple[Validation | None, set[str]]:
    """The latest validation and the devices it still describes (fingerprints unchanged since)."""
    found = latest_validation(case)
    if found is None:
        return None, set()
    now = current_fingerprint_ids(case)
    return found, {r.device for r in found.devices if now.get(r.device) == tuple(r.fingerprint_ids)}


def _percent(rate) -> str:
    low, high = rate.interval()
    return f"{rate.k}/{rate.n} ({rate.rate:.1%}; 95% interval {low:.1%}-{high:.1%})"


def rate_lines(found: Validation | None, current: set[str]) -> list[str]:
    """One sentence per device for the limitations section, or why there is none."""
    if found is None:
        return [
            "This case's own error rates were not measured (`sensorprint validate`): the false-alarm probabilities "
            "rest on the Gaussian model alone."
        ]
    lines = []
    for r in found.devices:
        if r.device not in current:
            lines.append(f"{r.device}: its fingerprint changed after validation run {found.run_id}; validate again.")
        elif r.true_match.n and r.false_alarm.n:
            lines.append(
                f"Measured on this case (validation run {found.run_id}), {r.device}: {_percent(r.true_match)} of its "
                f"held-out reference files matched; {_percent(r.false_alarm)} of the media of other sources "
                "matched it (false alarms)."
            )
        else:
            lines.append(f"{r.device}: too few media of known source to measure its error rates.")
    return lines


def add_likelihood_ratios(records: list[dict[str, Any]], found: Validation | None, current: set[str]) -> None:
    """Give each PRNU comparison of a validated device the score-based LR of its p_fa (pooled case scores)."""
    system = likelihood_system(found) if found is not None else None  # fitted once for every comparison
    for record in records:
        for device, entry in record.get("devices", {}).items():
            details: Mapping[str, Any] = entry.get("details") or {}
            lr = decision_likelihood_ratio(system, details.get("log10_p_fa")) if device in current else None
            entry["likelihood_ratio"] = (
                None
                if lr is None
                else {
                    "log10": lr.log10_lr,
                    "bounded": lr.bounded,
                    "thin": lr.thin,
                    "n_same": lr.n_same,
                    "n_different": lr.n_different,
                    "validation_run": found.run_id,
                }
            )


def add_structure_checks(records: list[dict[str, Any]], references: Mapping[str, list[Mapping[str, Any]]]) -> None:
    """Give each PRNU comparison the check of the file's JPEG structure against that device's references."""
    for record in records:
        for device, entry in record.get("devices", {}).items():
            check = compare_structure(record.get("metadata"), references.get(device, []))
            entry["structure"] = {"state": str(check.state), "reasons": list(check.reasons)}
