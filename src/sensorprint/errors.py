"""The error types a user can cause. Each message says what went wrong and what to do.

The CLI turns these into one line each; anything else is a bug and keeps its traceback.
"""


class SensorprintError(Exception):
    """Base class of every error caused by input or usage rather than by a bug."""


class MediaError(SensorprintError):
    """A file of evidence or reference that cannot be read as an image or a video."""


class CaseError(SensorprintError):
    """A case directory that is missing, damaged, of a newer schema, or misused."""


class MatchError(SensorprintError):
    """Two signals that cannot be compared (e.g. no geometric relation is possible)."""


class ModelError(SensorprintError):
    """A learned model that is missing, stale, or was trained on other classes."""
