"""What ``qthumb serve`` and ``qthumb api`` do before they serve: ``QTHUMB_PROFILES`` checked
and ``QTHUMB_INIT_DIR`` loaded (either stops the start with exit 2, naming what is wrong), and
the banner that tells the person starting qthumb where everything is."""

from __future__ import annotations

import sys

from qthumb import app as qthumb_app
from qthumb.app.api.keys import resolve_api_keys
from qthumb.app.control.state import BadArchive
from qthumb.app.control.state import load_init_dir as load_archives
from qthumb.app.qencode.profiles import load_profiles
from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import Backends
from qthumb.app.tasks.faults import FaultStore


def banner(settings: Settings, backends: Backends, workers: int | None) -> str:
    """What a person starting qthumb needs to know, in a few lines."""
    keys, dev_key = resolve_api_keys(settings)
    key = (
        f"dev API key {dev_key} (kept in {settings.dev_key_path})"
        if dev_key
        else f"{len(keys)} API key(s) from QTHUMB_API_KEYS"
    )
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lines = [
        f"qthumb {qthumb_app.__version__}: API on http://{host}:{settings.port}"
        + (f" (public URL {settings.public_base_url})" if settings.public_base_url else ""),
        f"  console: http://{host}:{settings.port}/ui/ (sign in with the API key)",
        f"  key:     {key}",
        f"  data:    {settings.data_dir.resolve()}",
        *(f"  {line}" for line in _aligned(backends.describe())),
    ]
    if workers is not None:
        lines.append(f"  workers: {workers} processes, and 1 for keys below their share")
    if settings.control:
        admin = "reset?all=1 with QTHUMB_ADMIN_KEY" if settings.admin_key else "no admin key"
        lines.append(f"  control: on: /_qthumb/ reset and faults, per API key ({admin})")
    if settings.seed:
        lines.append("  tokens:  PREDICTABLE: drawn from QTHUMB_SEED (for test suites only)")
    lines.append("  stop:    Ctrl-C (running tasks are handed back to the queue)")
    return "\n".join(lines)


def check_profiles(settings: Settings) -> None:
    """``QTHUMB_PROFILES`` is read and each entry checked as start_encode2 checks a query's
    before the API serves: a bad file stops the start, naming the file and the profile."""
    try:
        load_profiles(settings.profiles)
    except ValueError as exc:
        print(f"qthumb: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def load_init_dir(settings: Settings, backends: Backends) -> list[str]:
    """``QTHUMB_INIT_DIR``'s archives and fault files (``app.control.state``); one that cannot be
    loaded stops the start, naming it."""
    if settings.init_dir is None:
        return []
    faults = FaultStore(backends.db) if settings.control else None
    keys = set(resolve_api_keys(settings)[0])
    try:
        return load_archives(settings.init_dir, backends.db, backends.files, faults, keys)
    except BadArchive as exc:
        print(f"qthumb: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _aligned(described: list[str]) -> list[str]:
    return [
        f"{name + ':':<8} {what.strip()}" for name, _, what in (d.partition(":") for d in described)
    ]
