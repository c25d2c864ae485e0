"""The sensorprint command line: verbs that read like sentences.

    sensorprint init CASE
    sensorprint enroll CASE --device NAME [--model TEXT] PATH...
    sensorprint scan CASE PATH...
    sensorprint verify A B [--case CASE]
    sensorprint validate CASE [PATH...]
    sensorprint report CASE [--format html|json|csv] [--out PATH]
    sensorprint train CASE [--target device|model]
    sensorprint demo [--out DIR]

Every command is a thin shell over a use case in `sensorprint.workflow`; this module
only parses arguments, draws progress and prints results. Errors caused by input are
one red line and exit status 2, never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from sensorprint import __version__
from sensorprint.cli import text
from sensorprint.errors import CaseError, SensorprintError
from sensorprint.media.video import FrameStrategy
from sensorprint.prnu.stats import DEFAULT_PCE_THRESHOLD
from sensorprint.report.writers import ReportFormat
from sensorprint.results import TargetKind
from sensorprint.store.records import Precision


def _plain_help() -> None:
    """`--help` in the words of a manual: `--all-orientations` without `<bool>`, `CASE` not `{case}`, `N` not `<int>`.

    Typer labels every parameter with its Python type; these two hooks of its help
    formatter (typer.core) show the metavar a user types instead.
    """
    from typer.core import TyperArgument, TyperOption

    def option_type(self, ctx) -> str | None:
        if self.is_flag or self.metavar == "":
            return None
        if self.metavar is not None:
            return self.metavar
        label = self.display_type(ctx).strip("<>")
        return _TYPE_WORDS.get(label, label)

    def argument_type(self, ctx) -> str | None:
        return None  # the metavar already names it (CASE, PATH...)

    def usage_name(self) -> str:
        name = (self.metavar or self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = option_type
    TyperArgument.display_type_rich = argument_type
    TyperArgument._usage_display_name = usage_name
    TyperArgument._rich_display_name = usage_name


_TYPE_WORDS = {"str": "TEXT", "int": "N", "int range": "N", "float": "X", "float range": "X", "path": "PATH"}
_plain_help()

app = typer.Typer(
    name="sensorprint",
    help="Link images and videos to the camera that made them, from the noise of its sensor.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console(stderr=True, soft_wrap=True)
# No markup on what the workflow says: file names, device names and notes may hold "[...]",
# which rich would otherwise take for style tags and silently drop.
out = Console(soft_wrap=True, markup=False, highlight=False)

CaseArg = typer.Argument(
    ..., help="The case directory (made by `sensorprint init`).", show_default=False, metavar="CASE"
)
JsonOpt = typer.Option(False, "--json", help="Print the table of files as JSON (for scripts) instead of words.")
WorkersOpt = typer.Option(None, "--workers", "-w", help="Local worker processes (default: one per core; 1 = no pool).")
SchedulerOpt = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786) to run on a cluster.")
FramesOpt = typer.Option(
    5,
    "--frames",
    help="Video frames read first per video (a cap for every strategy; with --adaptive-frames, more follow "
    "while some device is undecided).",
    min=1,
)
AdaptiveOpt = typer.Option(
    True,
    "--adaptive-frames/--fixed-frames",
    help="Add more frames of a video (keyframes, then the least quantised frames) until every device is "
    "decided or the clip ends; --fixed-frames uses the --frames frames only.",
)
MaxFramesOpt = typer.Option(
    0, "--max-frames", help="With --adaptive-frames: at most this many frames per video (0: the whole clip).", min=0
)
StrategyOpt = typer.Option(
    FrameStrategy.EVEN_KEYFRAMES,
    "--frame-strategy",
    help="Which video frames: even_keyframes (N keyframes spread over the video, fastest), keyframes (all), "
    "random (seeded), even (N evenly spaced), all.",
)
OrientationsOpt = typer.Option(
    False,
    "--all-orientations",
    help="Also try each query turned 180° and mirrored (software-rotated or selfie-mirrored media). "
    "Off by default: units of one model can then reach higher wrong-pair PCEs.",
)
FrameSearchOpt = typer.Option(
    True,
    "--frame-search/--no-frame-search",
    help="Search a video that matched no device frame by frame, for stabilised video (seconds per device and video).",
)
ThresholdOpt = typer.Option(
    DEFAULT_PCE_THRESHOLD, "--threshold", help="PCE at or above which a device is declared the source.", min=0
)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"sensorprint {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", help="Print the version of sensorprint and exit.", callback=_print_version, is_eager=True
    ),
) -> None:
    """Link images and videos to the camera that made them, from the noise of its sensor."""


@contextlib.contextmanager
def progress_bars() -> Iterator:
    """A `progress(phase, done, total)` callback drawing one rich bar per phase."""
    with Progress(
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal and not _force_progress(),
    ) as bars:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(phase, total=total)
            bars.update(tasks[phase], completed=done, total=total)

        yield update


def _force_progress() -> bool:
    import os

    return bool(os.environ.get("SENSORPRINT_PROGRESS"))


def _fail(error: SensorprintError) -> None:
    console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn errors caused by input into one line and exit status 2."""
    try:
        yield
    except SensorprintError as error:
        _fail(error)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: what was committed is kept; run the same command again to resume[/]")
        raise typer.Exit(130) from None


