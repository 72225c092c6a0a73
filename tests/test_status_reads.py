"""Status polls on PostgreSQL are read together (``app.tasks.sql.task_rows.StatusReads``): polls
that arrive while a read is in flight share the next one; none gets a row read before it
arrived; a failed read fails the polls it carried and not the next ones."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from qthumb.app.tasks.sql.task_rows import StatusReads


def row(token: str, status: str = "queued") -> dict[str, Any]:
    return {"token": token, "api_key": "k", "status": status, "created_at": 0.0,
            "percent": 0.0, "error_description": None, "payload": None, "attempts": 0,
            "duration": None, "source_size": None, "outputs": None}  # fmt: skip


class Table:
    """A table whose reads take a while, each one recorded with the tokens it asked for."""

    def __init__(self) -> None:
        self.status = {t: "queued" for t in "abcdef"}
        self.reads: list[list[str]] = []
        self.fail_next = False

    async def read(self, tokens: list[str]) -> Sequence[Mapping[str, Any]]:
        self.reads.append(tokens)
        seen = dict(self.status)  # what the database holds when the read starts
        await asyncio.sleep(0.01)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the database went away")
        return [row(t, seen[t]) for t in tokens if t in seen]


def test_polls_that_arrive_during_a_read_share_the_next():
    async def scenario() -> None:
        table = Table()
        reads = StatusReads(table.read)
        first = asyncio.create_task(reads.statuses(["a"]))
        await asyncio.sleep(0)  # the first read is in flight
        table.status["b"] = "completed"
        rest = [asyncio.create_task(reads.statuses(tokens))
                for tokens in (["b"], ["c", "a"], ["zz"], ["b"])]  # fmt: skip
        answers = [await first] + [await task for task in rest]
        assert table.reads == [["a"], ["b", "c", "a", "zz"]]
        assert [sorted(a) for a in answers] == [["a"], ["b"], ["a", "c"], [], ["b"]]
        assert answers[1]["b"].status.value == "completed"  # read after it arrived

    asyncio.run(scenario())


def test_a_failed_read_fails_its_polls_only():
    async def scenario() -> None:
        table = Table()
        reads = StatusReads(table.read)
        table.fail_next = True
        with pytest.raises(ConnectionError):
            await reads.statuses(["a"])
        assert (await reads.statuses(["a"]))["a"].token == "a"

    asyncio.run(scenario())


def test_a_poll_whose_client_left_does_not_stop_the_others():
    async def scenario() -> None:
        table = Table()
        reads = StatusReads(table.read)
        first = asyncio.create_task(reads.statuses(["a"]))
        await asyncio.sleep(0)
        gone = asyncio.create_task(reads.statuses(["b"]))
        kept = asyncio.create_task(reads.statuses(["c"]))
        await asyncio.sleep(0)
        gone.cancel()
        assert list(await first) == ["a"] and list(await kept) == ["c"]

    asyncio.run(scenario())
    asyncio.run(scenario())  # a second event loop: nothing left over from the first
