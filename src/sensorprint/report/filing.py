"""The parts of a report that make it fileable: case identity, methodology, limitations, chain of custody.

Identity and notes come from the case (`store.identity`); the methodology and the
limitations are fixed text with the case's own figures (threshold, searched positions,
the networks' measured validation accuracy); the chain of custody gives each evidence
file's SHA-256 at acquisition (where the examiner recorded it), at scan, and at report
(the file read again when the report is written, read-only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sensorprint.errors import SensorprintError
from sensorprint.hashing import sha256_of_file
from sensorprint.store import Case
from sensorprint.store import identity as ident


def identity_section(case: Case) -> dict[str, Any]:
    """Case number, examiner, organisation, title, exhibits and notes, as stored (None where not set)."""
    found = ident.identity(case)
    return {
        "case_number": found.case_number,
        "examiner": found.examiner,
        "organisation": found.organisation,
        "title": found.title,
        "exhibits": [{"root": root, "exhibit": number} for root, number in sorted(found.exhibits.items())],
        "notes": [{"time": n.time, "subject": n.subject, "text": n.text, "author": n.author} for n in found.notes],
    }


def methodology_section(threshold: Mapping[str, Any]) -> list[str]:
    """How the answers were reached, in paragraphs (with this report's threshold)."""
    return [
        "Each evidence file was read without being modified; its SHA-256 identifies the bytes examined.",
        "PRNU (photo-response non-uniformity): a noise residual W = I - F(I) was extracted from each image or "
        "video frame with a wavelet denoiser (Mihcak et al. 1999); each device's fingerprint K was estimated from "
        "its reference media by the maximum-likelihood estimator K = sum(W I) / sum(I^2) (Chen et al. 2008), "
        "then zero-meaned and Wiener-filtered.",
        "Each file's residual was cross-correlated with every fingerprint over the positions, orientations and "
        "scales searched; the peak-to-correlation energy (PCE) of the peak decides (Goljan 2009): a match at "
        f"PCE >= {threshold['pce']:g}. The false-alarm probability p_fa counts every position searched, so a "
        "wide search never outranks an aligned one.",
        "Where the case holds a trained network, a CNN whose first layer is a constrained high-pass convolution "
        "(Bennabhaktula et al. 2022) also classified each file; its answer is given beside the PRNU decision and "
        "a disagreement is flagged, never resolved silently.",
    ]


def limitations_section(threshold: Mapping[str, Any], models: list[Mapping[str, Any]]) -> list[str]:
    """What the answers cannot say, with the case's own measured error rates where they exist."""
    lines = [
        f"The false-alarm probability per searched position at this threshold is {threshold['p_fa_per_position']:.1e} "
        "under a Gaussian model of unrelated correlations; real cameras, especially units of one model and "
        "strongly compressed, stabilised or rescaled video, can reach higher PCEs between unrelated pairs.",
        "'No match' says that this device's fingerprint was not found in the file; it does not exclude the "
        "device where the file was heavily processed, cropped or too dark or textured to carry the fingerprint.",
        "A fingerprint is only as good as its reference media: a weak fingerprint (low quality) can at most "
        "support 'inconclusive'. Results marked stale were computed with a fingerprint since corrected (a "
        "reference file removed): they are shown with their figures but decide nothing, in no count and no "
        "verdict, until the file is scanned again against the corrected fingerprint.",
    ]
    for model in models:
        summary = model.get("summary") or {}
        accuracy = summary.get("validation_accuracy")
        if accuracy is not None:
            files = summary.get("validation_files")
            lines.append(
                f"Measured on this case: the camera-{model['target']} network {model['id']} named the right class for "
                f"{accuracy:.1%} of {files or 'its'} held-out reference files (error rate {1 - accuracy:.1%}); on "
                "evidence unlike the reference media it can be less accurate."
            )
    return lines


def _report_hash(path: str, size_bytes: int | None) -> tuple[str | None, str | None]:
    """(SHA-256 of the file now, None) or (None, why it cannot be read): read-only, never following into devices."""
    try:
        if not os.path.isfile(path):
            return None, "missing at report"
        return sha256_of_file(path), None
    except (OSError, SensorprintError) as exc:
        return None, f"unreadable at report ({getattr(exc, 'strerror', None) or exc})"


def custody_section(
    case: Case, records: list[Mapping[str, Any]], exhibits: Mapping[str, str], *, rehash: bool
) -> list[dict[str, Any]]:
    """Per evidence file: exhibit, SHA-256 at acquisition / scan / report, and whether they agree.

    rehash: read each file again now (read-only) for its hash at report; False leaves it null.
    """
    acquired = ident.acquisition_hashes(case)
    rows = []
    for record in records:
        path = record["path"]
        at_report, problem = _report_hash(path, record.get("size_bytes")) if rehash else (None, "not checked")
        hashes = [h for h in (acquired.get(path), record["sha256"], at_report) if h]
        state = "consistent" if hashes and len(set(hashes)) == 1 else ("DIFFERENT" if hashes else "unknown")
        rows.append(
            {
                "id": record["id"],
                "path": path,
                "exhibit": ident.exhibit_of(exhibits, path),
                "sha256_acquisition": acquired.get(path),
                "sha256_scan": record["sha256"],
                "sha256_report": at_report,
                "report_note": problem,
                "state": state,
            }
        )
    return rows