def _signal_options(
    frames: int,
    frame_strategy: FrameStrategy,
    all_orientations: bool = False,
    frame_search: bool = True,
    adaptive_frames: bool = True,
    max_frames: int = 0,
):
    from sensorprint.workflow.options import SignalOptions

    return SignalOptions(
        frame_strategy=str(frame_strategy),
        n_frames=frames,
        orientations="all" if all_orientations else "sensor",
        frame_search=frame_search,
        adaptive_frames=adaptive_frames,
        max_frames=max_frames,
    )


@app.command()
def init(
    case: Path = CaseArg,
    case_number: str | None = typer.Option(None, "--case-number", help="The case number (shown on every report)."),
    examiner: str | None = typer.Option(None, "--examiner", help="Who examines the case."),
    organisation: str | None = typer.Option(None, "--organisation", help="The examiner's organisation."),
) -> None:
    """Create a new, empty case directory (with its case number, examiner and organisation when given)."""
    from sensorprint.workflow import init_case

    with user_errors():
        init_case(case)
        if case_number or examiner or organisation:
            _set_identity(case, {"case_number": case_number, "examiner": examiner, "organisation": organisation})
    out.print(f"created case {case}")


FromClusterOpt = typer.Option(
    None, "--from-cluster", help="Enroll the member files of a group listed by `sensorprint clusters` (not PATH)."
)


@app.command()
def enroll(
    case: Path = CaseArg,
    paths: list[Path] | None = typer.Argument(
        None, help="Reference images and videos taken with the device (files or folders).", metavar="PATH"
    ),
    device: str = typer.Option(..., "--device", "-d", help="Name of the seized device, e.g. 'Phone of J. Doe'."),
    model: str | None = typer.Option(None, "--model", "-m", help="Its make and model, e.g. 'Apple iPhone 12'."),
    frames: int = typer.Option(30, "--frames", help="Frames used per reference video.", min=1),
    frame_strategy: FrameStrategy = typer.Option(
        FrameStrategy.EVEN,
        "--frame-strategy",
        help="Which reference video frames: even (N evenly spaced), even_keyframes, keyframes, random, all.",
    ),
    workers: int | None = WorkersOpt,
    scheduler: str | None = SchedulerOpt,
    from_cluster: int | None = FromClusterOpt,
    force: bool = typer.Option(
        False,
        "--force",
        help="Keep a reference that does not fit the device's other references (flagged in every report) "
        "instead of refusing it.",
    ),
    by_module: bool = typer.Option(
        False,
        "--by-module",
        help="A phone of several cameras: enroll each module its EXIF names (lens model) as DEVICE/MODULE.",
    ),
) -> None:
    """Enroll a device: estimate its sensor fingerprint from reference media taken with it."""
    from sensorprint.workflow import enroll as enroll_device
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import drop_empty_devices
    from sensorprint.workflow.enroll import enroll_by_module

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        paths = _enroll_paths(opened, paths, from_cluster)
        options = {
            "model": model,
            "options": _signal_options(frames, frame_strategy),
            "workers": workers,
            "scheduler": scheduler,
            "force": force,
            "progress": progress,
        }
        existed = [d.name for d in opened.list_devices()]
        if by_module:
            summaries = enroll_by_module(opened, device, paths, **options)
        else:
            summaries = [enroll_device(opened, device, paths, **options)]
        drop_empty_devices(opened, summaries, existed)  # an enrollment that adds nothing creates nothing
    for summary in summaries:
        for line in text.enroll_lines(summary):
            out.print(line)
    if not any(summary.added or summary.already for summary in summaries):
        console.print(escape(text.enroll_nothing_line(summaries[0])), highlight=False)
        raise typer.Exit(2)  # bad input, as every other input error


