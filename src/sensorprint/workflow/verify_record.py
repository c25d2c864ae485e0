"""Use case: `verify` with a case — the comparison is recorded in the case as a run, its result kept.

A file compared with an enrolled device becomes an evidence record of the case with its
PRNU match and the case's networks' answers for it (as a scan would record them: the report
and the web pages then show them). Two
files compared with each other are recorded as the run's summary (hashes, PCE, p_fa,
decision) and in the audit log: neither is an enrolled device.
"""

from __future__ import annotations

from pathlib import Path

from sensorprint.media.discover import recorded_path
from sensorprint.store import Case
from sensorprint.workflow.options import ScanOptions
from sensorprint.workflow.verify import Verification, verify


def verification_summary(verification: Verification) -> dict:
    """The facts of a verification as plain values (the run's summary and `--json`)."""
    found = verification.prnu
    return {
        "a": verification.a,
        "b": verification.b,
        "b_is_device": verification.b_is_device,
        "sha256_a": verification.sha256_a,
        "sha256_b": verification.sha256_b,
        "decision": verification.decision,
        "pce": found.score,
        "p_fa": found.p_fa,
        "ncc": found.ncc,
        "threshold": verification.threshold,
        "transform": found.evidence.transform_text or found.evidence.reason,
        "agreement": str(verification.verdict.agreement),
        "cnn": [
            {"file": a.file, "network": a.network, "label": a.answer.label, "probability": a.answer.probability}
            for a in verification.cnn
        ],
        "cnn_notes": list(verification.cnn_notes),
        "tool_version": verification.tool_version,
    }


def verify_in_case(a: Path, b: str, case: Path, *, options: ScanOptions = ScanOptions()) -> Verification:
    """`verify` A against B with the case's devices and networks, then record it in the case."""
    verification = verify(a, b, case=case, options=options)
    with Case.open(case) as opened:
        run_id = opened.start_run("verify", {"a": str(a), "b": b, **options.to_dict()})
        if verification.b_is_device and verification.medium_a:
            # under the path a scan records (absolute, resolved): one file is one evidence record
            medium = {**verification.medium_a, "path": str(recorded_path(Path(a)))}
            opened.record_results(medium, [verification.prnu, *verification.cnn_rows_a], run_id=run_id)
        opened.finish_run(run_id, "completed", verification_summary(verification))
    return verification
