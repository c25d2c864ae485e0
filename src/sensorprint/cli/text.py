"""The words of the command line: what each use case returned, as lines for the terminal.

The workflow returns data (summaries, verdicts); this module alone turns them into
sentences, so the web interface and the JSON output can use the same data unparsed.
"""

from __future__ import annotations

# train


def train_lines(summary) -> list[str]:
    """The lines of `sensorprint train` for a `workflow.train.TrainSummary`."""
    from sensorprint.workflow.classify import TARGET_NAMES

    name = TARGET_NAMES[summary.target]
    per_class = ", ".join(f"{c} {n}" for c, n in sorted(summary.files_per_class.items()))
    accuracy = "n/a" if summary.validation_accuracy is None else f"{summary.validation_accuracy:.2f}"
    threshold = "n/a" if summary.unknown_threshold is None else f"{summary.unknown_threshold:.3g}"
    cpu = f" ({summary.cpu_seconds:.0f} CPU s)" if summary.cpu_seconds is not None else ""
    lines = [
        f"train run {summary.run_id}: {name} network {summary.model_id} ({summary.network} on {summary.kind}), "
        f"{len(summary.classes)} classes from {summary.n_training_files + summary.n_validation_files} reference files "
        f"({per_class})",
        f"  {summary.epochs_run} epochs (best {summary.best_epoch}) in {summary.seconds:.0f} s{cpu}; validation accuracy "
        f"{accuracy} on {summary.n_validation_files} held-out files; unknown-camera threshold {threshold} "
        f"(mean top-class logit); inference with {summary.backend}",
        f"  saved in {summary.path}; run `sensorprint scan` to classify the evidence with it"
        + (" (earlier CNN results of this target were dropped)" if summary.results_dropped else ""),
    ]
    if summary.references_are_flat:
        lines.append(
            f"  every reference file is at least {100 * summary.least_flat_share:.1f}% flat: answers for less flat files "
            "(scenes) will say that the accuracy and threshold above were measured on flatter media only"
        )
    return lines


# scan


def scan_lines(summary) -> list[str]:
    """The lines of `sensorprint scan` for a `workflow.scan.ScanSummary`."""
    lines = [
        f"scan run {summary.run_id}: {summary.files} files, {summary.scanned} scanned now, "
        f"{summary.skipped} already done, {summary.matched} matched an enrolled device, {summary.errors} unreadable"
    ]
    for title, counts in sorted(summary.classified.items()):
        caveat = (
            f"; {counts.caveat} less flat than every reference file (their answers say so)" if counts.caveat else ""
        )
        lines.append(f"{title}: {counts.files} files classified now, {counts.unknown} answered unknown camera" + caveat)
    notes = list(summary.network_lines)
    if summary.prnu_only:
        notes.append("no trained network in the case: PRNU only (`sensorprint train` adds the CNN)")
    lines += [f"  note: {line}" for line in notes]
    lines += [f"  error: {line}" for line in summary.error_lines]
    return lines


# verify


def _plural(unit: str | None, n: int | None) -> str:
    unit = unit or "unit"
    plural = {"patch": "patches", "frame": "frames"}.get(unit, unit + "s")
    return f"{n} {unit if n == 1 else plural}"


def cnn_answer_text(answer) -> str:
    """One network's answer for one file (`results.CnnAnswer`) in words, with its caveats."""
    evidence = answer.evidence
    ranked = sorted(answer.probabilities.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{name} {p:.2f}" for name, p in ranked[:4])
    if answer.named:
        units = _plural(evidence.unit, evidence.units)
        text = f"{answer.label} (probability {answer.probabilities[answer.label]:.2f} from {units}; {shown})"
    else:
        text = f"unknown camera ({evidence.reason or ''}; {shown})"
    if evidence.network_stale:
        text += f" [network stale: {evidence.network_stale}]"
    if evidence.content_caveat:
        text += f" [{evidence.content_caveat}]"
    return text


def _agreement_text(verification) -> str | None:
    """Whether the camera-device network agrees with the PRNU decision, in words (None without that network)."""
    from sensorprint.results import Agreement

    verdict = verification.verdict
    if verdict.agreement not in (Agreement.AGREE, Agreement.DISAGREE):
        return None
    by_file = {a.file: a.answer for a in verification.cnn if a.answer.target_kind == "device"}
    said = []
    if "A" in by_file:
        said.append(f"the camera-device network names {by_file['A'].label} for A")
        if "B" in by_file:
            said[-1] += f" and {by_file['B'].label} for B"
    if verdict.model_conflict:
        said.append(f"the camera-model network names another model than {verification.b}'s {verdict.model_conflict}")
    prefix = "agree: " if verdict.agreement == Agreement.AGREE else "DISAGREE: "
    return f"{prefix}PRNU says {verification.decision}; " + "; ".join(said)


def verify_rows(verification) -> list[tuple[str, str]]:
    """The rows of `sensorprint verify`'s table for a `workflow.verify.Verification`."""
    found = verification.prnu
    sign = "≥" if verification.decision == "match" else "<"
    rows = [
        ("decision", f"{verification.decision} (PCE {sign} {verification.threshold:g})"),
        ("PCE", f"{found.score:.1f}"),
        ("false-alarm probability", f"{found.p_fa:.3g}"),
        ("transform", found.evidence.transform_text or found.evidence.reason or "-"),
    ]
    rows += [(f"CNN {a.network} on {a.file}", cnn_answer_text(a.answer)) for a in verification.cnn]
    rows += [("CNN note", note) for note in verification.cnn_notes]
    comparison = _agreement_text(verification)
    if comparison:
        rows.append(("PRNU and CNN", comparison))
    rows += [
        ("SHA-256 of A", verification.sha256_a),
        ("SHA-256 of B", verification.sha256_b or "(enrolled device)"),
        ("sensorprint", verification.tool_version),
    ]
    return rows


# enroll


def enroll_lines(summary) -> list[str]:
    """The lines of `sensorprint enroll` for a `workflow.enroll.EnrollSummary`."""
    text = [
        f"{summary.device}: {summary.added} reference files added, {summary.already} already enrolled, "
        f"{len(summary.errors)} unreadable"
    ]
    text += [
        f"  fingerprint {f.width}x{f.height} from {f.n_files} media ({f.n_summed} images or frames), "
        f"quality {f.quality:.3g}"
        for f in summary.fingerprints
    ]
    text += [f"  error: {line}" for line in summary.errors]
    return text


# demo


def demo_lines(summary, report) -> list[str]:
    """The lines of `sensorprint demo` for a `workflow.demo.DemoSummary` and the report written."""
    lines = scan_lines(summary.scan)
    lines.append(
        f"ground truth: {summary.correct}/{summary.total} files answered correctly "
        f"(enrolled camera, or no match for unenrolled cameras and bad files) in {summary.seconds:.1f} s"
    )
    lines += [f"  WRONG: {w.path}: answered {w.answered}, truth {w.truth}" for w in summary.wrong]
    lines.append(f"case: {summary.case}")
    lines.append(f"report: {report}")
    return lines
