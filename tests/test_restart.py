"""Tasks survive SIGKILL of the API and the workers: every task ends completed or error."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import API_KEY, QthumbProcess, ffmpeg, make_qthumb
from tests.qclient import TERMINAL, QClient
from tests.waiting import eventually


@pytest.fixture(scope="module")
def slow_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """720p with one keyframe every 20 s: a late exact frame means decoding ~500 frames."""
    path = tmp_path_factory.mktemp("slow") / "slow.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=20", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "500", "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def slow_query(clip: Path) -> dict:
    fractions = (0.93, 0.95, 0.97, 0.99)
    return {
        "source": str(clip),
        "format": [{"output": "thumbnail", "time": f, "width": 320} for f in fractions],
    }


def kill_all(server: QthumbProcess) -> None:
    for proc in server.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    server.procs.clear()


def wait_until_running(client: QClient, tasks: list[str], timeout: float = 60) -> None:
    def running() -> bool:
        states = {client.status(t)["status"] for t in tasks}
        return bool(states & {"downloading", "encoding", "saving"})

    eventually(running, timeout, lambda: "no task started running")


def test_sigkill_with_tasks_queued_and_running(tmp_path: Path, slow_clip: Path):
    server = make_qthumb(tmp_path, slow_clip.parent)
    try:
        server.serve(workers=2)
        with QClient(server.base_url, API_KEY) as client:
            tasks = [client.start(slow_query(slow_clip)) for _ in range(6)]
            for _ in range(2):  # kill everything twice mid-run
                wait_until_running(client, tasks)
                kill_all(server)
                server.serve(workers=2)
            statuses = {t: client.wait(t, timeout=240) for t in tasks}
        for task, status in statuses.items():
            assert status["status"] in TERMINAL, task
            assert status["status"] == "completed", status["error_description"]
            assert len(status["images"]) == 4
        work = server.data_dir / "work"
        assert not work.exists() or list(work.iterdir()) == []
    finally:
        server.stop()


def test_task_whose_worker_keeps_dying_ends_in_error(tmp_path: Path, slow_clip: Path):
    server = make_qthumb(tmp_path, slow_clip.parent, QTHUMB_MAX_ATTEMPTS="1")
    try:
        server.serve(workers=1)
        with QClient(server.base_url, API_KEY) as client:
            task = client.start(slow_query(slow_clip))
            wait_until_running(client, [task])
            kill_all(server)
            # Only the API comes back: nobody may run the task again, recovery must end it.
            server.listen("api")
            status = client.wait(task, timeout=60)
        assert status["status"] == "error"
        assert status["error_description"].startswith("worker stopped while the task was ")
        assert "(1 attempts, the limit is 1)" in status["error_description"]
    finally:
        server.stop()


def test_serve_restarts_a_worker_pool_that_died(tmp_path: Path, clips: Path):
    server = make_qthumb(tmp_path, clips)
    try:
        server.serve(workers=1)
        serve_pid = server.procs[0].pid
        pool = subprocess.run(
            ["pgrep", "-P", str(serve_pid), "-f", "[-]m qthumb[.]workers"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.split()  # fmt: skip
        assert len(pool) == 1
        os.kill(int(pool[0]), signal.SIGKILL)
        with QClient(server.base_url, API_KEY) as client:
            status = client.run(
                {"source": str(clips / "testsrc.mp4"), "format": [{"output": "thumbnail"}]},
                timeout=60,
            )
        assert status["status"] == "completed"
        assert "ended (signal SIGKILL); starting it again in 1 s" in server.logs()
    finally:
        server.stop()
