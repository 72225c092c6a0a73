"""Callbacks to a receiver on loopback: events in order, payload echoed, status as JSON, and a
dead receiver never fails a task."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.conftest import API_KEY, QthumbProcess, free_port, serve_in_thread, serving
from tests.qclient import QClient
from tests.waiting import eventually


class Receiver:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.arrived: dict[int, float] = {}  # a call's place in ``calls``: when it came
        self.fail_first = 0
        self.port = 0  # bound by the server (port 0), known once it runs

        async def hook(request: Request) -> PlainTextResponse:
            form = dict((await request.form()).items())
            self.arrived[len(self.calls)] = time.monotonic()
            self.calls.append(form)
            if self.fail_first > 0:
                self.fail_first -= 1
                return PlainTextResponse("busy", status_code=500)
            return PlainTextResponse("ok")

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def first_at(self, token: str) -> float:
        """When the first call for ``token`` came (``time.monotonic``)."""
        return min(self.arrived[n] for n, c in enumerate(self.calls) if c["task_token"] == token)

    def events(self, token: str) -> list[str]:
        return [c["event"] for c in self.calls if c["task_token"] == token]

    def calls_for(self, token: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """The calls for ``token``, once there are ``count`` of them."""
        events = lambda: self.events(token)  # noqa: E731
        eventually(lambda: len(events()) >= count, timeout, lambda: str(events()))
        return [c for c in self.calls if c["task_token"] == token]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    with serve_in_thread(r.app) as port:
        r.port = port
        yield r


@pytest.fixture(autouse=True)
def _fresh_receiver(receiver: Receiver) -> None:
    """The receiver is shared by the module: no test inherits another's failures to come."""
    receiver.fail_first = 0


@pytest.fixture(scope="module")
def cb_qthumb(tmp_path_factory: pytest.TempPathFactory, clips: Path) -> Iterator[QthumbProcess]:
    with serving(
        tmp_path_factory.mktemp("qthumb-cb"), clips,
        QTHUMB_CALLBACK_ATTEMPTS="3", QTHUMB_CALLBACK_BACKOFF="0.1", QTHUMB_CALLBACK_TIMEOUT="2",
    ) as server:  # fmt: skip
        yield server


@pytest.fixture()
def cb(cb_qthumb: QthumbProcess) -> Iterator[QClient]:
    with QClient(cb_qthumb.base_url, API_KEY) as c:
        yield c


def test_good_task_sends_queued_then_saved(cb: QClient, clips: Path, receiver: Receiver):
    task = cb.start(
        {"source": str(clips / "testsrc.mp4"), "callback_url": receiver.url,
         "format": [{"output": "thumbnail"}]},
        payload="my-payload-42",
    )  # fmt: skip
    calls = receiver.calls_for(task, 2)
    assert [c["event"] for c in calls] == ["queued", "saved"]
    for call in calls:
        assert call["payload"] == "my-payload-42" and call["callback_type"] == "task"
    queued, saved = (json.loads(c["status"]) for c in calls)
    assert queued["status"] == "queued" and queued["images"] == []  # as of the event
    assert saved["status"] == "completed" and saved["error"] == 0
    assert saved["images"][0]["url"].endswith("/0/thumbnail.png")
    assert cb.wait(task)["warnings"] == []


def test_failing_task_sends_queued_error_saved(cb: QClient, receiver: Receiver):
    task = cb.start({"source": "/etc/passwd", "callback_url": receiver.url,
                     "format": [{"output": "thumbnail"}]})  # fmt: skip
    calls = receiver.calls_for(task, 3)
    assert [c["event"] for c in calls] == ["queued", "error", "saved"]
    assert calls[1]["error_message"].startswith("source /etc/passwd: local files must be")
    # each event carries the status as of that event, whenever it is delivered
    assert [json.loads(c["status"])["status"] for c in calls] == ["queued", "error", "error"]


def test_a_500_is_retried(cb: QClient, clips: Path, receiver: Receiver):
    receiver.fail_first = 1
    task = cb.start({"source": str(clips / "testsrc.mp4"), "callback_url": receiver.url,
                     "format": [{"output": "thumbnail"}]})  # fmt: skip
    calls = receiver.calls_for(task, 3)
    assert [c["event"] for c in calls] == ["queued", "queued", "saved"]
    assert cb.wait(task)["warnings"] == []
    # the retried "queued" went out after the task had ended: it still says "queued"
    assert [json.loads(c["status"])["status"] for c in calls] == ["queued", "queued", "completed"]


def test_dead_receiver_does_not_fail_the_task(cb: QClient, clips: Path):
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"
    task = cb.start({"source": str(clips / "testsrc.mp4"), "callback_url": dead,
                     "format": [{"output": "thumbnail"}]})  # fmt: skip

    def warned_twice() -> dict[str, Any] | None:
        status = cb.wait(task)
        return status if len(status["warnings"]) >= 2 else None

    status = eventually(warned_twice, 30)
    assert status["status"] == "completed" and status["error"] == 0
    assert [w["message"] for w in status["warnings"]] == ["Callback delivery error"] * 2
    assert status["warnings"][0]["details"].startswith(f"Error sending callback to {dead} ")
    # tagged as the task's first output (one rule for every warning); the event in the details
    assert [w["tag"] for w in status["warnings"]] == ["image-0-0"] * 2
    assert status["warnings"][0]["details"].endswith("(event queued)")


def test_payload_over_1000_chars_is_error_9(cb: QClient):
    task = cb.new_task()
    reply = cb.post("start_encode2", {"task_token": task, "payload": "p" * 1001,
                                      "query": json.dumps({"query": {"source": "/x", "format": [
                                          {"output": "thumbnail"}]}})})  # fmt: skip
    assert reply["error"] == 9


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_outbox_keeps_each_tasks_events_in_order(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
):
    from qthumb.app.tasks.outbox import CallbackOutbox
    from qthumb.app.tasks.sql.db import Database, PostgresDatabase, SqliteDatabase
    from qthumb.app.tasks.sql.schema import MIGRATIONS

    db: Database
    if engine == "sqlite":
        db = SqliteDatabase(tmp_path / "t.db")
    else:
        db = PostgresDatabase(request.getfixturevalue("engines").settings()["QTHUMB_DATABASE_URL"])
    db.migrate(MIGRATIONS[db.dialect])
    box = CallbackOutbox(db)
    request.addfinalizer(db.close)
    box.add("a", ["queued"], now=0)
    box.add("b", ["queued"], now=0)
    box.add("a", ["error", "saved"], now=0)
    due = box.due(now=1, limit=10)
    assert [(d.token, d.event) for d in due] == [("a", "queued"), ("b", "queued")]
    first = due[0]
    assert box.claim(first, now=1, lease=5) and not box.claim(first, now=2, lease=5)
    box.retry_at(first, when=10)  # "queued" of a waits: nothing else of a may go before it
    assert [(d.token, d.event) for d in box.due(now=3, limit=10)] == [("b", "queued")]
    assert [d.event for d in box.due(now=11, limit=10) if d.token == "a"] == ["queued"]
    box.settle(first)
    assert [d.event for d in box.due(now=11, limit=10) if d.token == "a"] == ["error"]
    assert box.pending("a") == ["error", "saved"]
