"""``QTHUMB_WORKER_MEMORY_LIMIT``: a query that needs more memory than a worker may have fails
its own format with an error naming the setting (in the worker, and in its encoder child),
and the same worker goes on with the next task; a library that crashes instead is told as
memory at once; the shares add up to ``QTHUMB_MEMORY_BUDGET``. The server runs under the
memory watchdog. A worker whose heap stays mapped past half its share after a task retires and
is replaced (``heap_stays_high``). (The gif bomb, scaled down, runs under a limit too:
``test_hardening``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qthumb.app.memory import memory_failure, memory_limit
from qthumb.app.settings import Settings
from tests.conftest import API_KEY, QthumbProcess, ffmpeg, serving
from tests.qclient import QClient
from tests.waiting import eventually
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
        QTHUMB_MAX_OUTPUT_PIXELS="100000000",
        QTHUMB_WORKER_MEMORY_LIMIT=str(LIMIT_MB * 1_000_000),
        QTHUMB_HEARTBEAT_TIMEOUT="120",  # a crash is told at once, not when a beat is missed
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
    ("source", "fmt"),
    [
        ("big", {"output": "thumbnail", "time": 0.5, "size": "8000x8000"}),  # 192 MB a copy
        ("big", {"output": "thumbnails", "interval": 0.1, "sprite": 1}),  # 4096x4096 tiles
        # libavif crashed the worker here (SIGSEGV) instead of failing: refused first now
        ("big", {"output": "thumbnail", "image_format": "avif"}),
        # (an 8K source is not here: under this limit FFmpeg's h264 decoder sometimes reports
        # its failed allocation as invalid data, so what the task says is not the same twice)
    ],
)
def test_past_the_limit_the_format_fails_naming_the_setting(
    limited: QthumbProcess, clips: Path, source: str, fmt: dict[str, Any],
    request: pytest.FixtureRequest,
):  # fmt: skip
    task, failed = run(limited, request.getfixturevalue(source), fmt)
    assert failed["status"] == "error" and NAMED in failed["error_description"], failed
    next_task, after = run(limited, clips / "testsrc.mp4", {"output": "thumbnail", "width": 96})
    assert after["status"] == "completed", after
    # The same worker process goes on, unless its heap stayed mapped past half its share: then
    # it retired after the failed task, saying so, and a fresh one took the next.
    failed_on, next_on = worker_of(limited, task), worker_of(limited, next_task)
    retired = f"worker {failed_on.rpartition(':')[2]} retires: "
    assert next_on == failed_on or retired in limited.logs(), limited.logs()[-3000:]
    assert retired not in limited.logs() or next_on != failed_on


def image_of(pid: int) -> str:
    """The name of the program a process runs now ("" once it ended)."""
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        return ""


def test_the_encoder_child_inherits_the_limit(limited: QthumbProcess, big: Path):
    """The mp4/webm/gif encoder runs in a child of the worker, under the same ceiling."""
    from tests.test_orphans import command_of
    from tests.watchdog import session_pids

    with QClient(limited.base_url, API_KEY) as client:
        task = client.start({"source": str(big), "format": [{"output": "mp4", "size": "320x320"}]})

        def encoder() -> int | None:
            """The encoder once it is Python (setpriv and prlimit run first, in the same pid)."""
            found = [p for p in session_pids(limited.procs[0].pid)
                     if "qthumb.workers.outputs.encoding.encode" in command_of(p)
                     and "python" in image_of(p)]  # fmt: skip
            return found[0] if found else None

        def read_limits() -> str:
            pid = encoder()
            try:
                return Path(f"/proc/{pid}/limits").read_text() if pid else ""
            except OSError:  # it ended between the two reads
                return ""

        limits = eventually(read_limits, 60, every=0.01)
        client.wait(task, timeout=120)
    line = next(x for x in limits.splitlines() if x.startswith("Max data size"))
    # what its worker left of the share: the two together stay within it
    assert 64 << 20 <= int(line.split()[3]) < LIMIT_MB * 1_000_000, line


def test_a_worker_that_crashes_is_told_as_memory_at_once(limited: QthumbProcess, clips: Path):
    """A media library that crashes (a fatal signal) under the limit takes its worker with
    it: the task fails at once, naming the setting, not when its heartbeat is missed (120 s
    here) and not three crashes later; a new worker takes the next task."""
    control = {"Authorization": f"Bearer {API_KEY}"}
    rule = [{"task": {"user_tag": "crash"}, "hold": {"encoding": 60}}]
    assert httpx.post(f"{limited.base_url}/_qthumb/faults", json=rule, headers=control).is_success
    try:
        with QClient(limited.base_url, API_KEY) as client:
            task = client.start({"source": str(clips / "testsrc.mp4"), "format": [
                {"output": "thumbnail", "user_tag": "crash"}]})  # fmt: skip
            eventually(lambda: client.status(task)["status"] == "encoding", 30)
            os.kill(int(worker_of(limited, task).rsplit(":", 1)[1]), signal.SIGSEGV)
            started = time.monotonic()
            failed = client.wait(task, timeout=30)
            assert time.monotonic() - started < 15
        assert failed["status"] == "error"
        assert "crashed (Segmentation fault)" in failed["error_description"], failed
        assert "QTHUMB_WORKER_MEMORY_LIMIT" in failed["error_description"]
    finally:
        httpx.delete(f"{limited.base_url}/_qthumb/faults", headers=control)
    _, after = run(limited, clips / "testsrc.mp4", {"output": "thumbnail", "width": 96})
    assert after["status"] == "completed", after


def test_the_shares_add_up_to_the_budget():
    settings = Settings(workers=3, memory_budget=8 << 30)
    shares = settings.pool_processes + 1  # the workers, the spare and the frame server
    assert memory_limit(settings) * shares <= 8 << 30
    assert memory_limit(settings) == (8 << 30) // 5
    assert "QTHUMB_MEMORY_BUDGET" in memory_failure(settings)
    fixed = Settings(worker_memory_limit=500 << 20)
    assert memory_limit(fixed) == 500 << 20
    assert "QTHUMB_WORKER_MEMORY_LIMIT" in memory_failure(fixed)


def test_a_heap_past_half_its_limit_is_told_high():
    """What a worker reads after each task to decide to retire, in a process of its own."""
    probe = (
        "import resource; from qthumb.app.memory import data_in_use, heap_stays_high\n"
        "used = data_in_use(); _, hard = resource.getrlimit(resource.RLIMIT_DATA)\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (used * 3, hard)); print(heap_stays_high())\n"
        "held = bytearray(used)  # twice what it held: past half of three times\n"
        "print(heap_stays_high() is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.split() == ["None", "True"], done