@app.command()
def scan(
    case: Path = CaseArg,
    paths: list[Path] = typer.Argument(
        ..., help="Seized storage: files or folders, searched recursively.", metavar="PATH"
    ),
    workers: int | None = WorkersOpt,
    scheduler: str | None = SchedulerOpt,
    threshold: float = ThresholdOpt,
    frames: int = FramesOpt,
    frame_strategy: FrameStrategy = StrategyOpt,
    all_orientations: bool = OrientationsOpt,
    frame_search: bool = FrameSearchOpt,
    adaptive_frames: bool = AdaptiveOpt,
    max_frames: int = MaxFramesOpt,
    as_json: bool = JsonOpt,
    exhaustive: bool = typer.Option(
        False, "--exhaustive", help="Compare with every fingerprint, even in a large case (no index shortlist)."
    ),
) -> None:
    """Compare every image and video under PATH with every enrolled device; resumable."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow import scan as scan_media
    from sensorprint.workflow.options import ScanOptions

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        signal = _signal_options(frames, frame_strategy, all_orientations, frame_search, adaptive_frames, max_frames)
        options = ScanOptions(threshold=threshold, signal=signal)
        summary = scan_media(
            opened, paths, options=options, workers=workers, scheduler=scheduler, progress=progress,
            exhaustive=True if exhaustive else None,
        )  # fmt: skip
        rows = _file_rows(opened, paths)
    if as_json:
        out.print(_json({"run_id": summary.run_id, "files": rows}))
        return
    base = _common_root(paths)
    _print_file_table(text.file_table_rows(rows, base), title=f"files under {base}" if base else None)
    for line in text.scan_lines(summary, rows) + text.scan_index_lines(summary):
        out.print(line)


@app.command()
def verify(
    a: Path = typer.Argument(..., help="A query image or video.", metavar="A"),
    b: str = typer.Argument(
        ..., help="Another image or video, or the name of a device enrolled in --case.", metavar="B"
    ),
    case: Path | None = typer.Option(None, "--case", help="Case whose enrolled device B names."),
    threshold: float = ThresholdOpt,
    frames: int = FramesOpt,
    frame_strategy: FrameStrategy = StrategyOpt,
    all_orientations: bool = OrientationsOpt,
    frame_search: bool = FrameSearchOpt,
    adaptive_frames: bool = AdaptiveOpt,
    max_frames: int = MaxFramesOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Do A and B share a source camera? Prints PCE, false-alarm probability and the decision."""
    from sensorprint.workflow import verify as verify_pair
    from sensorprint.workflow.options import ScanOptions
    from sensorprint.workflow.verify_record import verification_summary, verify_in_case

    with user_errors():
        signal = _signal_options(frames, frame_strategy, all_orientations, frame_search, adaptive_frames, max_frames)
        options = ScanOptions(threshold=threshold, signal=signal)
        if case is None and not Path(b).exists() and Path(a).exists():
            raise CaseError(f"{b} is not a file; to compare {a} with an enrolled device {b!r}, give --case CASE")
        if case is not None:
            verification = verify_in_case(a, b, case, options=options)
        else:
            verification = verify_pair(a, b, options=options)
    status = 0  # match, no match and inconclusive are all answers; errors exit 2
    if as_json:
        out.print(_json(verification_summary(verification)))
        raise typer.Exit(status)
    _print_file_table([text.verify_table_row(verification)])
    table = Table(title=f"{a}  vs  {b}", show_header=False)
    for key, value in text.verify_rows(verification):
        table.add_row(key, value)
    out.print(table)
    raise typer.Exit(status)


