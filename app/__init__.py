"""qthumb's HTTP face: settings, the Qencode wire format, the task model and its store."""


def __getattr__(name: str) -> str:
    # ``__version__`` is read from the installed metadata when asked for: importlib.metadata
    # costs every command 20 ms at start, and most never print the version.
    if name != "__version__":
        raise AttributeError(f"module 'app' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qthumb")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0.0.0+unknown"
