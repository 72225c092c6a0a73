"""``QTHUMB_WORKER_MEMORY_LIMIT``: a query that needs more memory than a worker may have fails
its own format with an error naming the setting (in the worker, and in its encoder child),
and the same worker goes on with the next task. The server runs under the memory watchdog. (The
gif bomb, scaled down, runs under a limit too: ``test_hardening``.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, QthumbProcess, ffmpeg, serving
from tests.qclient import QClient
from tests.watchdog import MemoryWatchdog

LIMIT_MB = 400  # an idle worker holds ~60 MB; one 4096x4096 frame through decode and Pillow ~350
NAMED = "ran out of memory: it needs more than QTHUMB_WORKER_MEMORY_LIMIT allows (381 MiB"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=4096x4096:r=25:d=0.4", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, clips: Path, big: Path
) -> Iterator[QthumbProcess]:
    with serving(
        tmp_path_factory.mktemp("limited"), clips, workers=1,
        QTHUMB_LOCAL_SOURCE_DIRS=f"{clips},{big.parent}",
        QTHUMB_MAX_SOURCE_PIXELS="20000000", QTHUMB_MAX_OUTPUT_PIXELS="100000000",
        QTHUMB_WORKER_MEMORY_LIMIT=str(LIMIT_MB * 1_000_000),
    ) as server:  # fmt: skip
        with MemoryWatchdog(server.procs[0].pid, 1500) as watchdog:
            yield server
        assert watchdog.tripped is None, watchdog.tripped


def run(server: QthumbProcess, source: Path, fmt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    with QClient(server.base_url, API_KEY) as client:
        task = client.start({"source": str(source), "format": [fmt]})
        return task, client.wait(task, timeout=120)


def worker_of(server: QthumbProcess, token: str) -> str:
    import sqlite3

    db = sqlite3.connect(server.data_dir / "qthumb.db")
    try:
        return str(
            db.execute("SELECT worker_id FROM tasks WHERE token = ?", (token,)).fetchone()[0]
        )
    finally:
        db.close()


@pytest.mark.parametrize(
    "fmt",
    [
        {"output": "thumbnail", "time": 0.5, "size": "8000x8000"},  # 192 MB a copy of it
        {"output": "thumbnails", "interval": 0.1, "sprite": 1},  # sheets of 4096x4096 tiles
    ],
)
def test_past_the_limit_the_format_fails_naming_the_setting(
    limited: QthumbProcess, big: Path, clips: Path, fmt: dict[str, Any]
):
    task, failed = run(limited, big, fmt)
    assert failed["status"] == "error" and NAMED in failed["error_description"], failed
    next_task, after = run(limited, clips / "testsrc.mp4", {"output": "thumbnail", "width": 96})
    assert after["status"] == "completed", after
    # the same worker process: nothing died, nothing was restarted
    assert worker_of(limited, task) == worker_of(limited, next_task)


def test_the_encoder_child_inherits_the_limit(limited: QthumbProcess, big: Path):
    """The mp4/webm/gif encoder runs in a child of the worker, under the same ceiling."""
    from tests.test_orphans import command_of
    from tests.watchdog import session_pids

    with QClient(limited.base_url, API_KEY) as client:
        task = client.start({"source": str(big), "format": [{"output": "mp4", "size": "320x320"}]})

        def encoder() -> int | None:
            found = [p for p in session_pids(limited.procs[0].pid)
                     if "qthumb.workers.outputs.encode" in command_of(p)]  # fmt: skip
            return found[0] if found else None

        limits = ""
        deadline = time.monotonic() + 60
        while not limits and time.monotonic() < deadline:
            pid = encoder()
            try:
                limits = Path(f"/proc/{pid}/limits").read_text() if pid else ""
            except OSError:
                limits = ""
        client.wait(task, timeout=120)
    line = next(x for x in limits.splitlines() if x.startswith("Max data size"))
    assert line.split()[3] == str(LIMIT_MB * 1_000_000), line