@app.command()
def validate(
    case: Path = CaseArg,
    paths: list[Path] | None = typer.Argument(
        None, help="Folders of media known to come from none of the enrolled devices (optional).", metavar="PATH"
    ),
    workers: int | None = WorkersOpt,
    threshold: float = ThresholdOpt,
) -> None:
    """Measure each device's true-match and false-alarm rates on media of known source; stored for the report."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.options import ScanOptions
    from sensorprint.workflow.validate import validate as run_validation

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        found = run_validation(
            opened, list(paths or []), options=ScanOptions(threshold=threshold), workers=workers, progress=progress
        )
    for line in text.validation_lines(found):
        out.print(line)


@app.command()
def report(
    case: Path = CaseArg,
    fmt: ReportFormat = typer.Option(
        ReportFormat.HTML,
        "--format",
        "-f",
        help="html or pdf (to file), json or csv (for tools), case-uco (CASE/UCO JSON-LD for forensic tools).",
    ),
    output: Path | None = typer.Option(None, "--out", "-o", help="Where to write it (default: in the case)."),
    threshold: float = ThresholdOpt,
    rehash: bool = typer.Option(
        True, "--rehash/--no-rehash", help="Read each evidence file again for its SHA-256 at report (chain of custody)."
    ),
) -> None:
    """Write the case report: every file, its best device, and the evidence for each decision."""
    from sensorprint.report import write_report
    from sensorprint.workflow import open_case

    # opened for writing: the SHA-256 of the report written goes into the audit log
    with user_errors(), open_case(case) as opened:
        target = output or opened.root / f"report.{ReportFormat(fmt).suffix}"
        written = write_report(opened, str(fmt), target, threshold=threshold, rehash=rehash)
    out.print(f"wrote {written}")


@app.command()
def train(
    case: Path = CaseArg,
    target: TargetKind = typer.Option(
        TargetKind.DEVICE, "--target", help="What the network tells apart: device or model."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs (default: the method's)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and media give the same network."),
    units_per_file: int | None = typer.Option(
        None,
        "--units-per-file",
        help="Patches (or frames) per reference file (default: the method's; fewer = faster).",
        min=1,
    ),
) -> None:
    """Train the CNN of the founding papers on the enrolled devices' reference media."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow import train as train_network

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        summary = train_network(
            opened, target=str(target), epochs=epochs, seed=seed, units_per_file=units_per_file, progress=progress
        )
    for line in text.train_lines(summary):
        out.print(line)


@app.command()
def demo(
    output: Path = typer.Option(Path("demo-case"), "--out", "-o", help="Folder for the simulated data and case."),
    workers: int | None = WorkersOpt,
) -> None:
    """Simulate a small case (cameras, references, evidence with bad files), identify, report."""
    from sensorprint.report import write_report
    from sensorprint.workflow import open_case, run_demo

    with user_errors(), progress_bars() as progress:
        summary = run_demo(output, workers=workers, progress=progress)
        with open_case(summary.case, read_only=True) as opened:
            report = write_report(opened, "html", output / "report.html", threshold=DEFAULT_PCE_THRESHOLD)
    for line in text.demo_lines(summary, report):
        out.print(line)


@app.command()
def cluster(
    case: Path = CaseArg,
    paths: list[Path] = typer.Argument(..., help="Media to group: files or folders, searched recursively."),
    workers: int | None = WorkersOpt,
    scheduler: str | None = SchedulerOpt,
    threshold: float = typer.Option(
        DEFAULT_PCE_THRESHOLD,
        "--threshold",
        help="Lowest PCE that links (the run's own is higher when its tests call for it).",
        min=0,
    ),
    frames: int = FramesOpt,
    frame_strategy: FrameStrategy = StrategyOpt,
    denoiser: str = typer.Option(
        "wavelet",
        "--denoiser",
        help="Images' residual: wavelet (4-level, as scan and verify) or spatial (3x3 Wiener: about 2x faster, fewer resized copies joined).",
    ),
    frame_searches: int = typer.Option(
        500,
        "--frame-searches",
        help="Videos left on their own (maybe stabilised) x groups searched frame by frame, at most (0: none).",
        min=0,
    ),
) -> None:
    """Group every image and video under PATH by unknown source camera; resumable."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.cluster import ClusterOptions
    from sensorprint.workflow.cluster import cluster as cluster_media

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        if denoiser not in ("spatial", "wavelet"):
            raise typer.BadParameter(f"--denoiser {denoiser!r}: use spatial or wavelet")
        options = ClusterOptions(
            signal=_signal_options(frames, frame_strategy),
            threshold=threshold,
            denoiser=denoiser,
            max_frame_searches=frame_searches,
        )
        summary = cluster_media(opened, paths, options=options, workers=workers, scheduler=scheduler, progress=progress)
    for line in text.cluster_lines(summary):
        out.print(line)


@app.command()
def clusters(case: Path = CaseArg) -> None:
    """List the groups of the latest `sensorprint cluster` run (singletons last)."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.cluster import stored_groups

    with user_errors(), open_case(case, read_only=True) as opened:
        groups = stored_groups(opened)
    for line in text.clusters_lines(groups):
        out.print(line)


