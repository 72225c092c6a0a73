"""No qthumb process outlives the one that started it: SIGKILL of ``serve`` takes the worker
pool with it (no second pool after a restart), and SIGKILL of the pool's consumer takes its
workers, huey's scheduler and a running encoder with it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import API_KEY, eventually, make_qthumb
from tests.qclient import QClient
from tests.test_restart import slow_clip  # noqa: F401  (fixture)
from tests.watchdog import session_pids


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pool_is_up(sid: int, workers: int) -> list[int] | None:
    """The session's processes once the consumer has forked its workers and scheduler."""
    pids = session_pids(sid)
    pool = [p for p in pids if "-m qthumb.workers" in command_of(p)]
    # consumer + workers + scheduler, all with the consumer's command line
    return pids if len(pool) >= workers + 2 else None


def left_behind(sid: int, logs: str) -> str:
    """What is still running, and the end of the logs that should say why it did not stop."""
    still = ", ".join(f"{p} {command_of(p)}" for p in session_pids(sid))
    return f"left behind: {still}\n{logs[-3000:]}"


def gone(sid: int) -> bool:
    return not session_pids(sid)


def test_sigkill_of_serve_takes_the_worker_pool_with_it(tmp_path: Path, clips: Path):
    server = make_qthumb(tmp_path, clips)
    try:
        server.serve(workers=2)
        sid = server.procs[0].pid
        eventually(lambda: pool_is_up(sid, 2), 30, lambda: f"pool not up: {session_pids(sid)}")
        os.kill(sid, signal.SIGKILL)  # serve alone, not its process group
        server.procs[0].wait()
        eventually(lambda: gone(sid), 15, lambda: left_behind(sid, server.logs()))
    finally:
        server.stop()


def test_sigkill_of_the_consumer_takes_workers_scheduler_and_encoder(
    tmp_path: Path,
    slow_clip: Path,  # noqa: F811
):
    server = make_qthumb(tmp_path, slow_clip.parent)
    try:
        server.listen("api")
        worker = server.start("worker", "--workers", "2")  # execs the consumer: same pid
        sid = worker.pid
        eventually(lambda: pool_is_up(sid, 2), 30, lambda: f"pool not up: {session_pids(sid)}")
        with QClient(server.base_url, API_KEY) as client:
            client.start({"source": str(slow_clip), "format": [{"output": "mp4"}]})

            def encoder_running() -> bool:
                return any(
                    "qthumb.workers.outputs.encoding.encode" in command_of(p)
                    for p in session_pids(sid)
                )

            eventually(encoder_running, 30, lambda: f"no encoder started: {server.logs()}")
        os.kill(sid, signal.SIGKILL)
        worker.wait()
        eventually(lambda: gone(sid), 15, lambda: "left behind: " + ", ".join(
            f"{p} {command_of(p)}" for p in session_pids(sid)))  # fmt: skip
    finally:
        server.stop()
