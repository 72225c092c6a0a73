"""The process tree of each mode after SIGKILL of each of its processes: a child that dies is
started again by its supervisor (the pool and huey's workers at once, the frame server on the
next request), what it had started goes with it, and once the top process is killed nothing
is left within a few seconds."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from qthumb.app.process.pool import child_pids
from qthumb.app.settings import SPARE_WORKERS
from tests.conftest import API_KEY, QthumbProcess, eventually, make_qthumb
from tests.qclient import QClient
from tests.test_orphans import command_of
from tests.watchdog import session_pids

POOL = "-m qthumb.workers --workers"  # the consumer, and the workers and scheduler it forks
FRAMES = "-m qthumb.workers.on_demand.frame_server"


def children(pid: int) -> list[int]:
    return sorted(child_pids(pid))


def tree(pid: int) -> str:
    """The tree under ``pid``, for failure messages."""
    lines, todo = [], [(pid, 0)]
    while todo:
        p, depth = todo.pop()
        lines.append("  " * depth + f"{p} {command_of(p)[-90:]}")
        todo += [(c, depth + 1) for c in children(p)]
    return "\n".join(lines)


def consumers(top: int) -> list[int]:
    return [p for p in children(top) if POOL in command_of(p)]


def pool_is_up(top: int, workers: int) -> int | None:
    """The consumer under ``top`` once it has forked its workers and scheduler."""
    pools = consumers(top)
    if len(pools) == 1 and len(children(pools[0])) == workers + SPARE_WORKERS + 1:
        return pools[0]
    return None


def frame_server(top: int) -> int | None:
    servers = [p for p in children(top) if FRAMES in command_of(p)]
    return servers[0] if len(servers) == 1 else None


def ask_frame(server: QthumbProcess, task: str, time: float) -> None:
    """A frame not asked before (a repeated one comes from the API's memory)."""
    url = f"{server.base_url}/v1/thumbnail.jpg?task_token={task}&time={time}&width=64"
    answer = httpx.get(url, timeout=60)
    assert answer.status_code == 200, answer.text


def kill_pool_parts(top: int, workers: int, server: QthumbProcess) -> None:
    """A huey worker: huey forks another. The consumer: its workers and scheduler go with it,
    and the supervisor starts a new pool."""
    why = lambda: f"{tree(top)}\n{server.logs()[-3000:]}"  # noqa: E731
    pool = eventually(lambda: pool_is_up(top, workers), 30, why)
    forked = children(pool)
    os.kill(forked[0], signal.SIGKILL)
    eventually(lambda: pool_is_up(top, workers) and set(children(pool)) - set(forked), 30, why)
    os.kill(pool, signal.SIGKILL)
    eventually(lambda: not any(command_of(p) for p in children(pool)) or None, 5, why)
    eventually(lambda: (p := pool_is_up(top, workers)) and p != pool, 30, why)


def kill_frame_server(top: int, server: QthumbProcess, task: str) -> None:
    ask_frame(server, task, 0.5)
    first = eventually(lambda: frame_server(top), 10, lambda: tree(top))
    os.kill(first, signal.SIGKILL)
    ask_frame(server, task, 0.7)  # started again for this request
    assert frame_server(top) not in (None, first), tree(top)


def kill_top(top: int, server: QthumbProcess) -> None:
    os.kill(top, signal.SIGKILL)
    for proc in server.procs:
        proc.wait()
    eventually(lambda: not session_pids(top), 5, lambda: "left behind:\n" + "\n".join(
        f"{p} {command_of(p)}" for p in session_pids(top)))  # fmt: skip


@pytest.mark.parametrize("mode", ["serve", "api", "worker"])
def test_sigkill_of_each_process_in_each_mode(tmp_path: Path, clips: Path, mode: str):
    server = make_qthumb(tmp_path, clips)
    helper: QthumbProcess | None = None
    try:
        if mode == "serve":
            server.serve(workers=2)
        else:
            server.listen("api")
        if mode == "worker":  # its API on the same data dir, in a process tree of its own
            helper, server = server, make_qthumb(tmp_path, clips)
            server.start("worker", "--workers", "2")
        base = (helper or server).base_url
        with QClient(base, API_KEY) as client:
            source = str(clips / "testsrc.mp4")
            task = client.start({"source": source, "format": [{"output": "thumbnail"}]})
        top = server.procs[0].pid
        if mode in ("serve", "worker"):
            kill_pool_parts(top, 2, server)
            with QClient(base, API_KEY) as client:  # the new pool takes tasks
                status = client.run({"source": source, "format": [{"output": "thumbnail"}]})
                assert status["status"] == "completed", status
        if mode in ("serve", "api"):
            kill_frame_server(top, server, task)
        kill_top(top, server)
    finally:
        server.stop()
        if helper is not None:
            helper.stop()