def _enroll_paths(opened, paths: list[Path] | None, from_cluster: int | None) -> list[Path]:
    """The reference files of `enroll`: PATH..., or the members of the group `--from-cluster` names."""
    from sensorprint.workflow.cluster import cluster_paths

    if (from_cluster is None) == (not paths):
        raise SensorprintError("give the reference files (PATH...) or --from-cluster ID, one of the two")
    return cluster_paths(opened, from_cluster) if from_cluster is not None else list(paths or [])


@app.command()
def version() -> None:
    """Print the version of sensorprint."""
    out.print(f"sensorprint {__version__}")


# ---------------------------------------------------------------------- tables of files, JSON


def _json(value) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False, default=str)


def _file_rows(opened, paths: list[Path]) -> list[dict]:
    from sensorprint.workflow.listing import file_rows

    return file_rows(opened, paths)


def _common_root(paths: list[Path]) -> str | None:
    """The folder that holds every scanned path (resolved), or None."""
    import os

    try:
        resolved = [str(p.resolve()) for p in paths]
        root = os.path.commonpath(resolved)
    except (OSError, RuntimeError, ValueError):
        return None
    return root if Path(root).is_dir() else str(Path(root).parent)


def _print_file_table(rows: list[tuple[str, ...]], title: str | None = None) -> None:
    if not rows:
        return
    table = Table(*text.FILE_TABLE_COLUMNS, title=title, show_lines=False)
    for row in rows:
        table.add_row(*row)
    out.print(table)


# ---------------------------------------------------------------------- case identity, notes, corrections

case_app = typer.Typer(help="The case's identity (case number, examiner, organisation, exhibits) and notes.")
device_app = typer.Typer(help="Correct an enrolled device: remove it, or rename it.")
reference_app = typer.Typer(help="Correct a device's reference files: remove a wrong one.")
app.add_typer(case_app, name="case")
app.add_typer(device_app, name="device")
app.add_typer(reference_app, name="reference")


def _set_identity(case: Path, values: dict, exhibits: dict | None = None, hashes: Path | None = None):
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import set_case

    with open_case(case) as opened:
        return set_case(opened, values, exhibits=exhibits, acquisition_hashes=hashes)


def _exhibits(items: list[str]) -> dict[str, str]:
    """{evidence root: exhibit number} from ROOT=NUMBER items."""
    from sensorprint.errors import CaseError

    pairs = {}
    for item in items:
        root, sep, number = item.rpartition("=")
        if not sep or not root or not number:
            raise CaseError(f"--exhibit takes ROOT=NUMBER (e.g. /mnt/phone=EXH-1), not {item!r}")
        pairs[root] = number
    return pairs


@case_app.command("set")
def case_set(
    case: Path = CaseArg,
    case_number: str | None = typer.Option(None, "--case-number", help="The case number (shown on every report)."),
    examiner: str | None = typer.Option(None, "--examiner", help="Who examines the case."),
    organisation: str | None = typer.Option(None, "--organisation", help="The examiner's organisation."),
    title: str | None = typer.Option(None, "--title", help="A short title of the case."),
    exhibit: list[str] = typer.Option(
        [], "--exhibit", metavar="ROOT=NUMBER", help="The exhibit number of an evidence folder (repeatable)."
    ),
    hashes: Path | None = typer.Option(
        None, "--acquisition-hashes", metavar="FILE", help="A sha256sum list of the evidence as acquired."
    ),
) -> None:
    """Set the case number, examiner, organisation, exhibit numbers or acquisition hashes (an empty value clears)."""
    values = {"case_number": case_number, "examiner": examiner, "organisation": organisation, "title": title}
    with user_errors():
        identity = _set_identity(case, values, _exhibits(exhibit), hashes)
    for line in text.identity_lines(identity):
        out.print(line)


