"""The sensorprint command line: verbs that read like sentences.

    sensorprint init CASE
    sensorprint enroll CASE --device NAME [--model TEXT] PATH...
    sensorprint scan CASE PATH...
    sensorprint verify A B [--case CASE]
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
from sensorprint.errors import SensorprintError
from sensorprint.media.video import FrameStrategy
from sensorprint.prnu.stats import DEFAULT_PCE_THRESHOLD
from sensorprint.report.writers import ReportFormat
from sensorprint.results import TargetKind

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

CaseArg = typer.Argument(..., help="The case directory (made by `sensorprint init`).", show_default=False)
WorkersOpt = typer.Option(None, "--workers", "-w", help="Local worker processes (default: one per core; 1 = no pool).")
SchedulerOpt = typer.Option(None, "--scheduler", help="Dask scheduler address (tcp://host:8786) to run on a cluster.")
FramesOpt = typer.Option(5, "--frames", help="Video frames used per video (a cap for every strategy).", min=1)
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
ThresholdOpt = typer.Option(
    DEFAULT_PCE_THRESHOLD, "--threshold", help="PCE at or above which a device is declared the source.", min=0
)


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


def _signal_options(frames: int, frame_strategy: FrameStrategy, all_orientations: bool = False):
    from sensorprint.workflow.options import SignalOptions

    return SignalOptions(
        frame_strategy=str(frame_strategy), n_frames=frames, orientations="all" if all_orientations else "sensor"
    )


@app.command()
def init(case: Path = CaseArg) -> None:
    """Create a new, empty case directory."""
    from sensorprint.workflow import init_case

    with user_errors():
        init_case(case)
    out.print(f"created case {case}")


@app.command()
def enroll(
    case: Path = CaseArg,
    paths: list[Path] = typer.Argument(
        ..., help="Reference images and videos taken with the device (files or folders)."
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
) -> None:
    """Enroll a device: estimate its sensor fingerprint from reference media taken with it."""
    from sensorprint.workflow import enroll as enroll_device
    from sensorprint.workflow import open_case

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        summary = enroll_device(
            opened,
            device,
            paths,
            model=model,
            options=_signal_options(frames, frame_strategy),
            workers=workers,
            scheduler=scheduler,
            progress=progress,
        )
    for line in text.enroll_lines(summary):
        out.print(line)


@app.command()
def scan(
    case: Path = CaseArg,
    paths: list[Path] = typer.Argument(..., help="Seized storage: files or folders, searched recursively."),
    workers: int | None = WorkersOpt,
    scheduler: str | None = SchedulerOpt,
    threshold: float = ThresholdOpt,
    frames: int = FramesOpt,
    frame_strategy: FrameStrategy = StrategyOpt,
    all_orientations: bool = OrientationsOpt,
) -> None:
    """Compare every image and video under PATH with every enrolled device; resumable."""
    from sensorprint.workflow import open_case
    from sensorprint.workflow import scan as scan_media
    from sensorprint.workflow.options import ScanOptions

    with user_errors(), open_case(case) as opened, progress_bars() as progress:
        options = ScanOptions(threshold=threshold, signal=_signal_options(frames, frame_strategy, all_orientations))
        summary = scan_media(opened, paths, options=options, workers=workers, scheduler=scheduler, progress=progress)
    for line in text.scan_lines(summary):
        out.print(line)


@app.command()
def verify(
    a: Path = typer.Argument(..., help="A query image or video."),
    b: str = typer.Argument(..., help="Another image or video, or the name of a device enrolled in --case."),
    case: Path | None = typer.Option(None, "--case", help="Case whose enrolled device B names."),
    threshold: float = ThresholdOpt,
    frames: int = FramesOpt,
    frame_strategy: FrameStrategy = StrategyOpt,
    all_orientations: bool = OrientationsOpt,
) -> None:
    """Do A and B share a source camera? Prints PCE, false-alarm probability and the decision."""
    from sensorprint.workflow import verify as verify_pair
    from sensorprint.workflow.options import ScanOptions

    with user_errors():
        options = ScanOptions(threshold=threshold, signal=_signal_options(frames, frame_strategy, all_orientations))
        verification = verify_pair(a, b, case=case, options=options)
    table = Table(title=f"{a}  vs  {b}", show_header=False)
    for key, value in text.verify_rows(verification):
        table.add_row(key, value)
    out.print(table)
    raise typer.Exit(0 if verification.decision in ("match", "no match") else 1)


@app.command()
def report(
    case: Path = CaseArg,
    fmt: ReportFormat = typer.Option(ReportFormat.HTML, "--format", "-f", help="html (for the file), json or csv."),
    output: Path | None = typer.Option(None, "--out", "-o", help="Where to write it (default: in the case)."),
    threshold: float = ThresholdOpt,
) -> None:
    """Write the case report: every file, its best device, and the evidence for each decision."""
    from sensorprint.report import write_report
    from sensorprint.workflow import open_case

    with user_errors(), open_case(case, read_only=True) as opened:
        target = output or opened.root / f"report.{fmt}"
        written = write_report(opened, str(fmt), target, threshold=threshold)
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
def version() -> None:
    """Print the version of sensorprint."""
    out.print(f"sensorprint {__version__}")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
