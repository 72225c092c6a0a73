"""Several machines: two ``qthumb api`` and three ``qthumb worker`` processes, each with its own
empty data dir and working folder, sharing nothing but PostgreSQL, Redis and an S3 bucket.
50 tasks (thumbnails, sprites, slow ones, one tus upload received by one replica and run
through the other); one worker SIGKILLed mid-task and one API replica killed. Every task ends
with the right result, readable through the surviving replica; no message is left in Redis and
no row is stuck. Workers are not told any public URL: each replica answers with its own."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.conftest import API_KEY, QthumbProcess, eventually, make_qthumb
from tests.engines import Engines
from tests.qclient import QClient
from tests.test_restart import slow_clip  # noqa: F401  (fixture)
from tests.watchdog import session_pids

# the public URL each API replica is reached by (and reports); workers are given none
PUBLIC = ("http://one.qthumb.invalid", "http://two.qthumb.invalid")


def machine(tmp: Path, name: str, clips: Path, shared: dict[str, str]) -> QthumbProcess:
    (tmp / name).mkdir()
    return make_qthumb(tmp / name, clips, **shared)


def query(k: int, clips: Path, slow: Path) -> dict[str, Any]:
    if k % 5 == 0:  # long decodes, so the kill lands mid-task
        return {"source": str(slow), "format": [
            {"output": "thumbnail", "time": 0.97, "width": 160, "user_tag": f"t{k}"}]}  # fmt: skip
    if k % 5 == 1:
        return {"source": str(clips / "testsrc.mp4"), "format": [
            {"output": "thumbnails", "interval": 2, "sprite": 1, "columns": 3, "width": 64,
             "user_tag": f"t{k}"}]}  # fmt: skip
    return {
        "source": str(clips / "testsrc.mp4"),
        "format": [
            {"output": "thumbnail", "time": (k % 10) / 10, "width": 96, "user_tag": f"t{k}"}
        ],
    }


def upload(base_url: str, task: str, path: Path) -> str:
    """A tus upload (creation, then one PATCH) to a replica; returns ``tus:<uuid>``."""
    data = path.read_bytes()
    with httpx.Client(base_url=base_url, timeout=30) as http:
        created = http.post(
            f"/v1/upload_file/{task}",
            headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data))},
        )
        assert created.status_code == 201, created.text
        uid = created.headers["location"].rstrip("/").rsplit("/", 1)[-1]
        patched = http.patch(
            f"/v1/upload_file/{task}/{uid}",
            content=data,
            headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                     "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip
        assert patched.status_code == 204, patched.text
    return f"tus:{uid}"


def test_two_apis_three_workers_share_only_the_three_urls(
    tmp_path: Path,
    clips: Path,
    slow_clip: Path,  # noqa: F811
    engines: Engines,
):
    shared = engines.settings()
    env = {**shared, "QTHUMB_LOCAL_SOURCE_DIRS": f"{clips},{slow_clip.parent}"}
    apis = [
        machine(tmp_path, f"api{i}", clips, {**env, "QTHUMB_PUBLIC_BASE_URL": PUBLIC[i]})
        for i in range(2)
    ]
    workers = [machine(tmp_path, f"worker{i}", clips, env) for i in range(3)]
    try:
        for api in apis:
            api.listen("api")
        for worker in workers:
            worker.start("worker", "--workers", "1")
        first, second = apis
        with QClient(first.base_url, API_KEY) as a, QClient(second.base_url, API_KEY) as b:
            tasks: dict[str, int] = {}
            for k in range(49):
                tasks[(a if k % 2 else b).start(query(k, clips, slow_clip))] = k
            # received by the first replica, started and followed through the second
            upload_task = a.new_task()
            source = upload(first.base_url, upload_task, clips / "index.mp4")
            started = b.post("start_encode2", {"task_token": upload_task, "query": json.dumps(
                {"query": {"source": source, "format": [{"output": "thumbnail", "time": 0.5}]}}
            )})  # fmt: skip
            assert started["error"] == 0, started
            tasks[upload_task] = 49
            # one result, two replicas: each names it under its own public URL
            done = next(t for t, k in tasks.items() if k == 2)
            via_a, via_b = a.wait(done, timeout=120), b.wait(done, timeout=10)
            assert via_a["images"][0]["url"] == via_b["images"][0]["url"].replace(*PUBLIC[::-1])
            assert via_a["images"][0]["url"].startswith(f"{PUBLIC[0]}/storage/{done}/0/")
            assert via_a["status_url"] == f"{PUBLIC[0]}/v1/status"

            def a_worker_runs_a_slow_task() -> QthumbProcess | None:
                states = b.post("status", {"task_tokens": ",".join(tasks)})["statuses"]
                for token, status in states.items():
                    if tasks[token] % 5 == 0 and status["status"] in ("downloading", "encoding"):
                        row = engine_row(shared, token)
                        pid = int((row or {}).get("worker_id", ":0").rsplit(":", 1)[1])
                        for worker in workers:
                            if pid in session_pids(worker.procs[0].pid):
                                return worker
                return None

            victim = eventually(a_worker_runs_a_slow_task, 120, lambda: "no slow task ran")
            os.killpg(victim.procs[0].pid, signal.SIGKILL)  # the machine is gone
            os.killpg(first.procs[0].pid, signal.SIGKILL)  # and so is one API replica
            statuses = {t: b.wait(t, timeout=240) for t in tasks}
            for token, k in tasks.items():
                status = statuses[token]
                assert status["status"] == "completed", (k, status["error_description"])
                images = status["images"]
                assert images and all(i["url"].startswith(PUBLIC[1]) for i in images)
                for image in images:
                    body = b.fetch(image["url"].replace(PUBLIC[1], second.base_url))
                    assert body.status_code == 200 and len(body.content) == image["size"]
                    if image["type"] in ("thumbnail", "sprite"):
                        with Image.open(io.BytesIO(body.content)) as picture:
                            assert picture.size == (image["width"], image["height"])
                if k == 49:
                    assert images[0]["time"] == 2.0  # the frame at 0.5 of the uploaded clip
                elif k % 5 == 1:
                    assert [i["type"] for i in images] == ["sprite", "vtt"]
                else:
                    assert images[0]["user_tag"] == f"t{k}"
        logs = "\n".join(w.logs() for w in workers) + second.logs()
        assert "queued again: its worker " in logs  # the kill hit a task
        assert pending_messages(shared) == 0
        assert stuck_rows(shared) == 0
    finally:
        for process in [*apis, *workers]:
            process.stop()


def engine_row(shared: dict[str, str], token: str) -> dict[str, Any] | None:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(shared["QTHUMB_DATABASE_URL"], row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM tasks WHERE token = %s", (token,)).fetchone()


def pending_messages(shared: dict[str, str]) -> int:
    from huey import RedisHuey

    return int(RedisHuey(name="qthumb", url=shared["QTHUMB_QUEUE_URL"]).pending_count())


def stuck_rows(shared: dict[str, str]) -> int:
    import psycopg

    with psycopg.connect(shared["QTHUMB_DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tasks WHERE status NOT IN ('completed', 'error', 'created')"
        ).fetchone()
    return int(row[0]) if row else 0


def test_forty_tasks_while_huey_workers_are_killed_again_and_again(
    tmp_path: Path,
    clips: Path,
    slow_clip: Path,  # noqa: F811
    engines: Engines,
):
    """Redis + PostgreSQL: huey's workers are SIGKILLed one after another while 40 tasks run;
    the consumer forks each replacement from a process with no thread of ours, so none hangs,
    and every task completes."""
    from tests.test_process_tree import children, consumers

    shared = engines.settings()
    env = {**shared, "QTHUMB_LOCAL_SOURCE_DIRS": f"{clips},{slow_clip.parent}",
           "QTHUMB_MAX_ATTEMPTS": "20"}  # fmt: skip
    api, pool = machine(tmp_path, "api", clips, env), machine(tmp_path, "pool", clips, env)
    try:
        api.listen("api")
        top = pool.start("worker", "--workers", "2").pid
        with QClient(api.base_url, API_KEY) as client:
            tasks = {client.start(query(k, clips, slow_clip)): k for k in range(40)}
            kills = 0
            while kills < 12:
                states = client.post("status", {"task_tokens": ",".join(tasks)})["statuses"]
                if all(s["status"] in ("completed", "error") for s in states.values()):
                    break
                workers = [p for c in consumers(top) for p in children(c)]
                running = [p for p in workers if (engine_pids(shared) & {p})]
                if running:
                    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                        os.kill(running[0], signal.SIGKILL)
                        kills += 1
                time.sleep(0.6 if running else 0.1)
            statuses = {t: client.wait(t, timeout=240) for t in tasks}
        for token, k in tasks.items():
            status = statuses[token]
            assert status["status"] == "completed", (k, status["error_description"])
        logs = api.logs() + pool.logs()
        assert kills >= 3, f"the kills hit too few running tasks to mean anything: {kills}"
        assert "queued again: its worker " in logs, logs[-3000:]
        assert pending_messages(shared) == 0
        assert stuck_rows(shared) == 0
    finally:
        api.stop()
        pool.stop()


def engine_pids(shared: dict[str, str]) -> set[int]:
    """The process ids of the workers running a task now."""
    import psycopg

    with psycopg.connect(shared["QTHUMB_DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT worker_id FROM tasks WHERE status IN ('downloading', 'encoding', 'saving')"
        ).fetchall()
    return {int(r[0].rsplit(":", 1)[1]) for r in rows if r[0] and r[0].rsplit(":", 1)[1].isdigit()}
