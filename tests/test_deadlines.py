"""``QTHUMB_TASK_DEADLINE``: an attempt that runs past it (here: stuck reading a source that
never answers, well inside the read timeout) is stopped by the worker pool, which kills the
worker process running it, and the task fails naming the setting; the pool starts a new worker
and the next task completes."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import API_KEY, serving
from tests.qclient import QClient
from tests.test_on_demand import Stalling, stalling_source  # noqa: F401  (fixture)


def test_an_attempt_past_its_deadline_is_killed_and_reported(
    tmp_path: Path,
    clips: Path,
    stalling_source: Stalling,  # noqa: F811
):
    with serving(tmp_path, clips, workers=1, QTHUMB_TASK_DEADLINE="3",
                 QTHUMB_SOURCE_READ_TIMEOUT="120", QTHUMB_DOWNLOAD_DEADLINE="600",
                 QTHUMB_HEARTBEAT_TIMEOUT="600") as server, \
            QClient(server.base_url, API_KEY) as client:  # fmt: skip
        stuck = client.start({"source": stalling_source.url, "format": [{"output": "thumbnail"}]})
        status = client.wait(stuck, timeout=60)
        assert status["status"] == "error", status
        assert "QTHUMB_TASK_DEADLINE (3 s)" in status["error_description"]
        assert "its worker was stopped" in status["error_description"]
        # the one worker was killed: the pool replaced it, and it takes the next task
        done = client.wait(
            client.start({"source": str(clips / "index.mp4"), "format": [{"output": "thumbnail"}]}),
            timeout=60,
        )
        assert done["status"] == "completed", done
        logs = server.logs()
    assert "past QTHUMB_TASK_DEADLINE" in logs
    assert "queued again" not in logs  # failed once, by the deadline, not recovered by beats
