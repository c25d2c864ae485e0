"""sensorprint: camera ballistics from sensor noise (PRNU) and learned noise classifiers."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("sensorprint")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
