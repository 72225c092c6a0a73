"""The recovery sweep's backlog check, on both engines: a queued task whose message was lost
is enqueued again, and a backlog whose messages are all there costs the sweep two counts, the
queue never read."""

from __future__ import annotations

from pathlib import Path

import pytest

from qthumb.app.settings import Settings
from qthumb.app.tasks.backends import Backends, build
from qthumb.app.tasks.recovery import sweep


@pytest.fixture()
def backends(backend: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backends:
    for name, value in backend.items():
        monkeypatch.setenv(name, value)
    return build(Settings(data_dir=tmp_path, heartbeat_timeout=3))


def queued(b: Backends, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        token = b.store.create_task("key", 0.0)
        assert b.store.start(token, "{}", None, 1.0)  # queued at t=1
        b.queue.enqueue(token)
        tokens.append(token)
    return tokens


def test_a_lost_message_is_sent_again_and_a_whole_backlog_is_not_read(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
):
    b = backends
    settings = Settings(data_dir=Path("/nonexistent"), heartbeat_timeout=3)
    b.queue.huey.flush()  # this engine's queue may hold another test's messages
    tokens = queued(b, 30)
    reads: list[int] = []
    missing = b.queue.missing
    monkeypatch.setattr(b.queue, "missing", lambda t: reads.append(len(t)) or missing(t))
    report = sweep(settings, b.store, b.queue, b.outbox, b.files, now=100.0)
    assert report.reenqueued == 0 and reads == []  # 30 queued, 30 messages: nothing to look for
    lost = b.queue.huey.dequeue()  # a worker took one and died before its claim
    assert lost is not None and lost.args[0] in tokens
    report = sweep(settings, b.store, b.queue, b.outbox, b.files, now=100.0)
    assert report.reenqueued == 1 and reads == [30]
    assert b.queue.missing(tokens) == []  # every task has its message again
    assert b.queue.depth() == 30
    b.queue.huey.flush()
