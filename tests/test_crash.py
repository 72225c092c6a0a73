"""Crash safety: 50 tasks while the API and the workers are SIGKILLed several times and started
again. Every task ends completed or error with a reason, none is stuck, every result recorded
matches the files that were stored, and the database passes SQLite's integrity check."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

from PIL import Image

from tests.conftest import API_KEY, make_qthumb
from tests.qclient import TERMINAL, QClient
from tests.test_restart import kill_all, slow_clip  # noqa: F401  (fixture)
from tests.test_thumbnail import frame_index
from tests.waiting import eventually


def query(k: int, clips: Path, slow: Path) -> dict:
    if k % 5 == 0:  # long decodes, so kills land mid-task
        return {"source": str(slow), "format": [
            {"output": "thumbnail", "time": t, "width": 160, "user_tag": f"t{k}"}
            for t in (0.93, 0.97, 0.99)]}  # fmt: skip
    if k % 5 == 1:
        return {"source": "/etc/passwd", "format": [{"output": "thumbnail"}]}  # fails, cleanly
    # the index clip (each frame's brightness its index): frame (k % 10) * 10 at (k % 10) / 10
    return {"source": str(clips / "index.mp4"), "format": [
        {"output": "thumbnail", "time": (k % 10) / 10, "user_tag": f"t{k}"},
        {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 3, "width": 64},
    ]}  # fmt: skip


def some_task_running(client: QClient, tasks: list[str], timeout: float = 60) -> bool:
    """Wait until a task runs (True), or every task has ended (False): a kill then lands on a
    running task, whatever the machine's speed."""

    def state() -> str | None:
        reply = client.post("status", {"task_tokens": ",".join(tasks)})
        states = {s["status"] for s in reply["statuses"].values()}
        if states & {"downloading", "encoding", "saving"}:
            return "running"
        return "ended" if states <= set(TERMINAL) else None

    return eventually(state, timeout, lambda: f"no task ran within {timeout} s") == "running"


def test_fifty_tasks_survive_repeated_sigkill(tmp_path: Path, clips: Path, slow_clip: Path):  # noqa: F811
    server = make_qthumb(tmp_path, clips, QTHUMB_LOCAL_SOURCE_DIRS=f"{clips},{slow_clip.parent}")
    try:
        server.serve(workers=2)
        with QClient(server.base_url, API_KEY) as client:
            tasks = {client.start(query(k, clips, slow_clip)): k for k in range(50)}
            kills = 0
            for _ in range(3):
                if not some_task_running(client, list(tasks)):
                    break  # all ended: nothing left to kill mid-task
                kill_all(server)
                kills += 1
                server.serve(workers=2)
            assert kills == 3, f"tasks ended after {kills} kills: the test needs longer ones"
            deadline = time.monotonic() + 300
            statuses = {}
            for task in tasks:
                statuses[task] = client.wait(task, timeout=max(1.0, deadline - time.monotonic()))
            for task, k in tasks.items():
                status = statuses[task]
                assert status["status"] in TERMINAL
                if k % 5 == 1:
                    assert status["status"] == "error"
                    assert status["error_description"].startswith("source /etc/passwd: ")
                    continue
                assert status["status"] == "completed", (k, status["error_description"])
                # the recorded result is the one on disk: same files, same sizes, right frames
                for image in status["images"]:
                    body = client.fetch(image["url"]).content
                    assert len(body) == image["size"], (k, image)
                    if image["type"] != "thumbnail":
                        continue
                    assert image["user_tag"] == f"t{k}"
                    with Image.open(io.BytesIO(body)) as shown:
                        assert shown.size == (image["width"], image["height"])
                        if k % 5:  # the index clip: the frame asked, not a neighbour
                            assert abs(frame_index(shown) - (k % 10) * 10) < 0.5, (k, image)
        assert "queued again: its worker " in server.logs()  # kills hit tasks
        db = sqlite3.connect(server.data_dir / "qthumb.db")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stuck = db.execute(
                "SELECT count(*) FROM tasks WHERE status NOT IN ('completed', 'error', 'created')"
            ).fetchone()[0]
            assert stuck == 0
        finally:
            db.close()
        work = server.data_dir / "work"
        assert not work.exists() or list(work.iterdir()) == []
    finally:
        server.stop()
