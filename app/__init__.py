"""qthumb's HTTP face: settings, the Qencode wire format, the task model and its store."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qthumb")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0.0.0+unknown"
