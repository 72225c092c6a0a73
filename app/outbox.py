"""Callbacks waiting to be delivered, in the task database: durable, ordered per task, and
retried on a schedule without holding a worker.

Events are added when they happen (``queued`` by the API, ``error``/``saved`` by whoever ended
the task); the API delivers them (``app.callbacks.deliver_due``). Only the oldest undelivered
event of a task is ever due, so a receiver sees ``queued`` → ``error`` → ``saved`` in order.
A claim with a lease keeps two API processes from sending the same event at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL,
    event TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    claimed_until REAL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS callbacks_pending ON callbacks(done, token, id);
"""


@dataclass(frozen=True)
class PendingCallback:
    id: int
    token: str
    event: str
    attempts: int


class CallbackOutbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        with connect(path) as db:
            db.executescript(_SCHEMA)

    def add(self, token: str, events: Sequence[str], now: float) -> None:
        with connect(self.path) as db:
            db.executemany(
                "INSERT INTO callbacks (token, event, next_at) VALUES (?, ?, ?)",
                [(token, event, now) for event in events],
            )

    def due(self, now: float, limit: int) -> list[PendingCallback]:
        with connect(self.path) as db:
            rows = db.execute(
                "SELECT id, token, event, attempts FROM callbacks c WHERE done = 0 "
                "AND next_at <= ? AND (claimed_until IS NULL OR claimed_until < ?) "
                "AND id = (SELECT min(id) FROM callbacks d WHERE d.token = c.token "
                "AND d.done = 0) ORDER BY id LIMIT ?",
                (now, now, limit),
            )
            return [PendingCallback(r["id"], r["token"], r["event"], r["attempts"]) for r in rows]

    def claim(self, item: PendingCallback, now: float, lease: float) -> bool:
        with connect(self.path) as db:
            cursor = db.execute(
                "UPDATE callbacks SET claimed_until = ? WHERE id = ? AND done = 0 "
                "AND (claimed_until IS NULL OR claimed_until < ?)",
                (now + lease, item.id, now),
            )
            return cursor.rowcount == 1

    def settle(self, item: PendingCallback) -> None:
        """Delivered, or given up: the next event of the task becomes due."""
        with connect(self.path) as db:
            db.execute("UPDATE callbacks SET done = 1 WHERE id = ?", (item.id,))

    def retry_at(self, item: PendingCallback, when: float) -> None:
        with connect(self.path) as db:
            db.execute(
                "UPDATE callbacks SET attempts = attempts + 1, next_at = ?, claimed_until = NULL "
                "WHERE id = ?",
                (when, item.id),
            )

    def pending(self, token: str) -> list[str]:
        with connect(self.path) as db:
            rows = db.execute(
                "SELECT event FROM callbacks WHERE token = ? AND done = 0 ORDER BY id", (token,)
            )
            return [str(r["event"]) for r in rows]
