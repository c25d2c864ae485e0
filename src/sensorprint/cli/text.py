"""The words of the command line: what each use case returned, as lines for the terminal.

The workflow returns data (summaries, verdicts); this module alone turns them into
sentences, so the web interface and the JSON output can use the same data unparsed.
"""

from __future__ import annotations

from sensorprint.report.numbers import count_text

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


_ANSWER_WORDS = {
    "match": "matched an enrolled device",
    "no match": "matched none",
    "inconclusive": "inconclusive",
    "stale": "stale (a fingerprint was corrected: scan again)",
    "error": "unreadable",
    "not compared": "not compared yet",
}


def scan_lines(summary, rows: list[dict] | None = None) -> list[str]:
    """The lines of `sensorprint scan` for a `workflow.scan.ScanSummary`.

    rows: the scanned paths' files (`workflow.listing.file_rows`): their answers are counted
    whether this run or an earlier one examined them (a rescan never says "0 matched").
    """
    if rows is None:
        lines = [
            f"scan run {summary.run_id}: {summary.files} files, {summary.scanned} scanned now, "
            f"{summary.skipped} already done, {summary.matched} matched an enrolled device, {summary.errors} unreadable"
        ]
    else:
        answers = [row["answer"] for row in rows]
        counted = ", ".join(f"{answers.count(a)} {words}" for a, words in _ANSWER_WORDS.items() if a in answers)
        lines = [
            f"scan run {summary.run_id}: {summary.files} files, {summary.scanned} scanned now, "
            f"{summary.skipped} already done (their results kept); of all {len(rows)}: {counted or 'none'}"
        ]
    lines += [
        f"  {row['path']}: matched {row['best_device']} frame by frame; the video is "
        + STABILISATION_WORDS.get(row["stabilisation"], row["stabilisation"])
        for row in rows or []
        if row.get("stabilisation")
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


# validate


def _rate(rate, what: str) -> str:
    if not rate.n:
        return f"no {what} to measure"
    low, high = rate.interval()
    return f"{rate.k}/{rate.n} {what} ({rate.rate:.1%}, 95% interval {low:.1%}-{high:.1%})"


def validation_lines(found) -> list[str]:
    """The lines of `sensorprint validate` for a `workflow.validate.Validation`."""
    from sensorprint.workflow.validate import held_out_likelihood_ratios

    lines = [f"validate run {found.run_id}: {len(found.scores)} comparisons of known source, stored in the case"]
    for r in found.devices:
        lines.append(
            f"{r.device}: true matches {_rate(r.true_match, 'held-out references')}, "
            f"{r.true_inconclusive} inconclusive; false alarms {_rate(r.false_alarm, 'media of other sources')}, "
            f"{r.false_inconclusive} inconclusive"
        )
    same, different = held_out_likelihood_ratios(found)
    if same and different:
        lines.append(
            f"likelihood ratios (each left out of the data): same source log10 LR {min(same):.1f} to {max(same):.1f}, "
            f"different sources {min(different):.1f} to {max(different):.1f}"
        )
    lines += [f"  error: {line}" for line in found.errors]
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


STABILISATION_WORDS = {
    "stabilised": "stabilised (its frames needed different transforms)",
    "steady": "not stabilised (its frames share one transform)",
    "undetermined": "of undetermined stabilisation (too few frames found their transform clearly)",
}


def prnu_decision_text(found, threshold: float) -> str:
    """Why a PRNU match decided as it did: the PCE against the threshold of the search made, and the fingerprint."""
    e = found.evidence
    needed = e.threshold_at_search if e.threshold_at_search is not None else threshold
    positions = e.n_positions or 1
    where = f"{count_text(positions)} position{'s' if positions != 1 else ''} searched"
    if e.reason:
        return e.reason
    if e.frames_decided and (e.frame_transforms or e.stabilisation):  # a video matched frame by frame (prnu.stabilised)
        where = f"{where} (a transform per frame, {e.frames_decided} frame{'s' if e.frames_decided != 1 else ''})"
        if e.stabilisation:
            where += f"; the video is {STABILISATION_WORDS.get(str(e.stabilisation), str(e.stabilisation))}"
    elif e.frames_used:  # a video compared as one aggregate (read adaptively)
        where = f"{where}, {e.frames_used} video frame{'s' if e.frames_used != 1 else ''}"
        if e.frames_decided and e.frames_decided < e.frames_used:
            where += f" (decided from {e.frames_decided} on)"
    if found.decision == "match":
        return f"PCE {found.score:.1f} ≥ {needed:.1f}, the threshold for {where}"
    if found.decision == "inconclusive" and not e.weak_fingerprint and e.predicted_pce is not None:
        return (
            f"PCE {found.score:.1f} < {needed:.1f} ({where}), but this file carries too little sensor noise "
            "(dark, saturated, textured, small or compressed) for a true pair to be expected above the "
            "threshold: it cannot exclude a source"
        )
    if found.decision == "inconclusive":
        why = "the reference is too weak (one file, or too little sensor noise in its media) to "
        if found.score is not None and found.score >= needed:
            return why + f"decide a match over a search ({where}; PCE {found.score:.1f} ≥ {needed:.1f})"
        return why + f"exclude a source (PCE {found.score:.1f} < {needed:.1f}, {where})"
    return f"PCE {found.score:.1f} < {needed:.1f}, the threshold for {where}"


def verify_rows(verification) -> list[tuple[str, str]]:
    """The rows of `sensorprint verify`'s table for a `workflow.verify.Verification`."""
    found = verification.prnu
    rows = [
        ("decision", f"{verification.decision} ({prnu_decision_text(found, verification.threshold)})"),
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
    text += [
        f"  stabilised reference video {path}: {aligned} frames aligned to the fingerprint's estimate "
        f"before summing, {left_out} left out (no clear transform)"
        for path, aligned, left_out in getattr(summary, "stabilised", [])
    ]
    text += [f"  error: {line}" for line in summary.errors]
    text += [f"  {line}" for line in getattr(summary, "outcomes", [])]
    text += _check_lines(summary)
    if len(summary.modules) > 1:
        text.append(
            f"  warning: the references come from {len(summary.modules)} camera modules ({'; '.join(summary.modules)}), "
            "each a sensor of its own: enroll them with --by-module"
        )
    return text


def _check_lines(summary) -> list[str]:
    """What the check of the new references against the device's others found."""
    check = summary.check
    if check is None or not check.scores:
        return []
    scored = [s.score for s in check.scores if s.score is not None]
    lines = [
        f"  references checked against the others: {len(scored)} image(s), fit {min(scored):.0f} to {max(scored):.0f} "
        f"(median {check.median:.0f}; {check.threshold:g} or more fits)"
        if scored
        else "  references checked against the others: none could be scored"
    ]
    refused = set(summary.refused)
    for misfit in check.misfits:
        verb = "REFUSED" if misfit.path in refused else "KEPT (--force), flagged in every report:"
        lines.append(f"  {verb} {misfit.path}: fit {misfit.score:.1f} to the others; another camera's file?")
    if check.weak:
        lines.append(f"  warning: {check.weak}")
    lines += [
        f"  warning: the fingerprint correlates with {name}'s (score {score:g}): units of one model can share a "
        "pattern that causes false matches; decisions between them need care"
        for name, score in check.similar
    ]
    return lines


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


# tables of files (scan, verify) and their JSON


def _fmt_number(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


FILE_TABLE_COLUMNS = ("file", "best device", "PCE", "p_fa", "answer", "CNN")


def _shown_path(path: str, base: str | None) -> str:
    """A path as the table shows it: relative to `base` when it lies under it (the table's title names base)."""
    import os

    if base and path.startswith(base.rstrip(os.sep) + os.sep):
        return path[len(base.rstrip(os.sep)) + 1 :]
    return path


def _error_text(row: dict) -> str:
    """A file's error without its path in front (the file column names it already)."""
    error = row["error"] or "unreadable"
    return error[len(row["path"]) + 2 :] if error.startswith(row["path"] + ": ") else error


def file_table_rows(rows: list[dict], base: str | None = None) -> list[tuple[str, ...]]:
    """The cells of the terminal table of files, from `workflow.listing.file_rows` (paths relative to `base`)."""
    return [
        (
            _shown_path(row["path"], base),
            row["best_device"] or ("-" if row["answer"] != "error" else ""),
            _fmt_number(row["pce"], ".1f"),
            _fmt_number(row["p_fa"], ".2g"),
            row["answer"] if row["answer"] != "error" else f"error: {_error_text(row)}",
            row["cnn_device"] or "",
        )
        for row in rows
    ]


def verify_table_row(verification) -> tuple[str, ...]:
    """The one row of `verify`'s file table: A, the best device (B when it matched), PCE, p_fa, answer, CNN."""
    found = verification.prnu
    device = verification.b if verification.decision == "match" else "-"
    cnn = next((a.answer.label for a in verification.cnn if a.file == "A"), "")
    return (verification.a, device, _fmt_number(found.score, ".1f"), _fmt_number(found.p_fa, ".2g"),
            verification.decision, cnn)  # fmt: skip


# case identity, notes and corrections


def identity_lines(identity) -> list[str]:
    """The lines of `sensorprint case show` / `case set` for a `store.identity.CaseIdentity`."""
    lines = [
        f"case number:  {identity.case_number or '(not set)'}",
        f"examiner:     {identity.examiner or '(not set)'}",
        f"organisation: {identity.organisation or '(not set)'}",
    ]
    if identity.title:
        lines.append(f"title:        {identity.title}")
    lines += [f"exhibit {number}: {root}" for root, number in sorted(identity.exhibits.items())]
    lines += [f"note {n.id} ({n.time[:19]}, {n.subject}): {n.text}" for n in identity.notes]
    return lines


def correction_lines(correction) -> list[str]:
    """The lines of `sensorprint reference remove` / `device remove` / `device rename` (`workflow.correct.Correction`)."""
    d = correction.details
    if correction.action == "reference removed":
        shapes = ", ".join(f"{w}x{h}" for h, w in d.get("fingerprints", [])) or "none"
        gone = ", ".join(f"{w}x{h}" for h, w in d.get("fingerprints_removed", []))
        lines = [f"{correction.device}: reference {d['path']} removed (SHA-256 {d['sha256']})",
                 f"  fingerprint re-estimated from the kept reference files: {shapes}"]  # fmt: skip
        if gone:
            lines.append(f"  no reference file is left at {gone}: that fingerprint was removed")
        lines.append(
            f"  {d.get('results_marked_stale', 0)} PRNU results marked stale: run `sensorprint scan` again to renew them"
        )
        return lines
    if correction.action == "device removed":
        return [f"device {correction.device} removed with {len(d.get('references', []))} reference files "
                f"and {d.get('results_removed', 0)} PRNU results (each kept in full in the audit log)"]  # fmt: skip
    return [f"device {d['old']} renamed {d['new']} ({d.get('results_renamed', 0)} results follow the new name)"]


def enroll_nothing_line(summary) -> str:
    """Why an enrollment added nothing."""
    return f"error: nothing was enrolled for {summary.device}: none of the files could be read"


# cluster


def _group_line(group) -> str:
    device = f", matches enrolled device {group.device} (PCE {group.device_score:.1f})" if group.device else ""
    return f"group {group.id}: {len(group.paths)} media{device}"


def cluster_lines(summary) -> list[str]:
    """The lines of `sensorprint cluster` for a `workflow.cluster.ClusterSummary`."""
    lines = [
        f"cluster run {summary.run_id}: {summary.files} files, {summary.read} read now, {summary.skipped} read before, "
        f"{summary.errors} unreadable; {len(summary.groups)} groups, {len(summary.singletons)} single media",
        f"  {summary.screened} pairs screened, {summary.candidates} candidates, {summary.scored} scored now "
        f"({summary.reused} before; {summary.spared} not needed, their files already linked or in groups whose fingerprints "
        f"decide), "
        f"{summary.group_tests} tests against group fingerprints; "
        f"links at PCE >= {summary.threshold:.1f} (false-alarm probability of the whole run <= 1%)",
    ]
    if summary.frame_searches or summary.frame_searches_left or summary.frame_joined:
        lines.append(
            f"  videos on their own searched frame by frame against the groups (stabilised clips): "
            f"{summary.frame_searches} searches now, {summary.frame_joined} videos joined a group"
            + (
                f"; {summary.frame_searches_left} searches left out (raise --frame-searches)"
                if summary.frame_searches_left
                else ""
            )
        )
    for group in summary.groups:
        lines.append("  " + _group_line(group))
    lines += [f"  error: {line}" for line in summary.error_lines]
    lines.append("  `sensorprint clusters CASE` lists the members; `enroll --from-cluster ID` enrolls a group")
    return lines


def clusters_lines(groups) -> list[str]:
    """The lines of `sensorprint clusters`: each group with its members (path and SHA-256), then the single media."""
    if not groups:
        return ["no clustering in this case yet: run `sensorprint cluster CASE PATH...`"]
    lines = []
    for group in (g for g in groups if len(g.paths) > 1):
        lines.append(_group_line(group))
        lines += [f"  {path}  {sha}" for path, sha in zip(group.paths, group.sha256, strict=True)]
    singles = [g for g in groups if len(g.paths) == 1]
    if singles:
        lines.append(f"single media (no other medium shares their source): {len(singles)}")
        lines += [f"  {g.paths[0]}  {g.sha256[0]}  (group {g.id})" for g in singles]
    return lines


# the fingerprint index and the reference library


def scan_index_lines(summary) -> list[str]:
    """What the fingerprint index did in a scan (nothing when the scan compared every fingerprint)."""
    if not summary.screened:
        return []
    return [
        f"  index: {summary.screened} files screened against {summary.fingerprints_screened} fingerprints in all, "
        f"{summary.fingerprints_compared} full comparisons (the shortlist); the decisions are those of comparing "
        "every fingerprint (`--exhaustive` does so)"
    ]


def import_lines(summary) -> list[str]:
    """The lines of `sensorprint import` for a `workflow.library.ImportSummary`."""
    lines = [
        f"import run {summary.run_id}: {len(summary.imported)} devices imported ({summary.fingerprints} fingerprints) "
        f"from {len(summary.cases)} cases, {len(summary.already)} already here"
    ]
    lines += [f"  renamed: {source} is {name} here (the name was taken)" for source, name in summary.renamed.items()]
    if summary.fingerprints:
        lines.append(
            f"  fingerprints kept as {summary.precision}: {summary.stored_bytes / 1e6:.1f} MB here "
            f"({summary.source_bytes / 1e6:.1f} MB in their cases)"
        )
    if summary.indexed:
        lines.append(f"  index: {summary.indexed} fingerprints indexed; scans shortlist with it")
    lines += [f"  error: {line}" for line in summary.error_lines]
    return lines
