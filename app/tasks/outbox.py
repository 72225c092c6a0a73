"""Callbacks waiting to be delivered, in the task database: durable, ordered per task, and
retried on a schedule without holding a worker.

Events are added when they happen (``queued`` by the API, ``error``/``saved`` by whoever ended
the task); the API delivers them (``app.tasks.callbacks.deliver_due``). Only the oldest undelivered
event of a task is ever due, so a receiver sees ``queued`` → ``error`` → ``saved`` in order.
A claim with a lease keeps two API processes from sending the same event at once. The table
lives in the task database (``app.tasks.sql.db``, schema in ``app.tasks.sql.schema``), on
either engine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from qthumb.app.tasks.faults import CallbackFault, FaultStore, task_faults_from_json
from qthumb.app.tasks.sql.db import Database

log = logging.getLogger("qthumb.faults")


@dataclass(frozen=True)
class PendingCallback:
    id: int
    token: str
    event: str
    attempts: int
    status: str | None = None  # the status object's JSON as of the event


@dataclass(frozen=True)
class CallbackRecord:
    event: str
    attempts: int  # failed tries so far
    outcome: str  # pending | delivered | given_up | no_url | settled (before version 3)


class CallbackOutbox:
    def __init__(self, db: Database, control: bool = False) -> None:
        self.db = db  # its schema is applied when it is opened (app.tasks.backends)
        # QTHUMB_CONTROL: callback faults a test asked for apply as events are queued
        self.faults = FaultStore(db) if control else None

    def add(self, token: str, events: Sequence[str], now: float, status: str | None = None) -> None:
        """Queue ``events``; ``status`` is the task's status object (JSON) as of them."""
        rows = [(token, event, now, status) for event in events]
        if self.faults is not None:
            rows = [row for event in events for row in self._with_faults(token, event, now, status)]
        self.db.executemany(
            "INSERT INTO callbacks (token, event, next_at, status) VALUES (?, ?, ?, ?)", rows
        )

    def _with_faults(
        self, token: str, event: str, now: float, status: str | None
    ) -> list[tuple[str, str, float, str | None]]:
        """The rows one event becomes under the callback faults in force: none (dropped), one
        due later (delayed: the task's later events wait behind it, in order), or two."""
        assert self.faults is not None
        task = self.db.execute(
            "SELECT api_key, faults FROM tasks WHERE token = ?", (token,)
        ).first()
        if task is None:
            return [(token, event, now, status)]
        own = [f for f in task_faults_from_json(task["faults"]) if isinstance(f, CallbackFault)]
        rules = self.faults.in_force(task["api_key"], CallbackFault)
        for fault in [*own, *(r.fault for r in rules)]:
            assert isinstance(fault, CallbackFault)
            if fault.event != event:
                continue
            rule = next((r for r in rules if r.fault is fault), None)
            if rule is not None and not self.faults.fire(rule, token):
                continue  # its times ran out meanwhile
            if rule is None:
                log.warning(
                    "fault of task %s fired: callback %s %s",
                    token,
                    event,
                    "dropped" if fault.drop else "delayed" if fault.delay else "doubled",
                )
            if fault.drop:
                return []
            if fault.delay is not None:
                return [(token, event, now + fault.delay, status)]
            return [(token, event, now, status)] * 2
        return [(token, event, now, status)]

    def due(self, now: float, limit: int) -> list[PendingCallback]:
        rows = self.db.execute(
            "SELECT id, token, event, attempts, status FROM callbacks c WHERE done = 0 "
            "AND next_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
            "AND id = (SELECT min(id) FROM callbacks d WHERE d.token = c.token "
            "AND d.done = 0) ORDER BY id LIMIT ?",
            (now, now, limit),
        ).rows
        return [
            PendingCallback(r["id"], r["token"], r["event"], r["attempts"], r["status"])
            for r in rows
        ]

    def claim(self, item: PendingCallback, now: float, lease: float) -> bool:
        return (
            self.db.execute(
                "UPDATE callbacks SET claimed_until = ? WHERE id = ? AND done = 0 "
                "AND (claimed_until IS NULL OR claimed_until < ?)",
                (now + lease, item.id, now),
            ).rowcount
            == 1
        )

    def settle(self, item: PendingCallback, outcome: str = "delivered") -> None:
        """Delivered, or given up (``outcome``): the next event of the task becomes due."""
        self.db.execute(
            "UPDATE callbacks SET done = 1, outcome = ? WHERE id = ?", (outcome, item.id)
        )

    def retry_at(self, item: PendingCallback, when: float) -> None:
        self.db.execute(
            "UPDATE callbacks SET attempts = attempts + 1, next_at = ?, claimed_until = NULL "
            "WHERE id = ?",
            (when, item.id),
        )

    def history(self, token: str) -> list[CallbackRecord]:
        """Every callback of a task, oldest first, with how it went."""
        rows = self.db.execute(
            "SELECT event, attempts, done, outcome FROM callbacks WHERE token = ? ORDER BY id",
            (token,),
        ).rows
        return [
            CallbackRecord(
                str(r["event"]),
                int(r["attempts"]),
                (r["outcome"] or "settled") if r["done"] else "pending",
            )
            for r in rows
        ]

    def pending(self, token: str) -> list[str]:
        rows = self.db.execute(
            "SELECT event FROM callbacks WHERE token = ? AND done = 0 ORDER BY id", (token,)
        ).rows
        return [str(r["event"]) for r in rows]