@case_app.command("show")
def case_show(case: Path = CaseArg) -> None:
    """Show the case number, examiner, organisation, exhibits and notes."""
    from sensorprint.store import identity as ident
    from sensorprint.workflow import open_case

    with user_errors(), open_case(case, read_only=True) as opened:
        lines = text.identity_lines(ident.identity(opened))
    for line in lines:
        out.print(line)


@case_app.command("note")
def case_note(
    case: Path = CaseArg,
    note: str = typer.Argument(..., help="The note's text.", metavar="TEXT"),
    device: str | None = typer.Option(None, "--device", "-d", help="The device the note is about."),
    file: str | None = typer.Option(None, "--file", metavar="PATH", help="The evidence file the note is about."),
) -> None:
    """Add a note to the case, a device or a file (notes are kept in order and never changed)."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import add_note

    with user_errors(), open_case(case) as opened:
        added = add_note(opened, note, device=device, file=file)
    out.print(f"note {added.id} added ({added.subject})")


ReasonOpt = typer.Option("", "--reason", help="Why (kept in the audit log and the report).")


@reference_app.command("remove")
def reference_remove(
    case: Path = CaseArg,
    device: str = typer.Argument(..., help="The enrolled device.", metavar="DEVICE"),
    reference: str = typer.Argument(..., help="The reference file: its path or its SHA-256.", metavar="FILE"),
    reason: str = ReasonOpt,
    workers: int | None = WorkersOpt,
) -> None:
    """Remove a wrong reference file; the fingerprint is estimated again from the kept ones."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import remove_reference

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        correction = remove_reference(opened, device, reference, reason=reason, workers=workers, progress=progress)
    for line in text.correction_lines(correction):
        out.print(line)


@device_app.command("remove")
def device_remove(
    case: Path = CaseArg,
    device: str = typer.Argument(..., help="The enrolled device.", metavar="DEVICE"),
    reason: str = ReasonOpt,
) -> None:
    """Remove a device with its reference files, fingerprints and results (the audit log keeps them)."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import remove_device

    with user_errors(), open_case(case) as opened:
        correction = remove_device(opened, device, reason=reason)
    for line in text.correction_lines(correction):
        out.print(line)


@device_app.command("rename")
def device_rename(
    case: Path = CaseArg,
    device: str = typer.Argument(..., help="The enrolled device.", metavar="DEVICE"),
    new_name: str = typer.Argument(..., help="Its new name.", metavar="NEW_NAME"),
) -> None:
    """Rename a device; its results follow the new name."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.correct import rename_device

    with user_errors(), open_case(case) as opened:
        correction = rename_device(opened, device, new_name)
    for line in text.correction_lines(correction):
        out.print(line)


# ---------------------------------------------------------------------- the web interface


@app.command()
def serve(
    case: Path = CaseArg,
    port: int = typer.Option(8765, "--port", "-p", help="TCP port (0: any free one).", min=0, max=65535),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but 127.0.0.1 exposes the case to the network."
    ),
) -> None:
    """Open the case in a local web interface (prints the address with its access token)."""
    import os

    # The web interface is a sibling of the CLI (neither imports the other, see pyproject.toml):
    # this process becomes `python -m sensorprint.web`, so Ctrl-C and signals reach the server itself.
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "sensorprint.web", str(case), "--host", host, "--port", str(port)])


# ---------------------------------------------------------------------- the reference library


@app.command(name="import")
def import_(
    case: Path = CaseArg,
    others: list[Path] = typer.Argument(
        ..., help="Other cases whose devices and fingerprints join this one (only read).", metavar="OTHER_CASE"
    ),
    precision: Precision = typer.Option(
        Precision.FLOAT16,
        "--precision",
        help="How the copied fingerprints are kept: float16 (half the bytes) or float32.",
    ),
) -> None:
    """Pool the devices and fingerprints of other cases into CASE, with where each came from."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow.library import import_cases

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        summary = import_cases(opened, others, precision=precision, progress=progress)
    for line in text.import_lines(summary):
        out.print(line)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
