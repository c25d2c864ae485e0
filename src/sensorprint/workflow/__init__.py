"""sensorprint.workflow: the use cases that the CLI, the web interface and the tests all call.

init (Case.create), enroll, scan, verify, report, train, demo. Per-file work runs on an
executor (local processes or a Dask cluster); the calling process alone writes the case.
"""

from sensorprint.workflow.cases import init_case, open_case
from sensorprint.workflow.demo import run_demo
from sensorprint.workflow.enroll import enroll
from sensorprint.workflow.options import ScanOptions, SignalOptions
from sensorprint.workflow.review import file_results
from sensorprint.workflow.scan import scan
from sensorprint.workflow.train import train  # imports torch only when called
from sensorprint.workflow.verify import verify

__all__ = [
    "ScanOptions",
    "SignalOptions",
    "enroll",
    "file_results",
    "init_case",
    "open_case",
    "run_demo",
    "scan",
    "train",
    "verify",
]
